"""Every write the dashboard makes, one function each: pages and commands call these.

An action does the runtime write, records its audit event and keeps the studio's own tables
right (token counts, sensitive flags, prune candidates), so a page and a management command
doing the same thing leave the same database behind. Arguments are keyword-only; the actor
is the person (or None for a command, recorded as "system"). Failures are the runtime's
named exceptions (`MemoryNotFound`, `StaleMemory`, `ForeignMemories`, `SessionNotFound`),
which views turn into 404, 409 or 400.

Runtime writes happen inside `runtime.in_agent_schema`; studio upkeep runs after it, outside the
agent's search path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction

from agents.models import Agent
from memories import audit, flags, import_export, jobs, reports, tokens, trash
from memories.actions.actor import Actor

# An agent's own settings (registration, the Memory tab, costs, the bridge token) are a
# module of their own.
from memories.actions.agent_settings import (
    SchemaTaken as SchemaTaken,
)
from memories.actions.agent_settings import (
    SettingsChange as SettingsChange,
)
from memories.actions.agent_settings import (
    StaleSettings as StaleSettings,
)
from memories.actions.agent_settings import (
    change_cost_inputs as change_cost_inputs,
)
from memories.actions.agent_settings import (
    change_settings as change_settings,
)
from memories.actions.agent_settings import (
    register_agent as register_agent,
)
from memories.actions.agent_settings import (
    rotate_bridge_token as rotate_bridge_token,
)

# Starting, cancelling and retrying background jobs is a module of its own.
from memories.actions.background import (
    JobFinished as JobFinished,
)
from memories.actions.background import (
    JobNotFailed as JobNotFailed,
)
from memories.actions.background import (
    cancel_job as cancel_job,
)
from memories.actions.background import (
    confirm_prune as confirm_prune,
)
from memories.actions.background import (
    import_batch as import_batch,
)
from memories.actions.background import (
    retry_job as retry_job,
)
from memories.actions.background import (
    scan_sensitive_batch as scan_sensitive_batch,
)
from memories.actions.background import (
    start_export as start_export,
)
from memories.actions.background import (
    start_import as start_import,
)
from memories.actions.background import (
    start_sensitive_scan as start_sensitive_scan,
)

# The stored reports' checks (scoping, duplicates) are a module of their own.
from memories.actions.checks import (
    start_duplicate_search as start_duplicate_search,
)
from memories.actions.checks import (
    start_scoping_check as start_scoping_check,
)
from memories.actions.checks import (
    store_duplicate_report as store_duplicate_report,
)
from memories.actions.checks import (
    store_scoping_report as store_scoping_report,
)

# Forgetting a person (and its receipt) is a module of its own; its actions are called from
# here like every other write.
from memories.actions.forget import (
    Forgotten as Forgotten,
)
from memories.actions.forget import (
    PartialForget as PartialForget,
)
from memories.actions.forget import (
    ReadOnlyAgents as ReadOnlyAgents,
)
from memories.actions.forget import (
    finish_receipt as finish_receipt,
)
from memories.actions.forget import (
    forget_user as forget_user,
)
from memories.actions.forget import (
    settle_forget as settle_forget,
)
from memories.actions.forget import (
    stage_forget as stage_forget,
)
from memories.actions.forget import (
    start_forget as start_forget,
)
from memories.actions.forget import (
    start_receipt as start_receipt,
)

# Deleting a previewed prune batch by batch, and stopping it, is a module of its own.
from memories.actions.prune import (
    run_prune_batch as run_prune_batch,
)
from memories.actions.prune import (
    settle_prune_batch as settle_prune_batch,
)
from memories.actions.prune import (
    stage_prune_batch as stage_prune_batch,
)
from memories.actions.prune import (
    stop_prune as stop_prune,
)
from memories.models import (
    AuditEvent,
    EndUser,
    Job,
    Memory,
    PruneCandidate,
    PruneJob,
    SensitiveFlag,
    TrashedMemory,
)
from memories.runtime import memories as runtime_memories
from memories.runtime import scoping as runtime_scoping
from memories.runtime import sessions as runtime_sessions
from memories.runtime import transfer as runtime_transfer

# Memories of one user


def queue_recount(agent: Agent, user_id: str) -> None:
    """The user's token count is refreshed by a worker, in the write's transaction's wake."""
    from memories.tasks import recount_user

    recount_user.enqueue(agent.pk, user_id)


