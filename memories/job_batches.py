"""One batch of each kind of job. Each runs inside the transaction that holds the job's lock,
moves `job.cursor` and `job.done` past what it committed, and returns True when nothing is
left. Writes go through memories.actions, as every write does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from memories import (
    actions,
    duplicates,
    flags,
    forgetting,
    import_export,
    reports,
    scoping,
    tokens,
    trash,
)
from memories.models import ForgetReceipt, ForgetReceiptLine, Job, PruneJob, UserTokens
from memories.pruning import PRUNE_BATCH
from memories.runtime import scoping as runtime_scoping
from memories.runtime.transfer import export_rows_after
from memories.runtime.users import memory_users_after
from studio import stored_json

SCAN_BATCH = flags.SCAN_BATCH
SWEEP_BATCH = 500  # users looked at per batch
EXPORT_BATCH = 2_000


def run_batch(job: Job) -> bool:
    return BATCHES[job.kind](job)


def after_done(job: Job) -> None:
    """What a finished job sets going: a periodic one queues its next pass, and hands on any
    job whose worker died, starts a sweep for an agent that has none (the watchdog, without
    a worker restart)."""
    from memories import jobs

    if job.kind in (Job.Kind.TOKEN_SWEEP, Job.Kind.TRASH_EMPTYING):
        schedule_next(job)
        transaction.on_commit(jobs.ensure_schedules)


def schedule_next(job: Job) -> None:
    """The next pass of a periodic job (token sweep, trash emptying), however this one ended."""
    if job.kind == Job.Kind.TOKEN_SWEEP and job.agent is not None:
        schedule_next_sweep(job)
    if job.kind == Job.Kind.TRASH_EMPTYING:
        schedule_next_emptying(job)


def before_cancel(job: Job) -> None:
    """A batch staged by the last step is settled, not left half done: a prune's trash copies
    of memories it will not delete go (and the prune ends), a forget erases the agent its
    receipt already names, an export's partial file and an import's pending rows go."""
    if job.kind == Job.Kind.PRUNE:
        prune = PruneJob.objects.filter(pk=job.params["prune_job"]).first()
        if prune is not None:
            actions.stop_prune(actor=job.actor, job=prune)
    if job.kind == Job.Kind.FORGET and job.cursor.get("line") is not None:
        forget_batch(job)
    if job.kind == Job.Kind.SCOPING_CHECK:  # the stored report stays as the last check left it
        job.cursor = {key: value for key, value in job.cursor.items() if key != "kept"}
    # A part of an export is no export, and an import's checked rows hold memory text:
    # neither is kept once nothing will use it.
    if job.kind in (Job.Kind.EXPORT, Job.Kind.IMPORT):
        path = (
            export_path(job)
            if job.kind == Job.Kind.EXPORT
            else import_export.pending_import_path(job.pk)
        )
        transaction.on_commit(lambda: path.unlink(missing_ok=True))


def _batch_size(job: Job, default: int) -> int:
    return int(job.params.get("batch") or default)


# Sensitive scan: the agent's memories in memory_id order (the cursor is SensitiveScan's).


def sensitive_scan_batch(job: Job) -> bool:
    state = actions.scan_sensitive_batch(agent=job.agent, batch=_batch_size(job, SCAN_BATCH))
    job.done = state.scanned
    job.result = {"flagged": flags.SensitiveFlag.objects.filter(agent=job.agent).count()}
    return state.finished_at is not None


# Token sweep: recount exactly the users whose memories changed since they were counted.


def stale_users(agent: Agent, memory_users: list[tuple[str, int, int]]) -> list[str]:
    """Users whose count is missing, or older than their newest memory, or of another number
    of memories (agno deleted one). A session written since changes no memory: not stale."""
    counted = tokens.token_map(agent, [user_id for user_id, _, _ in memory_users])
    stale = []
    for user_id, memory_count, newest in memory_users:
        count = counted.get(user_id)
        if count is None:
            stale.append(user_id)
            continue
        if count.newest_memory_at is not None:  # the time it counted up to: compare exactly
            changed_since = newest != count.newest_memory_at
        else:  # counted before counts kept it: a change in the same second counts as newer
            changed_since = newest is not None and newest >= int(count.refreshed_at.timestamp())
        if changed_since or memory_count != count.memories:
            stale.append(user_id)
    return stale


def token_sweep_batch(job: Job) -> bool:
    after = job.cursor.get("after")
    limit = _batch_size(job, SWEEP_BATCH)
    memory_users = memory_users_after(job.agent, after=after, limit=limit)
    keys = [user_id for user_id, _, _ in memory_users]
    last = keys[-1] if len(keys) == limit else None
    # Counted users who hold no memory any more (agno deleted them): their count goes.
    gone = UserTokens.objects.filter(agent=job.agent).exclude(user_id__in=keys)
    if after is not None:
        gone = gone.filter(user_id__gt=after)
    if last is not None:
        gone = gone.filter(user_id__lte=last)
    # In user_id order, as every recount takes the rows' locks: concurrent ones cannot deadlock.
    stale = sorted({*stale_users(job.agent, memory_users), *gone.values_list("user_id", flat=True)})
    for user_id in stale:
        tokens.recount_user(job.agent, user_id)  # remembers the newest time it counted
    job.done += len(keys)
    job.result = {"recounted": job.result.get("recounted", 0) + len(stale)}
    job.cursor = {"after": last}
    return last is None


def schedule_next_sweep(job: Job) -> None:
    """Queue the agent's next pass; old passes go (jobs.prune_old_passes)."""
    from memories import jobs

    if Job.objects.filter(
        kind=Job.Kind.TOKEN_SWEEP, agent=job.agent, state__in=[Job.State.QUEUED]
    ).exists():
        return
    jobs.prune_old_passes(job)
    jobs.create_job(
        kind=Job.Kind.TOKEN_SWEEP,
        agent=job.agent,
        actor=None,
        params=job.params,
        run_after=timezone.now() + timedelta(minutes=settings.TOKEN_SWEEP_MINUTES),
    )


