from __future__ import annotations

import functools
import hashlib
import zoneinfo
from typing import Any

from django.apps.registry import Apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q

from studio import stored_json
from studio.stored_json import TOO_DEEP_TO_SHOW, StoredJSONField, TooDeepJSON, dumps


def validate_timezone(value: str) -> None:
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"“{value}” is not a time zone we know. Use an IANA name such as Europe/Berlin "
            "or America/New_York.",
            code="invalid_timezone",
        )


def validate_email_key(value: str) -> None:
    """An email address, with whatever padding the runtime stored around it (forms trim what
    a person types; a stored user_id is kept as it is, or it would match nothing)."""
    validate_email(value.strip())


class EndUser(models.Model):
    """A person the agents talk to, registered like the runtime's `User` object.

    Either key may be a user_id the runtime stored, so both are unbounded varchar like the
    runtime's user_id column, and kept byte for byte: the limits are the forms', for what a
    person types (memories.people_forms.EndUserForm)."""

    email = models.CharField(max_length=None, unique=True, validators=[validate_email_key])
    external_id = models.CharField(
        "id",
        max_length=None,
        blank=True,
        help_text="The deployment's own user id, where memories are keyed by id.",
    )
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    additional_attributes = models.JSONField(default=dict, blank=True)
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        verbose_name = "end user"
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="enduser_unique_external_id",
                violation_error_message="Another user already has this id.",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class AuditEvent(models.Model):
    """Who changed what, when. Never a memory's text: deleted ones are often the sensitive ones."""

    class Action(models.TextChoices):
        SETTINGS_CHANGED = "settings.changed", "Changed memory settings"
        MEMORY_ADDED = "memory.added", "Added a memory"
        MEMORY_EDITED = "memory.edited", "Edited a memory"
        MEMORY_DELETED = "memory.deleted", "Deleted a memory"
        MEMORIES_BULK_DELETED = "memories.bulk_deleted", "Bulk-deleted memories"
        TABLES_CREATED = "runtime.tables_created", "Created the runtime tables"
        USER_REGISTERED = "user.registered", "Registered a user"
        SESSION_DELETED = "session.deleted", "Deleted a session"
        USER_FORGOTTEN = "user.forgotten", "Forgot a user"
        MEMORIES_IMPORTED = "memories.imported", "Imported memories"
        MEMORIES_EXPORTED = "memories.exported", "Exported memories"
        TOKEN_ROTATED = "bridge.token_rotated", "Rotated the settings token"
        MEMORIES_PRUNED = "memories.pruned", "Pruned memories"
        SENSITIVE_DELETED = "sensitive.deleted", "Deleted flagged memories"
        BUDGET_CHANGED = "cost.changed", "Changed the token budget or cost inputs"
        JOB_CANCELLED = "job.cancelled", "Cancelled a job"
        JOB_RETRIED = "job.retried", "Retried a failed job"
        AGENT_REGISTERED = "agent.registered", "Registered an agent found in a runtime"
        MEMORIES_MOVED = "memories.moved", "Moved memories to another user_id"
        DUPLICATES_REMOVED = "duplicates.removed", "Removed repeated memories"
        MEMORIES_RESTORED = "trash.restored", "Restored memories from the trash"
        TRASH_PURGED = "trash.purged", "Deleted memories from the trash for good"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, blank=True)  # kept if the account goes
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL)
    agent_slug = models.CharField(max_length=60, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    # Runtime ids are unbounded text: stored whole, whatever their length.
    user_id = models.TextField(blank=True)
    memory_id = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["agent", "-created_at"], name="audit_agent_recent")]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.memory_id or self.user_id}"


class UserTokens(models.Model):
    """The exact token count of a user's memory block, as of `refreshed_at` (a cache).

    Counting a million memories on every page load is out; this is refreshed whenever the
    dashboard shows or changes a user's memories, and by `manage.py count_tokens`.
    """

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE)
    user_id = models.TextField()
    tokens = models.PositiveIntegerField()
    memories = models.PositiveIntegerField()
    refreshed_at = models.DateTimeField(auto_now=True)
    # The newest memory's time (as lists sort it) when this was counted: the same time and
    # number mean unchanged memories, exactly (a time compared with refreshed_at cannot tell a
    # write in the same second, or a memory dated in the future, from one counted already).
    newest_memory_at = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "user_id"], name="usertokens_one_per_user")
        ]
        indexes = [models.Index(fields=["agent", "-tokens", "user_id"], name="usertokens_heaviest")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.tokens} tokens"

    @property
    def is_over_budget(self) -> bool:
        return self.agent.is_over_budget(self.tokens)


