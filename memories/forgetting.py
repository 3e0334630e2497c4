"""Forgetting a person leaves no studio-side trace of their user_id, only a keyed hash.

The hash is an HMAC-SHA256 keyed with SECRET_KEY and FORGET_RECEIPT_SALT: whoever holds the
key can check that a given user_id was forgotten (a person asking "did you erase me?"), while
the receipt, the audit log and the jobs no longer say who it was.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent
from memories import reports, tokens
from memories.models import (
    AuditEvent,
    EndUser,
    Job,
    PruneCandidate,
    PruneJob,
    SensitiveFlag,
    TrashedMemory,
)
from memories.scoping import ALIASES
from studio import stored_json

PREFIX = "hmac-sha256:"
# What the runtime's rows without a user_id are called in receipts (no person to hide).
NULL_USER = "\x00no user_id"


def user_hash(user_id: str | None) -> str:
    key = (settings.SECRET_KEY + settings.FORGET_RECEIPT_SALT).encode()
    value = NULL_USER if user_id is None else user_id
    return PREFIX + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def hashed(value: Any, user_id: str, digest: str) -> Any:
    """`value` (JSON) with the user_id replaced by its hash: as a whole value, or quoted in a
    sentence (“ann”, as PruneCriteria.describe writes it); never inside other words."""
    if isinstance(value, str):
        if value == user_id:
            return digest
        return value.replace(f"“{user_id}”", f"“{digest}”")
    if isinstance(value, list):
        return [hashed(item, user_id, digest) for item in value]
    if isinstance(value, dict):
        return {key: hashed(item, user_id, digest) for key, item in value.items()}
    return value


def drop_agent_traces(agent: Agent, user_id: str | None, digest: str) -> int:
    """The user's studio rows in one agent: counts, flags, prune candidates, trash and their
    lines in stored reports go; audit events and prune criteria keep the hash. Returns how
    many trashed memories went."""
    tokens.drop_counts(agent, user_id)
    SensitiveFlag.objects.filter(agent=agent, user_id=user_id).delete()
    PruneCandidate.objects.filter(job__agent=agent, user_id=user_id).delete()
    trashed, _ = TrashedMemory.objects.filter(agent=agent, user_id=user_id).delete()
    reports.forget_user(agent, user_id)
    if user_id:  # the NULL user (stored as "") is nobody to hide
        # A move's target is in its details ("to"); the user_id column names its source.
        events = AuditEvent.objects.filter(agent=agent).filter(
            Q(user_id=user_id) | Q(details__to=user_id)
        )
        for event in events:
            event.user_id = digest if event.user_id == user_id else event.user_id
            event.details = hashed(event.details, user_id, digest)
            event.save(update_fields=["user_id", "details"])
        for prune in PruneJob.objects.filter(agent=agent, criteria__user_id=user_id):
            prune.criteria = hashed(prune.criteria, user_id, digest)
            prune.save(update_fields=["criteria"])
        running_forgets = Q(kind=Job.Kind.FORGET, state__in=[Job.State.QUEUED, Job.State.RUNNING])
        # A forget still running needs the user_id; its last batch hides it (job_batches).
        for job in Job.objects.filter(agent=agent).filter(naming(user_id)).exclude(running_forgets):
            hide_in_job(job, user_id, digest)
        _drop_queued_recounts([agent.pk], user_id)
    return trashed


def hide_in_job(job: Job, user_id: str, digest: str) -> None:
    job.params = hashed(job.params, user_id, digest)
    job.result = hashed(job.result, user_id, digest)
    job.save(update_fields=["params", "result"])


def _drop_queued_recounts(agent_ids: Sequence[int], user_id: str) -> None:
    """Recount tasks name the user in their arguments; a forgotten user has nothing to count."""
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from memories.tasks import recount_user

    DBTaskResult.objects.filter(
        task_path=recount_user.module_path,
        args_kwargs__args__0__in=list(agent_ids),
        args_kwargs__args__1=user_id,
    ).exclude(status=TaskResultStatus.RUNNING).delete()


def remove_registration(user_id: str | None) -> bool:
    """Delete the registry entry whose email or id is `user_id`; True if there was one."""
    if not user_id:
        return False
    removed, _ = EndUser.objects.filter(Q(email__iexact=user_id) | Q(external_id=user_id)).delete()
    return bool(removed)


# Jobs and files that would keep the user, or bring them back, after the forget.

OPEN_STATES = [Job.State.QUEUED, Job.State.RUNNING, Job.State.FAILED]  # a failed one may retry


def naming(user_id: str) -> Q:
    """Jobs whose parameters name the user: imports into their page, moves from or to them."""
    return Q(params__user_id=user_id) | Q(params__source=user_id) | Q(params__target=user_id)


@dataclass
class HeldJobs:
    """The agent's imports and exports, locked for the forget's transaction (a worker waits),
    and how many queued, running or failed moves and imports naming the user were stopped."""

    stopped: int = 0
    files: list[tuple[Job, Path]] = field(default_factory=list)


def hold_jobs(agent: Agent, user_id: str | None) -> HeldJobs:
    """Before the erase: lock the agent's moves, imports and exports so no batch runs until the
    forget commits; stop every open move or import that names the user (a move to them or an
    import into their page would write their rows again). Other imports and every export keep
    running; clean_job_files takes the user's lines out of their files at the end."""
    from memories import import_export, job_batches

    held = HeldJobs()
    if not user_id:  # the NULL user is nobody to hide
        return held
    # Every import and export (a cancelled import's file stays on disk), open moves only.
    wanted = Q(kind__in=[Job.Kind.IMPORT, Job.Kind.EXPORT]) | Q(
        kind=Job.Kind.MOVE_USER, state__in=OPEN_STATES
    )
    locked = Job.objects.select_for_update(of=("self",)).filter(wanted, agent=agent)
    for job in locked.order_by("pk"):
        path = (
            import_export.pending_import_path(job.pk)
            if job.kind == Job.Kind.IMPORT
            else job_batches.export_path(job)
        )
        if job.kind != Job.Kind.EXPORT and job.state in OPEN_STATES and _names(job, user_id):
            job.state, job.finished_at, job.task_id = Job.State.CANCELLED, timezone.now(), ""
            job.cancel_requested = True
            job.error = "Stopped: it named a user who was forgotten."
            job.save(update_fields=["state", "finished_at", "task_id", "cancel_requested", "error"])
            if job.kind == Job.Kind.IMPORT:
                transaction.on_commit(lambda path=path: path.unlink(missing_ok=True))
            held.stopped += 1
            continue
        if job.kind != Job.Kind.MOVE_USER and path.exists():
            held.files.append((job, path))
    return held


