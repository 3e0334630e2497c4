"""Throughput of the background jobs: the sensitive scan and the token sweep, batch by batch
as a worker runs them, on a scratch agent at a given size; memory is the process's peak.

Each size runs in a fresh process (`--child`), so the peak resident memory is that size's alone.
"""

from __future__ import annotations

import resource
import time
import uuid
from typing import Any

from django.db import transaction

from agents.models import Agent
from memories import actions, jobs
from memories.models import Job
from memories.runtime.indexes import ensure_runtime_indexes
from studio.devtools.bench_data import build_schema
from studio.devtools.scratch import scratch_schema


def drive(job: Job) -> Job:
    """Run the job's batches here, one committed transaction each, as a worker would."""
    from django_tasks_db.models import DBTaskResult

    queued = []
    while True:
        job.refresh_from_db()
        if job.is_finished:
            DBTaskResult.objects.filter(pk__in=queued).delete()
            return job
        queued.append(job.task_id)
        jobs.run_step(job.pk, job.task_id)


def measure(memories: int, only: str = "") -> dict[str, Any]:
    """Both jobs, or `only` one of them ("scan" or "sweep"), at `memories` memories."""
    users = max(100, memories // 10)
    with scratch_schema("jobbench") as schema:
        build_schema(schema, memories, users, 0)
        # As a deployment has them (`manage.py runtime_indexes`): the sweep reads through them.
        ensure_runtime_indexes(schema, concurrently=False)
        with transaction.atomic():
            agent = Agent.objects.create(
                name="Job benchmark", slug=f"job-bench-{uuid.uuid4().hex[:8]}", db_schema=schema
            )
        try:
            figures: dict[str, Any] = {"memories": memories, "users": users}
            if only != "sweep":
                started = time.perf_counter()
                scan = drive(actions.start_sensitive_scan(actor=None, agent=agent))
                seconds = time.perf_counter() - started
                figures["scan"] = {
                    "seconds": round(seconds, 1),
                    "per_second": round(scan.done / seconds),
                }
            for name in ("sweep_first_pass", "sweep_nothing_changed") if only != "scan" else ():
                started = time.perf_counter()
                sweep = drive(jobs.create_job(kind=Job.Kind.TOKEN_SWEEP, agent=agent, actor=None))
                seconds = time.perf_counter() - started
                figures[name] = {
                    "seconds": round(seconds, 1),
                    "memories_per_second": round(memories / seconds),
                    "recounted": sweep.result.get("recounted"),
                }
            figures["peak_rss_mb"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            )
            return figures
        finally:
            Job.objects.filter(agent=agent, kind=Job.Kind.TOKEN_SWEEP, state="queued").update(
                state="cancelled"
            )
            agent.delete()