class SensitiveFlag(models.Model):
    """A memory that looks like it holds a secret or a personal identifier (never its text)."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE)
    memory_id = models.TextField()
    user_id = models.TextField(null=True)  # NULL: the runtime stored the memory without one
    kinds = models.JSONField(default=list)
    memory_changed_at = models.BigIntegerField()  # the memory's sort key when it was scanned
    found_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "memory_id"], name="sensitiveflag_one_per_memory"
            )
        ]
        indexes = [
            models.Index(
                fields=["agent", "-memory_changed_at", "memory_id"], name="sensitive_recent"
            ),
            models.Index(fields=["agent", "user_id"], name="sensitive_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.memory_id}: {', '.join(self.kinds)}"


class SensitiveScan(models.Model):
    """How far the agent-wide scan got: it walks the memories in memory_id order, in batches."""

    agent = models.OneToOneField("agents.Agent", on_delete=models.CASCADE)
    after_memory_id = models.TextField(blank=True)
    scanned = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.agent_id}: {self.scanned} scanned"

    @property
    def is_running(self) -> bool:
        return self.finished_at is None


class PruneJob(models.Model):
    """A previewed prune: the exact memories it will delete, deleted later in batches."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    criteria = models.JSONField()
    planned = models.PositiveIntegerField(default=0)
    users = models.PositiveIntegerField(default=0)
    tokens_saved = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)  # changed since the preview: kept
    # The batch whose trash copies are committed and whose runtime delete may have run:
    # [candidate id, memory_id, changed-at, user_id, trash id or None] each (memories.actions).
    staged = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"prune {self.pk}: {self.deleted}/{self.planned}"

    @property
    def remaining(self) -> int:
        return max(0, self.planned - self.deleted - self.skipped)

    def worker_job(self) -> Job | None:
        """The background job deleting this prune; None until it is confirmed."""
        return Job.objects.filter(kind=Job.Kind.PRUNE, params__prune_job=self.pk).first()


class PruneCandidate(models.Model):
    job = models.ForeignKey(PruneJob, on_delete=models.CASCADE, related_name="candidates")
    memory_id = models.TextField()
    user_id = models.TextField(null=True)  # NULL: the runtime stored the memory without one
    # The memory's updated_at at preview time: one that changed since is kept, not deleted.
    memory_changed_at = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["job", "id"], name="prunecandidate_batches")]

    def __str__(self) -> str:
        return self.memory_id


class Job(models.Model):
    """Long work done by a worker in short batches: what, who, when, progress, outcome.

    `cursor` is where the next batch starts and `task_id` the one queued task allowed to run
    it; both change in the transaction that commits a batch, so a batch is done exactly once.
    """

    class Kind(models.TextChoices):
        SENSITIVE_SCAN = "sensitive_scan", "Sensitive-data scan"
        TOKEN_SWEEP = "token_sweep", "Token sweep"
        PRUNE = "prune", "Prune"
        IMPORT = "import", "Import"
        FORGET = "forget", "Forget a user"
        EXPORT = "export", "Export the agent"
        MOVE_USER = "move_user", "Move memories to another user_id"
        TRASH_EMPTYING = "trash_emptying", "Trash emptying"
        SCOPING_CHECK = "scoping_check", "Scoping check"
        DUPLICATE_SEARCH = "duplicate_search", "Duplicate search"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.CASCADE)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, blank=True)  # "system" for the worker's own
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    done = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(null=True, blank=True)
    batches = models.PositiveIntegerField(default=0)
    cursor = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    run_after = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["agent", "-created_at"], name="job_agent_recent"),
            models.Index(fields=["-created_at", "-id"], name="job_recent"),  # the Jobs page
            models.Index(fields=["state", "heartbeat_at"], name="job_unfinished"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk}: {self.state}"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED, self.State.CANCELLED)

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.state == self.State.DONE else None
        return min(100, self.done * 100 // self.total)

    @property
    def duration(self) -> Any:
        if self.started_at is None:
            return None
        return (self.finished_at or self.heartbeat_at or self.started_at) - self.started_at


class Report(models.Model):
    """What a check job found (scoping problems, duplicates), stored so its page reads it
    instead of working it out on every view: one row per agent, kind and scope.

    `rows` is bounded (the scoping page's first 1,000 problems, at most 200 exact groups and
    1,000 near pairs of duplicates) and keeps ids and counts, never a memory's text: the
    duplicates page reads the memories as they are now. `job` is the latest check started.
    """

    class Kind(models.TextChoices):
        SCOPING = "scoping", "Scoping problems"
        DUPLICATES = "duplicates", "Duplicates"

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # A hash of what was asked (memories.reports.scope_key): a user_id may be any length.
    scope = models.CharField(max_length=64)
    # The one user whose duplicates these are; NULL for the NULL user and for every user.
    user_id = models.TextField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    rows = models.JSONField(default=list, blank=True)
    total = models.PositiveIntegerField(default=0)  # rows found in all, those not kept included
    details = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    made_at = models.DateTimeField(null=True, blank=True)  # None: no check has finished yet

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "kind", "scope"], name="report_one_per_scope")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of agent {self.agent_id}"

    @property
    def is_checking(self) -> bool:
        return self.job is not None and not self.job.is_finished