def queue_recounts(agent: Agent, user_ids: set[str | None]) -> None:
    """As queue_recount for each user of a bulk change; past tokens.RECOUNT_NOW_LIMIT their
    counts are dropped instead, and the token sweep's next pass counts them again."""
    user_ids = {user_id for user_id in user_ids if user_id is not None}
    if len(user_ids) > tokens.RECOUNT_NOW_LIMIT:
        tokens.recount_users(agent, user_ids)  # drops the counts; nothing is counted here
        return
    for user_id in sorted(user_ids):
        queue_recount(agent, user_id)


@dataclass(frozen=True)
class Added:
    memory: Memory
    created_tables: bool

    @property
    def message(self) -> str:
        return "Memory added." + (
            " The agent's runtime tables were created for it." if self.created_tables else ""
        )


def add_memory(
    *, actor: Actor, agent: Agent, user_id: str, text: str, topics: list[str], input_text: str = ""
) -> Added:
    with transaction.atomic():
        memory, created_tables = runtime_memories.insert_memory(
            agent, user_id, text=text, topics=topics, input_text=input_text
        )
        if created_tables:
            audit.record(actor, agent, AuditEvent.Action.TABLES_CREATED)
        audit.record(
            actor,
            agent,
            AuditEvent.Action.MEMORY_ADDED,
            user_id=user_id,
            memory_id=memory.memory_id,
            details={"topics": len(topics), "characters": len(text)},
        )
        flags.rescan(agent, memory)
        queue_recount(agent, user_id)
    return Added(memory, created_tables)


def edit_memory(
    *,
    actor: Actor,
    agent: Agent,
    user_id: str,
    memory_id: str,
    version: str,
    text: str | None,
    topics: list[str] | None,
) -> Memory:
    """Change text and/or topics (None: keep as stored); raises StaleMemory if the memory
    changed since `version` was read."""
    with transaction.atomic():
        memory = runtime_memories.update_memory(
            agent, user_id, memory_id, text=text, topics=topics, version=version
        )
        audit.record(
            actor,
            agent,
            AuditEvent.Action.MEMORY_EDITED,
            user_id=user_id,
            memory_id=memory_id,
            details={
                "changed": [n for n, v in (("text", text), ("topics", topics)) if v is not None]
            },
        )
        flags.rescan(agent, memory)
        queue_recount(agent, user_id)
    return memory


def delete_memory(
    *, actor: Actor, agent: Agent, user_id: str | None, memory_id: str, version: str = ""
) -> None:
    """Raises StaleMemory if `version` is given and the memory changed since it was shown.
    The row goes to the trash for the agent's trash_days."""
    with transaction.atomic():
        row = runtime_memories.take_memory(agent, user_id, memory_id, version=version)
        trash.keep(agent, [row], reason=TrashedMemory.Reason.DELETED, actor=actor)
        audit.record(
            actor, agent, AuditEvent.Action.MEMORY_DELETED, user_id=user_id, memory_id=memory_id
        )
        flags.drop_flags(agent, [memory_id])
        queue_recount(agent, user_id)


def delete_memories(
    *,
    actor: Actor,
    agent: Agent,
    user_id: str | None,
    memory_ids: Sequence[str],
    to_trash: bool = True,
    reason: str = TrashedMemory.Reason.BULK_DELETED,
) -> int:
    """All of `memory_ids` or none: every id must be this user's memory in this agent.
    With `to_trash` (the default) the rows can be restored for the agent's trash_days;
    `reason` says why on the Trash page (TrashedMemory.Reason.DUPLICATE for a clean-up)."""
    with transaction.atomic():
        rows = runtime_memories.take_user_memories(agent, user_id, memory_ids)
        count = len(rows)
        if to_trash:
            trash.keep(agent, rows, reason=reason, actor=actor)
        audit.record(
            actor,
            agent,
            AuditEvent.Action.MEMORIES_BULK_DELETED,
            user_id=user_id,
            details={"count": count, "memory_ids": list(memory_ids)},
        )
        flags.drop_flags(agent, memory_ids)
        queue_recount(agent, user_id)
    return count


