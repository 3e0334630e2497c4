"""An agent's own settings, one action each: registering it from a runtime connection, the
Memory tab's switches, its cost inputs and its bridge token. Each records its audit event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from agents.memory_settings import MemorySettings, apply_changes, differences, merge_changes
from agents.models import Agent
from memories import audit, jobs
from memories.actions.actor import Actor
from memories.cost import CostInputs
from memories.models import AuditEvent, Job


class SchemaTaken(ValueError):
    """Another agent already reads this schema on this connection: one schema, one agent."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.message = (
            f"“{agent.db_schema}” on the runtime connection “{agent.connection}” is already "
            f"registered as {agent.name}; nothing was registered."
        )
        super().__init__(self.message)


def register_agent(
    *, actor: Actor, connection: str, schema: str, tables: dict[str, str], name: str = ""
) -> Agent:
    """Register an agent found in a runtime connection (discovery): its schema and the table
    names its PostgresDb uses, a blank name where agno's default applies. The same schema on
    another connection is another agent; on this one, SchemaTaken."""
    from memories.runtime.discovery import DEFAULT_NAMES

    def taken() -> Agent | None:
        return Agent.objects.filter(connection=connection, db_schema=schema).first()

    if (existing := taken()) is not None:
        raise SchemaTaken(existing)

    renamed = {role: t for role, t in tables.items() if t and t != DEFAULT_NAMES[role]}
    base = slugify(name or schema.removeprefix("ag_").replace("_", "-"))[:50] or "agent"
    slug, n = base, 1
    while Agent.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    sessions = renamed.get("sessions", "")
    runs = renamed.get("runs", "")
    if runs and runs == f"{sessions or 'agno_sessions'}_runs" and sessions:
        runs = ""  # agno's own default for a renamed session table: left implicit, as agno does
    try:
        with transaction.atomic():
            agent = _create_registered_agent(
                actor,
                name=name or schema,
                slug=slug,
                db_schema=schema,
                connection=connection,
                memory_table=renamed.get("memories", ""),
                session_table=sessions,
                runs_table=runs,
                renamed=renamed,
            )
    except IntegrityError:
        # Registered by someone else between the check above and this insert.
        if (existing := taken()) is None:
            raise
        raise SchemaTaken(existing) from None
    return agent


def _create_registered_agent(actor: Actor, *, renamed: dict[str, str], **fields: str) -> Agent:
    agent = Agent.objects.create(
        **fields,
        agno_settings=MemorySettings(session_storage=True, user_memories=True).to_json(),
    )
    audit.record(
        actor,
        agent,
        AuditEvent.Action.AGENT_REGISTERED,
        details={"connection": agent.connection, "schema": agent.db_schema, "tables": renamed},
    )
    # Its token sweep starts now, not at the next worker start.
    jobs.create_job(kind=Job.Kind.TOKEN_SWEEP, agent=agent, actor=None)
    return agent


@dataclass(frozen=True)
class SettingsChange:
    settings: MemorySettings
    changed: dict[str, list[Any]]
    notes: list[str]

    @property
    def message(self) -> str:
        return " ".join(["Settings saved." if self.changed else "Nothing changed.", *self.notes])


class StaleSettings(ValueError):
    """The page showed other settings than the stored ones (or did not say which it showed):
    saving its whole panel would undo what someone changed since. Nothing was saved."""

    def __init__(self, shown: MemorySettings | None, current: MemorySettings) -> None:
        self.shown, self.current = shown, current
        if shown is None:
            self.message = (
                "This page did not say which memory settings it showed, so saving it could "
                "undo a change made since it was opened: nothing was saved."
            )
        else:
            self.message = (
                "The memory settings were changed elsewhere since this page was opened "
                f"(now {differences(shown, current)}): nothing was saved."
            )
        super().__init__(self.message)


def change_settings(
    *,
    actor: Actor,
    agent: Agent,
    requested: MemorySettings,
    shown: MemorySettings | None = None,
    refuse_stale: bool = False,
) -> SettingsChange:
    """Apply the Memory tab's switches by its rules; never deletes a memory. With `shown`
    (the settings the person's page showed), only what they changed from it is applied to
    the settings as they are now: a change someone made meanwhile stays. With `refuse_stale`
    (Django admin, whose page saves the whole panel at once), a page that showed anything but
    the stored settings raises StaleSettings instead."""
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        before = locked.memory_settings
        if refuse_stale and shown != before:
            raise StaleSettings(shown, before)
        notes: list[str] = []
        if shown is not None:
            if shown != before:
                notes.append(
                    "These settings were changed elsewhere since this page was opened: "
                    "those changes are kept, and yours applied to them."
                )
            requested = merge_changes(before, shown, requested)
        after, rule_notes = apply_changes(before, requested)
        notes += rule_notes
        changed = {
            name: [getattr(before, name), getattr(after, name)]
            for name in vars(after)
            if getattr(before, name) != getattr(after, name)
        }
        # Running agents read this JSON as stored (the bridge), so a value stored in another
        # form than the settings read it (the string "false", a missing key) is rewritten too.
        saved = after.to_json(locked.agno_settings)
        stored = locked.agno_settings if isinstance(locked.agno_settings, dict) else {}
        rewritten = sorted(
            name
            for name in vars(after)
            if name not in changed
            and (name not in stored or type(stored[name]) is not type(saved[name]))
        )
        if changed or rewritten:
            locked.agno_settings = saved
            locked.save(update_fields=["agno_settings", "updated_at"])
            details: dict[str, Any] = {"changed": changed}
            if rewritten:
                details["rewritten"] = rewritten
            audit.record(actor, locked, AuditEvent.Action.SETTINGS_CHANGED, details=details)
    agent.agno_settings, agent.updated_at = locked.agno_settings, locked.updated_at
    return SettingsChange(after, changed, notes)


def change_cost_inputs(
    *, actor: Actor, agent: Agent, inputs: CostInputs, token_budget: int
) -> None:
    with transaction.atomic():
        agent.cost_inputs = inputs.as_dict()
        agent.token_budget = token_budget
        agent.save(update_fields=["cost_inputs", "token_budget", "updated_at"])
        audit.record(
            actor,
            agent,
            AuditEvent.Action.BUDGET_CHANGED,
            details={**inputs.as_dict(), "token_budget": token_budget},
        )


def rotate_bridge_token(*, actor: Actor, agent: Agent) -> str:
    """A new settings token for running agents; the old one stops working at once."""
    with transaction.atomic():
        token = agent.rotate_bridge_token()
        audit.record(actor, agent, AuditEvent.Action.TOKEN_ROTATED)
    return token
