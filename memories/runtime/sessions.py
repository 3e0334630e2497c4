"""A user's sessions and each session's runs, as the runtime stores them."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BigIntegerField, BooleanField
from django.db.models.expressions import RawSQL

from agents.models import Agent
from memories.models import Run, RuntimeSession
from memories.runtime.access import (
    PAGE_SIZE,
    Page,
    SessionNotFound,
    decode_cursor,
    in_agent_schema,
    keyset_page,
    page_limit,
)
from memories.runtime.memories import SORT_KEYS


@dataclass
class SessionRow:
    session: RuntimeSession
    run_count: int = 0
    first_activity: int | None = None
    last_activity: int | None = None


def user_sessions(
    agent: Agent, user_id: str, *, after: str | None = None, limit: int = PAGE_SIZE
) -> Page[SessionRow]:
    """A user's sessions, most recently active first, with run counts for the page only."""
    limit = page_limit(limit)
    with in_agent_schema(agent, replica=True) as tables:
        if not tables.sessions:
            return Page([])
        rows = tables.Session.objects.filter(user_id=user_id).annotate(
            sort_key=RawSQL(SORT_KEYS["updated"], (), BigIntegerField())
        )
        if after:
            last_key, last_id = decode_cursor(after, (int, str))
            condition = f"({SORT_KEYS['updated']}, session_id) < (%s, %s)"
            rows = rows.filter(RawSQL(condition, (last_key, last_id), BooleanField()))
        page = keyset_page(
            rows.order_by("-sort_key", "-session_id")[: limit + 1],
            limit,
            lambda s: (s.sort_key, s.session_id),
        )
        sessions = page.items
        result = [SessionRow(s, 0, s.created_at, s.updated_at or s.created_at) for s in sessions]
        if sessions and tables.runs:
            with tables.cursor() as cursor:
                cursor.execute(
                    tables.sql(
                        "SELECT session_id, count(*), min(created_at), "
                        "max(coalesce(updated_at, created_at)) FROM {runs} "
                        "WHERE session_id = ANY(%s) GROUP BY session_id"
                    ),
                    [[s.session_id for s in sessions]],
                )
                stats = {sid: (n, first, last) for sid, n, first, last in cursor.fetchall()}
            for row in result:
                n, first, last = stats.get(row.session.session_id, (0, None, None))
                row.run_count = n
                if first is not None:
                    row.first_activity = min(first, row.first_activity or first)
                if last is not None:
                    row.last_activity = max(last, row.last_activity or last)
    return Page(result, page.next_cursor)


def session_runs(agent: Agent, session_id: str, limit: int = 500) -> list[Run]:
    with in_agent_schema(agent, replica=True) as tables:
        if not tables.runs:
            return []
        return list(
            tables.Run.objects.filter(session_id=session_id).order_by("run_index", "created_at")[
                :limit
            ]
        )


def get_session(agent: Agent, session_id: str) -> RuntimeSession | None:
    with in_agent_schema(agent) as tables:
        if not tables.sessions:
            return None
        return tables.Session.objects.filter(session_id=session_id).first()


def delete_session(agent: Agent, session_id: str) -> tuple[str | None, int]:
    """Delete a session; its runs go with it (the runtime's foreign key cascades)."""
    with in_agent_schema(agent) as tables:
        session = (
            tables.Session.objects.select_for_update().filter(session_id=session_id).first()
            if tables.sessions
            else None
        )
        if session is None:
            raise SessionNotFound(SessionNotFound.message)
        runs = tables.Run.objects.filter(session_id=session_id).count() if tables.runs else 0
        tables.Session.objects.filter(session_id=session_id).delete()
    return session.user_id, runs