def _shown(value: Any) -> str:
    """A run's input or output as text: JSON for structured values, nothing for None."""
    return "" if value is None else stored_json.shown(value)


def memory_text(value: Any) -> str:
    """A memory as agno puts it in context: `f"- {memory}"`, so a dict, list or number
    (all legal in the JSONB column) reads as Python's str() of it, not as JSON. A stored
    topic reads the same way: agno's topics are text, but it does not check."""
    return value if isinstance(value, str) else stored_text(value)


def stored_text(value: Any) -> str:
    """str() of a stored JSON value, which recursion stops for one nested hundreds deep."""
    try:
        return str(value)
    except RecursionError:
        return TOO_DEEP_TO_SHOW


def topic_items(topics: Any) -> list[Any]:
    """Stored topics as a list: agno accepts topics="travel" (one topic, not none), and a
    lone number or object stored there is one topic too, shown rather than hidden. A list
    too deep to read whole is its members, so an added topic joins them, not wraps them."""
    if isinstance(topics, list):
        return topics
    if isinstance(topics, TooDeepJSON) and topics.is_array:
        return topics.members()
    return [] if topics is None else [topics]


def topic_texts(topics: Any) -> list[str]:
    return [memory_text(topic) for topic in topic_items(topics)]


# The runtime's own tables, one set per agent schema. Unmanaged: Django never creates,
# alters or drops them; memories/runtime.py points the search_path at the agent's schema.


