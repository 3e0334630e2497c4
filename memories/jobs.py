"""Jobs: long work run by `manage.py db_worker` in short batches that commit as they go.

Each queued task runs ONE batch of one job and queues the next before its transaction
commits. The job row is locked while the batch runs (`select_for_update`), and only the
task named in `Job.task_id` may run it (any other finds itself superseded once it gets the
lock), so two workers never do the same batch. A worker killed mid-batch loses only that
uncommitted batch: the job row is unlocked, its task never finishes, and `revive_stalled`
queues a new task that resumes from the cursor of the last committed batch.

What each kind of job does per batch lives in memories.job_batches; starting, cancelling
and retrying a job are writes, so they are memories.actions functions.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from agents.models import Agent
from memories.models import Job

logger = logging.getLogger(__name__)

SYSTEM = "system"
# Postgres' deadlock and serialization failures: the batch is simply run again.
RETRYABLE = {"40P01", "40001"}


def create_job(
    *,
    kind: str,
    agent: Agent | None,
    actor: Any,
    params: dict[str, Any] | None = None,
    total: int | None = None,
    run_after: Any = None,
) -> Job:
    """A queued job and the task that runs its first batch, in one transaction."""
    person = actor if actor is not None and actor.is_authenticated else None
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            agent=agent,
            actor=person,
            actor_name=person.get_username() if person else SYSTEM,
            params=params or {},
            total=total,
            run_after=run_after,
            heartbeat_at=timezone.now(),
        )
        job.task_id = queue_step(job, run_after=run_after)
        job.save(update_fields=["task_id"])
    return job


def queue_step(job: Job, *, run_after: Any = None) -> str:
    """Queue the task for the job's next batch; the caller stores its id on the job."""
    from memories.tasks import run_job_step

    task = run_job_step.using(run_after=run_after) if run_after else run_job_step
    return str(task.enqueue(job.pk).id)


def run_step(job_id: int, task_id: str) -> str:
    """Run one batch of the job if this task is the one it waits for; returns its state."""
    from memories import job_batches

    try:
        with transaction.atomic():
            # Waits for whoever holds the row (a stray task, a cancel) rather than skipping:
            # skipping would drop the chain when the task the job waits for is the one blocked.
            job = (
                Job.objects.select_for_update(of=("self",))
                .select_related("agent", "actor")
                .filter(pk=job_id)
                .first()
            )
            if job is None:
                return "gone"
            if job.is_finished or job.task_id != task_id:
                return "superseded"
            now = timezone.now()
            if job.cancel_requested:
                job_batches.before_cancel(job)
                _finish(job, Job.State.CANCELLED)
                job_batches.schedule_next(job)  # a cancelled pass does not end the schedule
                return job.state
            if job.started_at is None:
                job.state, job.started_at = Job.State.RUNNING, now
            finished = job_batches.run_batch(job)
            job.batches += 1
            job.heartbeat_at = timezone.now()
            if finished:
                _finish(job, Job.State.DONE)
                job_batches.after_done(job)
            else:
                job.task_id = queue_step(job)
                job.save()
            return job.state
    except DatabaseError as error:
        if getattr(getattr(error, "__cause__", None), "sqlstate", None) not in RETRYABLE:
            return _failed(job_id, task_id, error)
        # A deadlock or serialization failure rolled the batch back: run it again.
        logger.warning("Job %s batch rolled back (%s); queued again", job_id, error)
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=job_id, task_id=task_id).first()
            if job is not None:
                job.task_id = queue_step(job)
                job.save(update_fields=["task_id"])
        return "retried"
    except Exception as error:
        return _failed(job_id, task_id, error)


def _failed(job_id: int, task_id: str, error: Exception) -> str:
    logger.exception("Job %s failed", job_id, exc_info=error)
    Job.objects.filter(pk=job_id, task_id=task_id).update(
        state=Job.State.FAILED,
        error=f"{type(error).__name__}: {error}"[:2000],
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    try:
        keep_schedule(job_id)
    except DatabaseError:  # the database itself is failing: the next worker start heals it
        logger.exception("Job %s: its next periodic pass could not be queued", job_id)
    return Job.State.FAILED


def keep_schedule(job_id: int) -> None:
    """A periodic job that failed or was cancelled still queues its next pass."""
    from memories import job_batches

    with transaction.atomic():
        job = Job.objects.select_related("agent").filter(pk=job_id).first()
        if job is not None:
            job_batches.schedule_next(job)


def ensure_schedules() -> list[int]:
    """What keeps the periodic work going, run by every starting worker and after every pass:
    stalled jobs handed on, a token sweep for every agent (one registered since included) and
    the trash's emptying. Returns the revived job ids."""
    revived = revive_stalled()
    ensure_token_sweeps()
    ensure_trash_emptying()
    return revived


def _finish(job: Job, state: str) -> None:
    job.state, job.finished_at, job.task_id = state, timezone.now(), ""
    job.heartbeat_at = job.finished_at
    job.save()


def stalled_jobs() -> QuerySet[Job]:
    """Unfinished jobs with no batch committed for JOB_STALL_SECONDS (their worker may be gone)."""
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_STALL_SECONDS)
    return Job.objects.filter(
        Q(state=Job.State.RUNNING) | Q(state=Job.State.QUEUED),
        heartbeat_at__lt=cutoff,
    ).exclude(run_after__gt=timezone.now())


