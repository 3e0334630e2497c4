"""Long work handed to the workers (memories.jobs), and what people do with it: starting the
agent-wide scan, a confirmed prune, an export or an import, one import batch, and cancelling
or retrying a job. Called as memories.actions.* like every other write."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from memories import audit, flags, import_export, jobs, tokens
from memories.actions.actor import Actor
from memories.models import AuditEvent, Job, PruneJob, SensitiveScan
from memories.runtime import overview as runtime_overview
from memories.runtime import transfer as runtime_transfer


def start_sensitive_scan(*, actor: Actor, agent: Agent, batch: int | None = None) -> Job:
    """Scan every memory of the agent again from the start, a batch at a time."""
    with transaction.atomic():
        running = _unfinished(agent, Job.Kind.SENSITIVE_SCAN)
        if running is not None:
            return running
        SensitiveScan.objects.update_or_create(
            agent=agent,
            defaults={"after_memory_id": "", "scanned": 0, "finished_at": None},
        )
        total = runtime_overview.agent_overview(agent).memory_count
        params = {"batch": batch} if batch else {}
        return jobs.create_job(
            kind=Job.Kind.SENSITIVE_SCAN, agent=agent, actor=actor, params=params, total=total
        )


def scan_sensitive_batch(*, agent: Agent, batch: int) -> SensitiveScan:
    """One batch of the agent-wide scan: flags follow the memories' current text."""
    return flags.scan_next_batch(agent, batch)


def confirm_prune(*, actor: Actor, job: PruneJob, batch: int | None = None) -> Job:
    """A confirmed prune is deleted by the workers; confirming twice starts nothing new."""
    with transaction.atomic():
        prune = PruneJob.objects.select_for_update().get(pk=job.pk)
        existing = prune.worker_job()
        if existing is not None:
            return existing
        if prune.confirmed_at is None:
            prune.confirmed_at = timezone.now()
            prune.save(update_fields=["confirmed_at"])
        params: dict[str, Any] = {"prune_job": prune.pk}
        if batch:
            params["batch"] = batch
        return jobs.create_job(
            kind=Job.Kind.PRUNE, agent=prune.agent, actor=actor, params=params, total=prune.planned
        )


def start_export(*, actor: Actor, agent: Agent, batch: int | None = None) -> Job:
    """Write every memory of the agent to a file the Jobs page offers when done."""
    with transaction.atomic():
        audit.record(actor, agent, AuditEvent.Action.MEMORIES_EXPORTED)
        total = runtime_overview.agent_overview(agent).memory_count
        params = {"batch": batch} if batch else {}
        return jobs.create_job(
            kind=Job.Kind.EXPORT, agent=agent, actor=actor, params=params, total=total
        )


def start_import(
    *,
    actor: Actor,
    agent: Agent,
    data: bytes,
    filename: str,
    user_id: str | None = None,
    valid_rows_only: bool = False,
) -> tuple[import_export.ImportReport, Job | None]:
    """Check every row now (as a direct import does), then hand the accepted rows to the
    workers; nothing is queued when rows are rejected and only all-or-nothing was asked."""
    report = import_export.check_import(agent, data, filename, user_id=user_id)
    if report.rejected and not valid_rows_only:
        return report, None
    with transaction.atomic():
        job = jobs.create_job(
            kind=Job.Kind.IMPORT,
            agent=agent,
            actor=actor,
            # An export is restored as stored, on the workers as on the page.
            params={
                "user_id": user_id or "",
                "rejected": len(report.rejected),
                "exact": report.exact,
            },
            total=len(report.accepted),
        )
        path = import_export.pending_import_path(job.pk)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as file:
            for row in report.accepted:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
    return report, job


def import_batch(*, actor: Actor, job: Job, rows: list[dict[str, Any]], last: bool) -> None:
    """Write one batch of a background import; the last one records the audit event."""
    agent = job.agent
    added, updated = runtime_transfer.upsert_memories(
        agent, rows, exact=bool(job.params.get("exact"))
    )
    flags.rescan_ids(agent, [row["memory_id"] for row in rows])
    # Memories without a user_id count towards no one's context.
    tokens.recount_users(agent, {row["user_id"] for row in rows if row["user_id"] is not None})
    job.result = {
        "added": job.result.get("added", 0) + added,
        "updated": job.result.get("updated", 0) + updated,
    }
    if last:
        audit.record(
            actor,
            agent,
            AuditEvent.Action.MEMORIES_IMPORTED,
            user_id=job.params.get("user_id", ""),
            details={**job.result, "rejected": job.params.get("rejected", 0)},
        )


class JobFinished(ValueError):
    message = "That job has already finished; there is nothing to cancel."


class JobNotFailed(ValueError):
    message = "Only a failed job can be retried."


def cancel_job(*, actor: Actor, job: Job) -> Job:
    """Stop a job between batches: a queued one at once, a running one after its batch."""
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("agent").get(pk=job.pk)
        if job.is_finished:
            raise JobFinished(JobFinished.message)
        job.cancel_requested = True
        if job.started_at is None:
            from memories import job_batches  # it runs jobs through these actions

            job_batches.before_cancel(job)  # a confirmed prune ends, a pending file goes
            job.state, job.finished_at, job.task_id = Job.State.CANCELLED, timezone.now(), ""
        job.save()
        if job.is_finished:
            transaction.on_commit(lambda: jobs.keep_schedule(job.pk))
        audit.record(
            actor,
            job.agent,
            AuditEvent.Action.JOB_CANCELLED,
            details={"job": job.pk, "kind": job.kind},
        )
    return job


def retry_job(*, actor: Actor, job: Job) -> Job:
    """Run a failed job again from its last committed batch."""
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("agent").get(pk=job.pk)
        if job.state != Job.State.FAILED:
            raise JobNotFailed(JobNotFailed.message)
        job.state, job.error, job.finished_at = Job.State.RUNNING, "", None
        job.heartbeat_at = timezone.now()
        job.task_id = jobs.queue_step(job)
        job.save()
        audit.record(
            actor,
            job.agent,
            AuditEvent.Action.JOB_RETRIED,
            details={"job": job.pk, "kind": job.kind},
        )
    return job


def _unfinished(agent: Agent, kind: str) -> Job | None:
    return (
        Job.objects.filter(agent=agent, kind=kind, state__in=[Job.State.QUEUED, Job.State.RUNNING])
        .order_by("-created_at")
        .first()
    )