# Trash emptying: expired trashed memories deleted for good, then again a while later.

TRASH_BATCH = 1_000


def trash_emptying_batch(job: Job) -> bool:
    batch = _batch_size(job, TRASH_BATCH)
    deleted = actions.empty_expired_trash(batch=batch)
    job.done += deleted
    job.result = {"deleted": job.done}
    return deleted < batch


def schedule_next_emptying(job: Job) -> None:
    """Queue the next pass; old passes go (jobs.prune_old_passes)."""
    from memories import jobs

    if Job.objects.filter(kind=Job.Kind.TRASH_EMPTYING, state=Job.State.QUEUED).exists():
        return
    jobs.prune_old_passes(job)
    jobs.create_job(
        kind=Job.Kind.TRASH_EMPTYING,
        agent=None,
        actor=None,
        params=job.params,
        run_after=timezone.now() + trash.emptying_interval(),
    )


# Prune: the previewed candidates, deleted by actions.run_prune_batch.


def prune_batch(job: Job) -> bool:
    """Settle the batch the previous step staged, then stage the next: the trash copies of a
    batch commit in one step and the runtime delete runs in the next, so a worker killed
    after a separate runtime database committed the delete leaves the undo in place."""
    prune = PruneJob.objects.get(pk=job.params["prune_job"], agent=job.agent)
    prune = actions.settle_prune_batch(actor=job.actor, job=prune)
    if not prune.finished_at:
        prune = actions.stage_prune_batch(
            actor=job.actor, job=prune, batch=_batch_size(job, PRUNE_BATCH)
        )
    job.total = prune.planned
    job.done = prune.deleted + prune.skipped
    job.result = {"deleted": prune.deleted, "kept_changed": prune.skipped}
    return prune.finished_at is not None


# Forget a user across agents: each agent's receipt line is staged in one step and the agent
# erased in the next (one runtime transaction per agent), so a worker killed after a separate
# runtime database committed the erase leaves the counts on the receipt.


def forget_batch(job: Job) -> bool:
    index, staged = job.cursor.get("index", 0), job.cursor.get("line")
    agent_ids = job.params["agent_ids"]
    user_id = job.params["user_id"]
    receipt = ForgetReceipt.objects.filter(pk=job.params.get("receipt")).first()
    if receipt is None:  # every forget job starts with one; never erase without a receipt
        receipt = actions.start_receipt(actor=job.actor, user_id=user_id)
        job.params = {**job.params, "receipt": receipt.pk}
    line = ForgetReceiptLine.objects.select_related("agent").filter(pk=staged).first()
    if staged is not None:
        if line is not None and line.agent is not None:
            footprint = actions.settle_forget(actor=job.actor, line=line, user_id=user_id)
            erased = job.result.get("erased", {})
            erased[line.agent_slug] = {
                "memories": footprint.memories,
                "sessions": footprint.sessions,
                "runs": footprint.runs,
            }
            job.result = {"erased": erased, "receipt": job.params.get("receipt")}
        index, staged = index + 1, None
    while staged is None and index < len(agent_ids):
        agent = Agent.objects.filter(pk=agent_ids[index]).first()
        if agent is None:  # removed since the job started: nothing of it to erase
            index += 1
            continue
        staged = actions.stage_forget(receipt=receipt, agent=agent, user_id=user_id).pk
    job.cursor = {"index": index, "line": staged}
    job.done = index
    finished = staged is None
    if finished:
        if receipt is not None:
            actions.finish_receipt(
                receipt=receipt,
                user_id=user_id,
                remove_registration=bool(job.params.get("remove_registration")),
            )
        # The job no longer needs the user_id: it keeps the hash, as the audit log does.
        job.params = {**job.params, "user_id": forgetting.user_hash(user_id)}
    return finished


# Export the whole agent to a JSON Lines file, downloadable when done.


def export_path(job: Job) -> Path:
    return Path(settings.MEDIA_ROOT) / "exports" / f"job-{job.pk}.jsonl"


