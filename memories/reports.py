"""Stored reports: what the scoping check and the duplicate search found, kept per agent and
scope so their pages read one row instead of working the answer out on every view.

Workers write them (memories.job_batches, through memories.actions). The actions that fix
what a report lists keep it right: a move takes its user_id off the scoping report, removing
duplicates takes the removed memories off every duplicates report, a forget takes the person
off all of them. What agno writes after a check is not in it: the pages say how old it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.models import Agent
from memories.duplicates import DuplicateGroup, DuplicateReport
from memories.models import EndUser, Job, Report
from memories.runtime.memories import memories_by_id
from memories.scoping import ScopingProblem, Suggestion, problem_order

SCOPING_ROWS = 1_000  # problems kept: the page shows these, the rest are a count
SUGGESTION_KEYS = ("person", "target", "evidence")


def scope_key(kind: str, **params: Any) -> str:
    """What a report answers, as a fixed-length key: a user_id in it may be any length."""
    text = json.dumps([kind, params], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


SCOPING_SCOPE = scope_key(Report.Kind.SCOPING)


@dataclass(frozen=True)
class DuplicateScope:
    """Where a duplicate search looks: one user_id, the NULL user or every user; how alike."""

    user_id: str | None
    all_users: bool
    threshold: float
    near: bool

    @classmethod
    def from_form(cls, form: Any) -> DuplicateScope:
        """From a valid memories.forms.DuplicatesForm (the page's query or a POST)."""
        return cls(
            user_id=form.user_id_value,
            all_users=form.all_users,
            threshold=form.cleaned_data["threshold"],
            near=not form.cleaned_data.get("exact_only"),
        )

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DuplicateScope:
        return cls(
            user_id=params.get("user_id"),
            all_users=bool(params.get("all_users")),
            threshold=float(params["threshold"]),
            near=not params.get("exact_only"),
        )

    @property
    def params(self) -> dict[str, Any]:
        """The job's parameters: `user_id` by that name, so a forget finds the job."""
        return {
            "user_id": self.user_id,
            "all_users": self.all_users,
            "threshold": self.threshold,
            "exact_only": not self.near,
        }

    @property
    def key(self) -> str:
        # The threshold does not change an exact-only search: one report serves them all.
        return scope_key(
            Report.Kind.DUPLICATES,
            user_id=None if self.all_users else self.user_id,
            all_users=self.all_users,
            threshold=self.threshold if self.near else None,
            near=self.near,
        )


# Reading: one studio query for the report and its latest job


def scoping_report(agent: Agent) -> Report | None:
    return (
        Report.objects.select_related("job")
        .filter(agent=agent, kind=Report.Kind.SCOPING, scope=SCOPING_SCOPE)
        .first()
    )


def duplicate_report(agent: Agent, scope: DuplicateScope) -> Report | None:
    return (
        Report.objects.select_related("job")
        .filter(agent=agent, kind=Report.Kind.DUPLICATES, scope=scope.key)
        .first()
    )


def stored_problem(problem: ScopingProblem) -> dict[str, Any]:
    """A problem as the report keeps it: the person by name and email, not by row."""
    row: dict[str, Any] = {
        "user_id": problem.user_id,
        "memories": problem.memories,
        "sessions": problem.sessions,
        "note": problem.note,
    }
    if problem.suggestion is not None:
        person = problem.suggestion.person
        row["person"] = {
            "email": person.email,
            "first_name": person.first_name,
            "last_name": person.last_name,
        }
        row["target"] = problem.suggestion.target
        row["evidence"] = problem.suggestion.evidence
    return row


def problem_from_stored(row: dict[str, Any]) -> ScopingProblem:
    suggestion = None
    if "person" in row:
        person = EndUser(**row["person"])  # never saved: the page shows its name and email
        suggestion = Suggestion(person, row["target"], row["evidence"])
    return ScopingProblem(
        row["user_id"], row["memories"], row["sessions"], suggestion, row.get("note", "")
    )


def problems_of(report: Report | None) -> list[ScopingProblem]:
    return [problem_from_stored(row) for row in report.rows] if report else []


def kept_problems(kept: list[dict[str, Any]], found: Iterable[ScopingProblem]) -> list[dict]:
    """The first SCOPING_ROWS problems in the page's order among those kept and those found,
    so a check of 100,000 user_ids holds at most this many between batches."""
    rows = [*kept, *(stored_problem(problem) for problem in found)]
    rows.sort(key=lambda row: problem_order(problem_from_stored(row)))
    return rows[:SCOPING_ROWS]


def duplicates_of(agent: Agent, report: Report | None) -> DuplicateReport:
    """The stored groups with their memories as they are now (one runtime read): a memory
    gone or moved to another user since the search leaves its group, and a group left with
    one memory is no group."""
    if report is None or report.made_at is None:
        return DuplicateReport()
    details = report.details
    found = DuplicateReport(
        threshold=details.get("threshold", 0.8),
        near_error=details.get("near_error", ""),
        truncated=bool(details.get("truncated")),
    )
    ids = [memory_id for group in report.rows for memory_id in group["members"]]
    rows = memories_by_id(agent, ids) if ids else {}
    for group in report.rows:
        members = [
            rows[memory_id]
            for memory_id in group["members"]
            if memory_id in rows and rows[memory_id].user_id == group["user_id"]
        ]
        if len(members) < 2:
            continue
        members.sort(key=lambda m: (m.last_changed_at, m.memory_id), reverse=True)
        found.groups.append(
            DuplicateGroup(group["user_id"], group["kind"], members, group.get("similarity"))
        )
    return found


def stored_groups(found: DuplicateReport) -> list[dict[str, Any]]:
    return [
        {
            "user_id": group.user_id,
            "kind": group.kind,
            "members": [memory.memory_id for memory in group.members],
            "similarity": group.similarity,
        }
        for group in found.groups
    ]


# Upkeep: what the fixing actions (memories.actions) take off the stored reports


def drop_moved_user(agent: Agent, source: str | None, target: str, moved: Any) -> None:
    """After a move: the source leaves the scoping report (it holds nothing now); a target
    listed there holds the moved rows too; the source's duplicate groups leave every
    duplicates report (its memories are the target's now, maybe with new repeats)."""
    report = Report.objects.select_for_update().filter(
        agent=agent, kind=Report.Kind.SCOPING, scope=SCOPING_SCOPE
    )
    for stored in report:
        rows = [row for row in stored.rows if row["user_id"] != source]
        stored.total -= len(stored.rows) - len(rows)
        for row in rows:
            if row["user_id"] == target:
                row["memories"] += moved.memories
                row["sessions"] += moved.sessions
        stored.rows = rows
        stored.save(update_fields=["rows", "total"])
    if moved.memory_ids:
        drop_memories(agent, moved.memory_ids)


def drop_memories(agent: Agent, memory_ids: Sequence[str]) -> None:
    """The memories leave every duplicates report of the agent; a group of one goes."""
    gone = set(memory_ids)
    for report in Report.objects.select_for_update().filter(
        agent=agent, kind=Report.Kind.DUPLICATES
    ):
        groups = []
        for group in report.rows:
            members = [memory_id for memory_id in group["members"] if memory_id not in gone]
            if len(members) > 1:
                groups.append({**group, "members": members})
        if groups != report.rows:
            report.rows = groups
            report.total = len(groups)
            report.save(update_fields=["rows", "total"])


def forget_user(agent: Agent, user_id: str | None) -> None:
    """A forgotten person leaves every report of the agent: their duplicates reports go, their
    groups and scoping rows (as the stray user_id or as the suggested key) leave the others,
    and a scoping check under way forgets them in what it has kept so far."""
    reports = Report.objects.select_for_update().filter(agent=agent)
    if user_id is None:
        reports.filter(kind=Report.Kind.DUPLICATES, user_id=None, params__all_users=False).delete()
    else:
        reports.filter(kind=Report.Kind.DUPLICATES, user_id=user_id).delete()
    for report in reports:
        if report.kind == Report.Kind.SCOPING:
            rows = _without(report.rows, user_id)
            report.total -= len(report.rows) - len(rows)
        else:
            rows = [group for group in report.rows if group["user_id"] != user_id]
            report.total = len(rows)
        if rows != report.rows:
            report.rows = rows
            report.save(update_fields=["rows", "total"])
    checks = Job.objects.select_for_update().filter(agent=agent, kind=Job.Kind.SCOPING_CHECK)
    for job in checks.exclude(cursor__kept=None):
        kept = _without(job.cursor.get("kept") or [], user_id)
        job.cursor = {**job.cursor, "kept": kept}
        job.save(update_fields=["cursor"])


def _without(rows: list[dict[str, Any]], user_id: str | None) -> list[dict[str, Any]]:
    """The scoping rows without the user_id's own, and with no suggestion naming it: the stray
    user_id that pointed to the forgotten person is still a problem, with no clue now."""
    kept = []
    for row in rows:
        if row["user_id"] == user_id:
            continue
        person = row.get("person") or {}
        if user_id is not None and user_id in (row.get("target"), person.get("email")):
            row = {key: value for key, value in row.items() if key not in SUGGESTION_KEYS}
        kept.append(row)
    return kept