def delete_flagged_memories(*, actor: Actor, agent: Agent, memory_ids: Sequence[str]) -> int:
    """Delete flagged memories of any users, for good: every id must carry a sensitive flag,
    and the owners' trashed memories go too (a secret must not wait in the trash)."""
    ids = list(dict.fromkeys(memory_ids))
    with transaction.atomic():
        flagged = SensitiveFlag.objects.select_for_update().filter(agent=agent, memory_id__in=ids)
        if set(flagged.values_list("memory_id", flat=True)) != set(ids):
            raise NotFlagged(NotFlagged.message)
        owners = set(flagged.values_list("user_id", flat=True))
        deleted = runtime_memories.delete_memories_by_id(agent, ids)
        flags.drop_flags(agent, ids)
        owners |= {owner for _, owner in deleted}
        purged = _purge_users_trash(agent, owners)
        audit.record(
            actor,
            agent,
            AuditEvent.Action.SENSITIVE_DELETED,
            details={
                "count": len(deleted),
                "memory_ids": [m for m, _ in deleted],
                **({"trash_purged": purged} if purged else {}),
            },
        )
    queue_recounts(agent, {owner for _, owner in deleted})
    return len(deleted)


class NotFlagged(ValueError):
    message = "Only flagged memories can be deleted here; nothing was deleted."


def _purge_users_trash(agent: Agent, user_ids: set[str | None]) -> int:
    rows = TrashedMemory.objects.filter(agent=agent, user_id__in=user_ids - {None})
    if None in user_ids:
        rows = rows | TrashedMemory.objects.filter(agent=agent, user_id__isnull=True)
    return rows.delete()[0]


# The trash


class TrashGone(ValueError):
    message = (
        "Some of these memories are no longer in the trash (restored, deleted for good or "
        "expired); nothing was changed. Reload the trash."
    )


class RestoredTwice(ValueError):
    message = (
        "The selection holds two trashed copies of the same memory; restore one of them. "
        "Nothing was changed."
    )


def _locked_trash(agent: Agent, trashed_ids: Sequence[int]) -> list[TrashedMemory]:
    wanted = set(trashed_ids)
    found = list(
        TrashedMemory.objects.select_for_update().filter(agent=agent, pk__in=wanted).order_by("pk")
    )
    if not wanted or {entry.pk for entry in found} != wanted:
        raise TrashGone(TrashGone.message)
    return found


def restore_from_trash(*, actor: Actor, agent: Agent, trashed_ids: Sequence[int]) -> int:
    """Put trashed memories back exactly as stored, all or none. Raises TrashGone when one
    left the trash, runtime.MemoryExists when the runtime has one of their ids again."""
    with transaction.atomic():
        entries = _locked_trash(agent, trashed_ids)
        memory_ids = [entry.memory_id for entry in entries]
        if len(set(memory_ids)) != len(memory_ids):
            raise RestoredTwice(RestoredTwice.message)
        created_tables = runtime_transfer.restore_memories(agent, [e.row for e in entries])
        TrashedMemory.objects.filter(pk__in=[entry.pk for entry in entries]).delete()
        if created_tables:
            audit.record(actor, agent, AuditEvent.Action.TABLES_CREATED)
        users = {entry.user_id for entry in entries}
        audit.record(
            actor,
            agent,
            AuditEvent.Action.MEMORIES_RESTORED,
            user_id=next(iter(users)) if len(users) == 1 else "",
            details={"count": len(entries), "memory_ids": memory_ids},
        )
        flags.rescan_ids(agent, memory_ids)
    queue_recounts(agent, users)
    return len(entries)


def undo_prune(*, actor: Actor, job: PruneJob) -> int:
    """Put back every memory a prune took, as restore_from_trash does: all or none."""
    trashed = list(TrashedMemory.objects.filter(prune_job=job).values_list("pk", flat=True))
    if not trashed:
        raise TrashGone(TrashGone.message)
    return restore_from_trash(actor=actor, agent=job.agent, trashed_ids=trashed)


