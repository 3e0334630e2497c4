from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from agents.memory_settings import MemorySettings

SCHEMA_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Postgres keeps these for itself; an agent's tables must never land in them.
RESERVED_SCHEMAS = {"public", "information_schema", "pg_catalog", "pg_toast"}


def validate_schema_name(value: str) -> None:
    if not SCHEMA_NAME_PATTERN.fullmatch(value or ""):
        raise ValidationError(
            "A schema name starts with a lowercase letter or underscore and holds only "
            "lowercase letters, digits and underscores, at most 63 characters "
            "(for example agent_support).",
            code="invalid_schema",
        )
    if value in RESERVED_SCHEMAS or value.startswith("pg_"):
        raise ValidationError(
            f"“{value}” is reserved by Postgres; choose another schema name.", code="reserved"
        )


TABLE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DEFAULT_MEMORY_TABLE = "agno_memories"
DEFAULT_SESSION_TABLE = "agno_sessions"
DEFAULT_RUNS_TABLE = "agno_runs"
DEFAULT_VERSIONS_TABLE = "agno_schema_versions"


def validate_table_name(value: str) -> None:
    if value and not TABLE_NAME_PATTERN.fullmatch(value):
        raise ValidationError(
            "A table name starts with a letter or underscore and holds only letters, digits "
            "and underscores, at most 63 characters (for example support_memories).",
            code="invalid_table",
        )


@dataclass(frozen=True)
class TableNames:
    """The runtime tables an agent's PostgresDb(memory_table=..., session_table=...,
    runs_table=...) writes, with agno's defaults: runs follow a renamed session table."""

    memories: str = DEFAULT_MEMORY_TABLE
    sessions: str = DEFAULT_SESSION_TABLE
    runs: str = DEFAULT_RUNS_TABLE
    versions: str = DEFAULT_VERSIONS_TABLE

    @classmethod
    def chosen(cls, memories: str = "", sessions: str = "", runs: str = "") -> TableNames:
        for name in (memories, sessions, runs):
            validate_table_name(name)
        if not runs:
            runs = f"{sessions}_runs" if sessions else DEFAULT_RUNS_TABLE
        return cls(memories or DEFAULT_MEMORY_TABLE, sessions or DEFAULT_SESSION_TABLE, runs)

    @property
    def are_default(self) -> bool:
        return self == TableNames()


SCHEMA_TAKEN_MESSAGE = (
    "Another agent already uses this schema on this runtime connection: open that agent, "
    "or choose another schema or connection."
)


def default_agno_settings() -> dict:
    return MemorySettings().to_json()