def revive_stalled() -> list[int]:
    """Queue a fresh task for each stalled job whose task is not waiting in the queue; a job
    locked by a live worker mid-batch is skipped. Returns the revived job ids."""
    from django_tasks_db.models import DBTaskResult

    revived = []
    for job_id in stalled_jobs().values_list("pk", flat=True):
        with transaction.atomic():
            job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
            if job is None or job.is_finished:
                continue
            waiting = DBTaskResult.objects.ready().filter(pk=job.task_id or None).exists()
            if waiting:
                continue
            job.task_id = queue_step(job)
            job.heartbeat_at = timezone.now()
            job.save(update_fields=["task_id", "heartbeat_at"])
            revived.append(job.pk)
    return revived


def ensure_token_sweeps() -> list[Job]:
    """Start a token sweep for every agent that has none queued or running (workers starting
    together lock the agent row, so each agent gets one)."""
    started = []
    for agent_id in Agent.objects.values_list("pk", flat=True):
        with transaction.atomic():
            agent = Agent.objects.select_for_update().filter(pk=agent_id).first()
            busy = Job.objects.filter(
                kind=Job.Kind.TOKEN_SWEEP,
                agent_id=agent_id,
                state__in=[Job.State.QUEUED, Job.State.RUNNING],
            ).exists()
            if agent is not None and not busy:
                started.append(create_job(kind=Job.Kind.TOKEN_SWEEP, agent=agent, actor=None))
    return started


def ensure_trash_emptying() -> Job | None:
    """Start the trash's periodic emptying unless a pass is queued or running (the advisory
    lock keeps two workers starting together from starting two)."""
    from django.db import connection

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('memory-studio-trash'))")
        busy = Job.objects.filter(
            kind=Job.Kind.TRASH_EMPTYING, state__in=[Job.State.QUEUED, Job.State.RUNNING]
        ).exists()
        if busy:
            return None
        return create_job(kind=Job.Kind.TRASH_EMPTYING, agent=None, actor=None)


# The Jobs page: newest first, a page at a time, routine passes that did nothing left out.

PERIODIC = (Job.Kind.TOKEN_SWEEP, Job.Kind.TRASH_EMPTYING)
# Finished periodic passes that did something stay on the page this long.
PERIODIC_KEPT = timedelta(days=1)


def idle_passes() -> Q:
    """Finished sweeps that recounted nobody and trash emptyings that deleted nothing."""
    return Q(state=Job.State.DONE) & (
        Q(kind=Job.Kind.TOKEN_SWEEP, result__recounted=0) | Q(kind=Job.Kind.TRASH_EMPTYING, done=0)
    )


def jobs_page(
    agent: Agent | None,
    *,
    kind: str = "",
    state: str = "",
    idle: bool = False,
    after: str | None = None,
    limit: int = 50,
) -> Any:
    """A page of jobs, newest first (keyset on created_at and id); `idle` shows the periodic
    passes that did nothing too. Raises runtime.InvalidCursor for a cursor not ours."""
    from memories.runtime.access import decode_cursor, keyset_page

    rows = Job.objects.select_related("agent")
    if agent is not None:
        rows = rows.filter(agent=agent)
    if kind:
        rows = rows.filter(kind=kind)
    if state:
        rows = rows.filter(state=state)
    if not idle:
        rows = rows.exclude(idle_passes())
    if after:
        stamp, pk = decode_cursor(after, (str, int))
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError as error:
            from memories.runtime.access import InvalidCursor

            raise InvalidCursor(InvalidCursor.message) from error
        rows = rows.filter(Q(created_at__lt=when) | Q(created_at=when, pk__lt=pk))
    return keyset_page(
        rows.order_by("-created_at", "-id")[: limit + 1],
        limit,
        lambda job: (job.created_at.isoformat(), job.pk),
    )


def prune_old_passes(job: Job) -> None:
    """Periodic passes of the job's kind (and agent) that did nothing go at once, those that
    did something after PERIODIC_KEPT: the page and the table stay small."""
    same = Job.objects.filter(kind=job.kind, agent=job.agent).exclude(pk=job.pk)
    same.filter(idle_passes()).delete()
    same.filter(
        state__in=[Job.State.DONE, Job.State.CANCELLED, Job.State.FAILED],
        finished_at__lt=timezone.now() - PERIODIC_KEPT,
    ).delete()