def purge_trash(*, actor: Actor, agent: Agent, trashed_ids: Sequence[int]) -> int:
    """Delete trashed memories for good, all of `trashed_ids` or none."""
    with transaction.atomic():
        entries = _locked_trash(agent, trashed_ids)
        TrashedMemory.objects.filter(pk__in=[entry.pk for entry in entries]).delete()
        audit.record(
            actor,
            agent,
            AuditEvent.Action.TRASH_PURGED,
            details={"count": len(entries), "memory_ids": [e.memory_id for e in entries]},
        )
    return len(entries)


def empty_expired_trash(*, batch: int = 1_000) -> int:
    """Delete up to `batch` trashed memories past their agent's trash_days (the scheduled
    job runs this until none is left); one audit event per agent."""
    with transaction.atomic():
        chosen = list(
            trash.expired()
            .select_for_update(skip_locked=True)
            .order_by("expires_at", "id")
            .values_list("id", "agent_id")[:batch]
        )
        per_agent: dict[int, int] = {}
        for _, agent_id in chosen:
            per_agent[agent_id] = per_agent.get(agent_id, 0) + 1
        TrashedMemory.objects.filter(pk__in=[pk for pk, _ in chosen]).delete()
        for agent in Agent.objects.filter(pk__in=per_agent):
            audit.record(
                None,
                agent,
                AuditEvent.Action.TRASH_PURGED,
                details={"count": per_agent[agent.pk], "expired": True},
            )
    return len(chosen)


# Import


# SQLSTATEs of values Postgres refuses to store: the file's fault, not the server's.
UNSTORABLE_STATES = {
    "22003": "a number is out of range",
    "22P05": "text Postgres cannot store",
    "22021": "text Postgres cannot store",
    "54000": "an id too long for the runtime's index (about 2,700 bytes at most)",
    "54001": "JSON nested too deeply",
}


def import_memories(
    *,
    actor: Actor,
    agent: Agent,
    data: bytes,
    filename: str,
    user_id: str | None = None,
    valid_rows_only: bool = False,
    dry_run: bool = False,
) -> import_export.ImportReport:
    """Validate every row, then write all, the valid ones (if chosen) or nothing. An export
    (report.exact) is restored as stored. Raises import_export.ImportFileError when the file
    as a whole cannot be read, or Postgres refuses a value (then nothing is written)."""
    report = import_export.check_import(agent, data, filename, user_id=user_id)
    if dry_run or (report.rejected and not valid_rows_only):
        return report
    try:
        with transaction.atomic():
            report.added, report.updated = runtime_transfer.upsert_memories(
                agent, report.accepted, exact=report.exact
            )
            report.written = True
            audit.record(
                actor,
                agent,
                AuditEvent.Action.MEMORIES_IMPORTED,
                user_id=user_id or "",
                details={
                    "added": report.added,
                    "updated": report.updated,
                    "rejected": len(report.rejected),
                },
            )
            flags.rescan_ids(agent, [row["memory_id"] for row in report.accepted])
    except DatabaseError as error:
        state = getattr(error.__cause__, "sqlstate", None)
        if state not in UNSTORABLE_STATES:
            raise
        report.written = False
        report.added = report.updated = 0
        raise import_export.ImportFileError(
            f"Postgres refused a row ({UNSTORABLE_STATES[state]}); nothing was written."
        ) from error
    # Memories without a user_id count towards no one's context.
    queue_recounts(agent, {row["user_id"] for row in report.accepted})
    return report


# People and sessions


def delete_session(*, actor: Actor, agent: Agent, session_id: str) -> tuple[str | None, int]:
    """Delete a session with its runs (the runtime's foreign key); memories stay."""
    with transaction.atomic():
        user_id, runs = runtime_sessions.delete_session(agent, session_id)
        audit.record(
            actor,
            agent,
            AuditEvent.Action.SESSION_DELETED,
            user_id=user_id or "",
            details={"session_id": session_id, "runs": runs},
        )
    return user_id, runs