def export_batch(job: Job) -> bool:
    path = export_path(job)
    path.parent.mkdir(parents=True, exist_ok=True)
    offset = job.cursor.get("bytes", 0)
    # The same lines as the page's export: its header, then each memory exactly as stored.
    rows = export_rows_after(job.agent, job.cursor.get("after"), _batch_size(job, EXPORT_BATCH))
    with open(path, "ab") as file:
        # Lines a killed worker wrote after its last commit are cut off, never repeated.
        file.truncate(offset)
        file.seek(offset)
        if offset == 0:
            file.write((json.dumps(import_export.EXPORT_HEADER) + "\n").encode())
        for row in rows:
            file.write((stored_json.dumps(row, ensure_ascii=False) + "\n").encode())
        file.flush()
        os.fsync(file.fileno())
        offset = file.tell()
    job.done += len(rows)
    job.cursor = {
        "after": rows[-1]["memory_id"] if rows else job.cursor.get("after"),
        "bytes": offset,
    }
    finished = len(rows) < _batch_size(job, EXPORT_BATCH)
    if finished:
        job.result = {"memories": job.done, "bytes": offset, "file": path.name}
    return finished


# Import: the checked rows of a large file, written a batch at a time.

IMPORT_BATCH = 1_000


def import_batch(job: Job) -> bool:
    path = import_export.pending_import_path(job.pk)
    offset, limit = job.cursor.get("bytes", 0), _batch_size(job, IMPORT_BATCH)
    rows = []
    with open(path, "rb") as file:
        file.seek(offset)
        while len(rows) < limit:
            line = file.readline()
            if not line:
                break
            rows.append(json.loads(line))
        offset = file.tell()
        last = not file.readline()
    actions.import_batch(actor=job.actor, job=job, rows=rows, last=last)
    job.done += len(rows)
    job.cursor = {"bytes": offset}
    if last:
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
    return last


# Move a user_id's rows: one batch, so the move stays one transaction, as a direct one is.


def move_user_batch(job: Job) -> bool:
    params = job.params
    moved = actions.move_user_memories(
        actor=job.actor,
        agent=job.agent,
        source=params["source"],
        target=params["target"],
        sessions=bool(params.get("sessions")),
    )
    job.done = moved.memories
    job.result = {"memories": moved.memories, "sessions": moved.sessions, "runs": moved.runs}
    return True


# Scoping check: every user_id of the agent, a batch at a time, the first 1,000 problems kept
# in the cursor (memories.reports.kept_problems) until the last batch stores them.

SCOPING_BATCH = runtime_scoping.USER_ID_BATCH


def scoping_check_batch(job: Job) -> bool:
    cursor, limit = job.cursor, _batch_size(job, SCOPING_BATCH)
    if not cursor.get("began"):  # the runtime's memories without a user_id, once
        null_user = scoping.null_user_problem(job.agent)
        found = [null_user] if null_user is not None else []
        cursor = {"began": True, "after": None, "kept": [], "problems": 0}
    else:
        found = []
    rows = runtime_scoping.user_id_counts_after(job.agent, cursor["after"], limit)
    # Built again each batch: a person registered meanwhile counts from the next batch on.
    found += scoping.problems_among(scoping.RegisteredIndex(job.agent), rows)
    kept = reports.kept_problems(cursor["kept"], found)
    problems = cursor["problems"] + len(found)
    job.done += len(rows)
    finished = len(rows) < limit
    if finished:
        actions.store_scoping_report(job=job, rows=kept, total=problems)
        job.result = {"problems": problems}
        job.cursor = {"began": True, "after": None, "problems": problems}
    else:
        after = rows[-1].user_id
        job.cursor = {"began": True, "after": after, "kept": kept, "problems": problems}
    return finished


# Duplicate search: one batch, since the search is one query that stops after 20 seconds.


def duplicate_search_batch(job: Job) -> bool:
    scope = reports.DuplicateScope.from_params(job.params)
    found = duplicates.find_duplicates(
        job.agent,
        user_id=scope.user_id,
        all_users=scope.all_users,
        threshold=scope.threshold,
        near=scope.near,
    )
    actions.store_duplicate_report(job=job, found=found)
    job.done = 1
    job.result = {"groups": len(found.groups), "repeats": found.repeats}
    return True


BATCHES: dict[str, Callable[[Job], bool]] = {
    Job.Kind.SENSITIVE_SCAN: sensitive_scan_batch,
    Job.Kind.TOKEN_SWEEP: token_sweep_batch,
    Job.Kind.PRUNE: prune_batch,
    Job.Kind.FORGET: forget_batch,
    Job.Kind.EXPORT: export_batch,
    Job.Kind.IMPORT: import_batch,
    Job.Kind.MOVE_USER: move_user_batch,
    Job.Kind.TRASH_EMPTYING: trash_emptying_batch,
    Job.Kind.SCOPING_CHECK: scoping_check_batch,
    Job.Kind.DUPLICATE_SEARCH: duplicate_search_batch,
}