def _names(job: Job, user_id: str) -> bool:
    params = job.params if isinstance(job.params, dict) else {}
    return user_id in (params.get("user_id"), params.get("source"), params.get("target"))


def clean_job_files(held: HeldJobs, user_id: str | None) -> int:
    """The user's lines out of every held import and export file, the job's byte cursor moved
    to match, so an export the workers finish (or finished) holds no memory of theirs and an
    import writes none. Returns how many export files changed."""
    from memories.models import Job as JobModel

    changed = 0
    for job, path in held.files:
        removed, removed_before, cursor = drop_user_lines(path, user_id, job.cursor.get("bytes"))
        if not removed:
            continue
        fields = ["cursor", "done"]
        if "bytes" in job.cursor:
            job.cursor = {**job.cursor, "bytes": cursor}
        job.done = max(job.done - removed_before, 0)
        if job.kind == JobModel.Kind.IMPORT:
            job.total = max(job.total - removed, 0)
            fields.append("total")
        elif isinstance(job.result, dict) and "memories" in job.result:
            job.result = {**job.result, "memories": job.done, "bytes": path.stat().st_size}
            fields.append("result")
        job.save(update_fields=fields)
        changed += job.kind == JobModel.Kind.EXPORT
    return changed


def drop_user_lines(path: Path, user_id: str | None, cursor: int | None) -> tuple[int, int, int]:
    """Rewrite a JSON Lines file without the rows whose user_id is `user_id`. Returns the rows
    removed, those of them before byte `cursor`, and where `cursor` falls in the new file."""
    removed = removed_before = 0
    read = written = 0
    new_cursor = None
    part = path.with_name(path.name + ".forget")
    with open(path, "rb") as source, open(part, "wb") as target:
        for line in source:
            if cursor is not None and new_cursor is None and read >= cursor:
                new_cursor = written
            read += len(line)
            try:
                row = stored_json.loads(line)  # a row nested however deep
            except ValueError:
                row = None  # a line a killed worker left half-written is kept as it is
            if isinstance(row, dict) and "memory_id" in row and row.get("user_id") == user_id:
                removed += 1
                removed_before += cursor is not None and read <= cursor
                continue
            target.write(line)
            written += len(line)
        target.flush()
        os.fsync(target.fileno())
    if cursor is not None and new_cursor is None:
        new_cursor = written
    if removed:
        os.replace(part, path)
    else:
        part.unlink()
    return removed, removed_before, new_cursor if new_cursor is not None else written


# Registry and admin traces, once per forget (they are not per agent).


def remove_alias(user_id: str | None) -> int:
    """Take the user_id out of every registration's aliases; how many registrations changed."""
    if not user_id:
        return 0
    changed = 0
    for person in EndUser.objects.filter(additional_attributes__aliases__contains=[user_id]):
        aliases = person.additional_attributes[ALIASES]
        person.additional_attributes = {
            **person.additional_attributes,
            ALIASES: [alias for alias in aliases if alias != user_id],
        }
        person.save(update_fields=["additional_attributes"])
        changed += 1
    return changed


def hide_in_admin_log(user_id: str | None, digest: str) -> None:
    """The admin's history names a registration by its email (EndUser.__str__)."""
    if not user_id:
        return
    from django.contrib.admin.models import LogEntry

    # Emails match whatever their case (remove_registration matches them so too).
    pattern = re.compile(re.escape(user_id), re.IGNORECASE)
    for entry in LogEntry.objects.filter(object_repr__icontains=user_id):
        entry.object_repr = pattern.sub(digest, entry.object_repr)[:200]
        entry.save(update_fields=["object_repr"])