def register_user(*, actor: Actor, agent: Agent, user_id: str, form: Any) -> EndUser:
    """Save a valid EndUserForm: the person behind a user_id becomes known to the studio."""
    with transaction.atomic():
        person = form.save()
        audit.record(
            actor,
            agent,
            AuditEvent.Action.USER_REGISTERED,
            user_id=user_id,
            details={"email": person.email},
        )
    return person


def export_started(*, actor: Actor, agent: Agent, user_id: str | None) -> None:
    """Exports write nothing, but who took a copy of which memories is on the record."""
    audit.record(actor, agent, AuditEvent.Action.MEMORIES_EXPORTED, user_id=user_id or "")


# Scoping and duplicates: memories under the wrong user_id, memories that repeat


class SameUserId(ValueError):
    message = "The memories are already under that user_id: choose another one."


def move_user_memories(
    *, actor: Actor, agent: Agent, source: str | None, target: str, sessions: bool = False
) -> runtime_scoping.Moved:
    """Put every memory of `source` (and, if asked, its sessions and runs) under `target`, in
    one transaction on the agent's connection; flags follow the memories, counts are redone."""
    if source == target:
        raise SameUserId(SameUserId.message)
    with transaction.atomic():
        moved = runtime_scoping.move_user_rows(agent, source, target, sessions=sessions)
        trashed = trash.move_owner(agent, source, target)  # so a restore lands under target
        audit.record(
            actor,
            agent,
            AuditEvent.Action.MEMORIES_MOVED,
            user_id=source or "",
            details={
                "to": target,
                "from_null": source is None,
                "memories": moved.memories,
                "sessions": moved.sessions,
                "runs": moved.runs,
                "trashed": trashed,
            },
        )
        SensitiveFlag.objects.filter(agent=agent, memory_id__in=moved.memory_ids).update(
            user_id=target
        )
        PruneCandidate.objects.filter(
            job__agent=agent, job__finished_at=None, memory_id__in=moved.memory_ids
        ).update(user_id=target)
        if source is not None:
            tokens.drop_counts(agent, source)
        reports.drop_moved_user(agent, source, target, moved)
        queue_recount(agent, target)
    return moved


def start_move(
    *, actor: Actor, agent: Agent, source: str | None, target: str, sessions: bool, total: int
) -> Job:
    """A large move runs on a worker, still as one transaction (one batch)."""
    if source == target:
        raise SameUserId(SameUserId.message)
    return jobs.create_job(
        kind=Job.Kind.MOVE_USER,
        agent=agent,
        actor=actor,
        params={"source": source, "target": target, "sessions": sessions},
        total=total,
    )


def remove_duplicates(
    *, actor: Actor, agent: Agent, removals: Sequence[Any], merge_topics: bool = False
) -> int:
    """Remove the chosen repeats (memories.duplicates.plan_removal) through delete_memories,
    after giving each kept memory the group's topics if asked; all or nothing."""
    removed = 0
    by_user: dict[str | None, list[Any]] = {}
    for removal in removals:
        by_user.setdefault(removal.user_id, []).append(removal)
    with transaction.atomic():
        for user_id, planned in by_user.items():
            for removal in planned:
                if removal.topics is not None:
                    edit_memory(
                        actor=actor,
                        agent=agent,
                        user_id=user_id,
                        memory_id=removal.keep.memory_id,
                        version=removal.keep.version,
                        text=None,
                        topics=removal.topics,
                    )
            removed += delete_memories(
                actor=actor,
                agent=agent,
                user_id=user_id,
                memory_ids=[m.memory_id for r in planned for m in r.remove],
                reason=TrashedMemory.Reason.DUPLICATE,  # removed repeats can be restored
            )
        reports.drop_memories(agent, [m.memory_id for r in removals for m in r.remove])
        audit.record(
            actor,
            agent,
            AuditEvent.Action.DUPLICATES_REMOVED,
            user_id=(next(iter(by_user)) or "") if len(by_user) == 1 else "",
            details={
                "removed": removed,
                "groups": len(removals),
                "users": len(by_user),
                "topics_merged": merge_topics,
            },
        )
    return removed
