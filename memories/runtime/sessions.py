"""A user's sessions and each session's runs, as the runtime stores them."""

from __future__ import annotations

from dataclasses import dataclass

from agents.models import Agent
from memories.models import Run, RuntimeSession
from memories.runtime.access import (
    PAGE_SIZE,
    Page,
    SessionNotFound,
    Tables,
    decode_cursor,
    in_agent_schema,
    keyset_page,
    page_limit,
    read_runtime,
    same_user,
)
from memories.runtime.memories import SORT_KEYS
from studio.sql_rows import fetch, select_list


@dataclass
class SessionRow:
    session: RuntimeSession
    run_count: int = 0
    first_activity: int | None = None
    last_activity: int | None = None


def user_sessions(
    agent: Agent, user_id: str | None, *, after: str | None = None, limit: int = PAGE_SIZE
) -> Page[SessionRow]:
    """A user's sessions, most recently active first, with each one's run count and first
    and last activity: one statement (read_runtime), the runs counted for the page only."""
    limit = page_limit(limit)
    cursor = decode_cursor(after, (int, str)) if after else None

    def read(tables: Tables) -> Page[SessionRow]:
        if not tables.sessions:
            return Page([])
        key = SORT_KEYS["updated"]
        where, params = [same_user(user_id, "%s")], []
        if user_id is not None:
            params.append(user_id)
        if cursor:
            where.append(f"({key}, session_id) < (%s, %s)")
            params += cursor
        runs = (
            "LEFT JOIN LATERAL (SELECT count(*) AS n, min(created_at) AS first, "
            "max(coalesce(updated_at, created_at)) AS last FROM {runs} "
            "WHERE session_id = p.session_id) AS r ON true"
            if tables.runs
            else "CROSS JOIN (SELECT 0::bigint, NULL::bigint, NULL::bigint) AS r(n, first, last)"
        )
        # The page first, then its runs counted: a user with 100,000 sessions counts 26.
        columns = select_list(tables.Session, "p")
        sql = (
            f"SELECT {columns}, p.sort_key, r.n, r.first, r.last FROM ("
            f"SELECT *, {key} AS sort_key FROM {{sessions}} "
            f"WHERE {' AND '.join(where)} ORDER BY sort_key DESC, session_id DESC LIMIT %s"
            f") AS p {runs} ORDER BY p.sort_key DESC, p.session_id DESC"
        )
        found = fetch(
            tables.Session,
            tables.sql(sql),
            [*params, limit + 1],
            extras=["sort_key", "run_count", "runs_first", "runs_last"],
            using=tables.alias,
        )
        page = keyset_page(found, limit, lambda session: (session.sort_key, session.session_id))
        return Page([_session_row(session) for session in page.items], page.next_cursor)

    return read_runtime(agent, read, replica=True)


def _session_row(session: RuntimeSession) -> SessionRow:
    first, last = session.created_at, session.updated_at or session.created_at
    if session.runs_first is not None:
        first = min(session.runs_first, first or session.runs_first)
    if session.runs_last is not None:
        last = max(session.runs_last, last or session.runs_last)
    return SessionRow(session, session.run_count or 0, first, last)


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
