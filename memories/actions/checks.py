"""Checks the workers run so their pages read a stored answer (memories.reports): starting a
scoping check or a duplicate search, and storing what it found. The actions that fix what a
report lists (move, remove duplicates, forget) keep it right in memories.actions."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agents.models import Agent
from memories import jobs, reports
from memories.actions.actor import Actor
from memories.models import AuditEvent, Job, Report
from memories.runtime import overview as runtime_overview


def _report_for_check(
    agent: Agent, kind: str, scope: str, *, user_id: str | None = None, params: Any = None
) -> Report:
    report, _ = Report.objects.select_for_update().get_or_create(
        agent=agent,
        kind=kind,
        scope=scope,
        defaults={"user_id": user_id, "params": params or {}},
    )
    return report


def start_scoping_check(*, actor: Actor, agent: Agent, batch: int | None = None) -> Job:
    """Walk every user_id of the agent on a worker; the check under way if there is one."""
    with transaction.atomic():
        report = _report_for_check(agent, Report.Kind.SCOPING, reports.SCOPING_SCOPE)
        if report.is_checking:
            return report.job
        params = {"batch": batch} if batch else {}
        # The users with memories, as the Memory tab counts them: a session-only user_id
        # is walked too, so `done` may pass it a little.
        total = runtime_overview.agent_overview(agent).user_count or None
        report.job = jobs.create_job(
            kind=Job.Kind.SCOPING_CHECK, agent=agent, actor=actor, params=params, total=total
        )
        report.save(update_fields=["job"])
    return report.job


def store_scoping_report(*, job: Job, rows: list[dict[str, Any]], total: int) -> Report:
    """A finished check's problems become the report; a user_id moved while the check ran
    (its memories under the target now) is left out."""
    moved = AuditEvent.objects.filter(
        agent=job.agent, action=AuditEvent.Action.MEMORIES_MOVED, created_at__gte=job.started_at
    ).values_list("user_id", "details__from_null")
    sources = {None if from_null else user_id for user_id, from_null in moved}
    kept = [row for row in rows if row["user_id"] not in sources]
    report = _report_for_check(job.agent, Report.Kind.SCOPING, reports.SCOPING_SCOPE)
    report.rows, report.total = kept, total - (len(rows) - len(kept))
    report.made_at, report.job = job.started_at, job
    report.save()
    return report


def start_duplicate_search(*, actor: Actor, agent: Agent, scope: reports.DuplicateScope) -> Job:
    """Search the scope for repeats on a worker; the search under way if there is one."""
    with transaction.atomic():
        report = _report_for_check(
            agent,
            Report.Kind.DUPLICATES,
            scope.key,
            user_id=None if scope.all_users else scope.user_id,
            params=scope.params,
        )
        if report.is_checking:
            return report.job
        report.job = jobs.create_job(
            kind=Job.Kind.DUPLICATE_SEARCH,
            agent=agent,
            actor=actor,
            params=scope.params,
            total=1,  # one batch: the search is one query, stopped after 20 seconds
        )
        report.save(update_fields=["job"])
    return report.job


def store_duplicate_report(*, job: Job, found: Any) -> Report:
    """A finished search's groups (memory_ids only, memories.reports) become the report."""
    scope = reports.DuplicateScope.from_params(job.params)
    report = _report_for_check(
        job.agent,
        Report.Kind.DUPLICATES,
        scope.key,
        user_id=None if scope.all_users else scope.user_id,
        params=scope.params,
    )
    report.rows = reports.stored_groups(found)
    report.total = len(report.rows)
    report.details = {
        "threshold": found.threshold,
        "near_error": found.near_error,
        "truncated": found.truncated,
    }
    report.made_at, report.job = job.started_at, job
    report.save()
    return report