class MemoryRow(models.Model):
    is_runtime_table = True  # the router sends it to the agent's runtime connection

    memory_id = models.TextField(primary_key=True)
    memory = StoredJSONField()  # JSONB holding a JSON *string*, not text
    feedback = models.TextField(null=True)
    input = models.TextField(null=True)
    agent_id = models.TextField(null=True)
    team_id = models.TextField(null=True)
    user_id = models.TextField(null=True)
    # A JSON list of strings, JSON null (the runtime's "no topics") or SQL NULL.
    topics = StoredJSONField(null=True)
    created_at = models.BigIntegerField()  # epoch seconds, as the runtime writes them
    updated_at = models.BigIntegerField(null=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.memory_id

    @property
    def text(self) -> str:
        return memory_text(self.memory)

    @property
    def topic_list(self) -> list[str]:
        return topic_texts(self.topics)

    @functools.cached_property
    def details(self) -> list[tuple[str, str]]:
        """The optional columns the runtime filled (input has a fold of its own), labelled;
        the row template asks twice, so it is worked out once."""
        shown = (
            ("Feedback", self.feedback),
            ("agent_id", self.agent_id),
            ("team_id", self.team_id),
        )
        return [(label, value) for label, value in shown if value not in (None, "")]

    @property
    def last_changed_at(self) -> int:
        return self.updated_at if self.updated_at is not None else self.created_at

    @property
    def version(self) -> str:
        """Changes whenever text, topics or updated_at do: stale-edit checks and row caching."""
        state = dumps([self.memory, self.topics, self.updated_at], sort_keys=True)
        return hashlib.sha256(state.encode()).hexdigest()[:16]


class SessionRow(models.Model):
    is_runtime_table = True

    session_id = models.TextField(primary_key=True)
    session_type = models.TextField()
    agent_id = models.TextField(null=True)
    team_id = models.TextField(null=True)
    workflow_id = models.TextField(null=True)
    user_id = models.TextField(null=True)
    session_data = StoredJSONField(null=True)
    agent_data = StoredJSONField(null=True)
    team_data = StoredJSONField(null=True)
    workflow_data = StoredJSONField(null=True)
    metadata = StoredJSONField(null=True)
    summary = StoredJSONField(null=True)
    created_at = models.BigIntegerField()
    updated_at = models.BigIntegerField(null=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.session_id

    @property
    def summary_text(self) -> str:
        if isinstance(self.summary, dict):
            return str(self.summary.get("summary") or "")
        return ""


class RunRow(models.Model):
    is_runtime_table = True

    run_id = models.TextField(primary_key=True)
    session_id = models.TextField()
    run_type = models.TextField()
    agent_id = models.TextField(null=True)
    team_id = models.TextField(null=True)
    workflow_id = models.TextField(null=True)
    user_id = models.TextField(null=True)
    parent_run_id = models.TextField(null=True)
    status = models.TextField(null=True)
    run_index = models.BigIntegerField(null=True)
    run_data = StoredJSONField()
    created_at = models.BigIntegerField()
    updated_at = models.BigIntegerField(null=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.run_id

    @property
    def input_text(self) -> str:
        """What the run was asked: workflow runs keep it in run_data, with no messages."""
        if isinstance(self.run_data, TooDeepJSON):  # nothing in it can be read apart
            return TOO_DEEP_TO_SHOW
        data = self.run_data if isinstance(self.run_data, dict) else {}
        value = data.get("input")
        if isinstance(value, dict) and "input_content" in value:
            value = value["input_content"]
        return _shown(value)

    @property
    def output_text(self) -> str:
        data = self.run_data if isinstance(self.run_data, dict) else {}
        return _shown(data.get("content"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        data = self.run_data if isinstance(self.run_data, dict) else {}
        messages = data.get("messages")
        if isinstance(messages, TooDeepJSON):
            messages = [messages]
        if not isinstance(messages, list):
            return []
        # A message too deep to read shows as one that says so, rather than going missing.
        return [
            {"content": m} if isinstance(m, TooDeepJSON) else m
            for m in messages
            if isinstance(m, dict | TooDeepJSON)
        ]


class Memory(MemoryRow):
    class Meta:
        managed = False
        db_table = "agno_memories"


class RuntimeSession(SessionRow):
    class Meta:
        managed = False
        db_table = "agno_sessions"


class Run(RunRow):
    class Meta:
        managed = False
        db_table = "agno_runs"


# Agents whose PostgresDb renames its tables get models of their own, built once per name in
# a registry apart from the project's, so migrations never see them.
_renamed_tables = Apps(installed_apps=())


@functools.cache
def runtime_model(role: str, table: str) -> type[models.Model]:
    """The model for a runtime table by role ("memories", "sessions", "runs") and name."""
    default = {"memories": Memory, "sessions": RuntimeSession, "runs": Run}[role]
    if table == default._meta.db_table:
        return default
    base = {"memories": MemoryRow, "sessions": SessionRow, "runs": RunRow}[role]
    meta = type(
        "Meta",
        (),
        {"managed": False, "db_table": table, "app_label": "memories", "apps": _renamed_tables},
    )
    name = f"{default.__name__}_{table}"
    return type(name, (base,), {"__module__": __name__, "Meta": meta})


class TrashedMemory(models.Model):
    """A deleted memory's whole runtime row, kept until `expires_at` so it can be put back.

    `row` holds every column as the runtime stored it (the export format: a row without a
    `topics` key had SQL NULL topics, `"topics": null` was JSON null), so a restore is exact.
    """

    class Reason(models.TextChoices):
        DELETED = "deleted", "Deleted"
        BULK_DELETED = "bulk_deleted", "Bulk-deleted"
        PRUNED = "pruned", "Pruned"
        DUPLICATE = "duplicate", "Duplicate removed"

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE)
    memory_id = models.TextField()
    user_id = models.TextField(null=True)  # NULL: the runtime stored the memory without one
    row = StoredJSONField()  # a too-deep value kept as stored (studio.stored_json)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    # The prune that deleted it, so "Undo this prune" finds every memory it took.
    prune_job = models.ForeignKey(
        "memories.PruneJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, blank=True)
    deleted_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-deleted_at", "-id"]
        indexes = [
            models.Index(fields=["agent", "-deleted_at", "-id"], name="trash_agent_recent"),
            models.Index(fields=["agent", "user_id"], name="trash_by_user"),
        ]
        verbose_name_plural = "trashed memories"

    def __str__(self) -> str:
        return f"{self.memory_id} (trashed)"

    @property
    def text(self) -> str:
        return memory_text(self.row.get("memory"))

    @property
    def topic_list(self) -> list[str]:
        return topic_texts(self.row.get("topics"))


class ForgetReceipt(models.Model):
    """Proof that a person was forgotten: what went where, when and by whom. The person is
    named only by `user_hash` (memories.forgetting.user_hash), never by their user_id."""

    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, blank=True)
    user_hash = models.CharField(max_length=80)
    registry_entry_removed = models.BooleanField(default=False)
    # Registrations that kept the user_id as an alias (another person's, or their own kept one).
    aliases_removed = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"receipt {self.pk}: {self.user_hash[:12]}…"


class ForgetReceiptLine(models.Model):
    """What one agent erased for a receipt (counts only)."""

    receipt = models.ForeignKey(ForgetReceipt, on_delete=models.CASCADE, related_name="lines")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL)
    agent_slug = models.CharField(max_length=60)  # kept if the agent goes
    memories = models.PositiveIntegerField(default=0)
    sessions = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0)
    trashed = models.PositiveIntegerField(default=0)  # memories in the trash, purged too
    jobs_stopped = models.PositiveIntegerField(default=0)  # open moves and imports naming them
    export_files = models.PositiveIntegerField(default=0)  # agent exports rewritten without them
    erased_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent_slug", "id"]

    def __str__(self) -> str:
        return f"{self.agent_slug}: {self.memories} memories"