class Agent(models.Model):
    class UserIdKind(models.TextChoices):
        EMAIL = "email", "Email address"
        ID = "id", "External user id"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    db_schema = models.CharField(
        "database schema",
        max_length=63,
        validators=[validate_schema_name],
        help_text="The Postgres schema the agent's PostgresDb(db_schema=...) writes to.",
    )
    connection = models.CharField(
        "runtime connection",
        max_length=63,
        default="default",
        help_text="Which runtime database holds the agent's tables: a name from "
        "RUNTIME_DATABASES, or “default” for the studio's own database.",
    )
    memory_table = models.CharField(
        max_length=63,
        blank=True,
        validators=[validate_table_name],
        help_text="PostgresDb(memory_table=...); blank for agno's agno_memories.",
    )
    session_table = models.CharField(
        max_length=63,
        blank=True,
        validators=[validate_table_name],
        help_text="PostgresDb(session_table=...); blank for agno's agno_sessions.",
    )
    runs_table = models.CharField(
        max_length=63,
        blank=True,
        validators=[validate_table_name],
        help_text="PostgresDb(runs_table=...); blank for agno's default: agno_runs, or "
        "<session table>_runs when the session table is renamed.",
    )
    user_id_kind = models.CharField(
        "memories are keyed by",
        max_length=8,
        choices=UserIdKind.choices,
        default=UserIdKind.EMAIL,
        help_text="What the running agent passes as user_id: the person's email or their id.",
    )
    agno_settings = models.JSONField(default=default_agno_settings, blank=True)
    token_budget = models.PositiveIntegerField(
        "token budget per user",
        default=0,
        help_text="Memory tokens a user may carry in context; users above it are flagged. 0: none.",
    )
    trash_days = models.PositiveSmallIntegerField(
        "days deleted memories stay in the trash",
        default=7,
        validators=[MaxValueValidator(365)],
        help_text="Deleted memories can be restored for this many days. 0: deletes are permanent.",
    )
    # The cost calculator's inputs, saved per agent (see memories.cost.CostInputs).
    cost_inputs = models.JSONField(default=dict, blank=True)
    # sha256 of the token running agents use to read these settings; the token is shown once.
    bridge_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("operate_agent", "Can toggle memory settings and add, edit and delete memories"),
        ]
        constraints = [
            # A schema name is unique per runtime database, not across them: two runtimes may
            # each hold agno's default schema "ai".
            models.UniqueConstraint(
                fields=["connection", "db_schema"],
                name="agent_schema_unique_per_connection",
                violation_error_message=SCHEMA_TAKEN_MESSAGE,
            ),
            # The same invariants as MemorySettings.violations, kept by the database too.
            models.CheckConstraint(
                condition=~(
                    Q(agno_settings__user_memories=True) & Q(agno_settings__agentic_memory=True)
                ),
                name="agent_one_memory_mode",
                violation_error_message="Manual and agentic memory cannot both be on.",
            ),
            models.CheckConstraint(
                condition=Q(agno_settings__session_storage=True)
                | (~Q(agno_settings__user_memories=True) & ~Q(agno_settings__agentic_memory=True)),
                name="agent_memory_needs_session_storage",
                violation_error_message="User memories need session storage.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # The invariants hold whoever saves: the Memory tab, Django admin, a shell.
        validate_schema_name(self.db_schema)
        self.table_names  # noqa: B018 - validates the three names wherever the agent is saved
        settings = self.memory_settings
        problems = settings.violations()
        if problems:
            raise ValidationError({"agno_settings": problems})
        self.agno_settings = settings.to_json(self.agno_settings)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("agents:memory_tab", args=[self.slug])

    def rotate_bridge_token(self) -> str:
        """A new token for the settings endpoint; the old one stops working at once."""
        token = "ms_" + secrets.token_urlsafe(32)
        self.bridge_token_hash = hashlib.sha256(token.encode()).hexdigest()
        self.save(update_fields=["bridge_token_hash", "updated_at"])
        return token

    def bridge_token_matches(self, token: str) -> bool:
        if not self.bridge_token_hash or not token:
            return False
        digest = hashlib.sha256(token.encode()).hexdigest()
        return hmac.compare_digest(digest, self.bridge_token_hash)

    @property
    def trash_note(self) -> str:
        """What a confirmation or a toast says becomes of one deleted memory: the trash for
        trash_days, or nothing (one wording for the user page, its toasts and prune)."""
        return self._trash_sentence("It stays")

    @property
    def trash_note_many(self) -> str:
        return self._trash_sentence("They stay")

    def _trash_sentence(self, subject: str) -> str:
        if not self.trash_days:
            return "This cannot be undone."
        days = self.trash_days
        return f"{subject} in the trash for {days} day{'s' if days != 1 else ''}."

    def is_over_budget(self, tokens: int | None) -> bool:
        """Whether a memory block of `tokens` exceeds the budget per user. Without a budget (0)
        nobody is over it, and a user not counted yet (None) is not judged."""
        return bool(self.token_budget) and tokens is not None and tokens > self.token_budget

    def over_budget_tokens(self) -> Q:
        """is_over_budget as a filter on UserTokens rows, for counts and lists of many users."""
        return Q(tokens__gt=self.token_budget) if self.token_budget else Q(pk__in=[])

    @property
    def table_names(self) -> TableNames:
        return TableNames.chosen(self.memory_table, self.session_table, self.runs_table)

    @property
    def memory_settings(self) -> MemorySettings:
        return MemorySettings.from_json(self.agno_settings)

    def clean(self) -> None:
        super().clean()
        problems = self.memory_settings.violations()
        if problems:
            raise ValidationError({"agno_settings": problems})
