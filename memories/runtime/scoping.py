"""The runtime side of the user_id doctor: every user_id an agent holds, and moving one's rows
to another user_id (memories, optionally sessions and their runs) in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from agents.models import Agent
from memories.models import memory_text
from memories.runtime.access import in_agent_schema, same_user, walk_without_table
from studio import stored_json

# user_ids read per query when the scoping page walks an agent's users.
USER_ID_BATCH = 5_000


@dataclass(frozen=True)
class UserIdCount:
    user_id: str
    memories: int
    sessions: int


def user_id_counts(agent: Agent, *, batch: int = USER_ID_BATCH) -> Iterator[UserIdCount]:
    """Every non-NULL user_id of the agent's memories and sessions with its counts, in
    user_id order, read a batch at a time so memory stays flat at 100,000 users."""
    after: str | None = None
    while True:
        rows = user_id_counts_after(agent, after, batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].user_id


def user_id_counts_after(agent: Agent, after: str | None, limit: int) -> list[UserIdCount]:
    """The next `limit` non-NULL user_ids after `after` (None: from the first, "" included)
    with their memory and session counts, in user_id order."""
    with in_agent_schema(agent, replica=True) as tables:
        parts = [
            f"SELECT user_id, {m} AS m, {s} AS s FROM {table} WHERE user_id IS NOT NULL "
            "AND (%(after)s::text IS NULL OR user_id > %(after)s)"
            for table, m, s, present in (
                ("{memories}", "1", "0", tables.memories),
                ("{sessions}", "0", "1", tables.sessions),
            )
            if present
        ]
        if not parts:
            return walk_without_table(after)
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    f"SELECT user_id, sum(m), sum(s) FROM ({' UNION ALL '.join(parts)}) AS u "
                    "GROUP BY user_id ORDER BY user_id LIMIT %(n)s"
                ),
                {"after": after, "n": limit},
            )
            return [UserIdCount(user_id, int(m), int(s)) for user_id, m, s in cursor.fetchall()]


@dataclass(frozen=True)
class UserRows:
    """What moves with a user_id: memory (id, text) pairs in agno's order, sessions, runs."""

    memories: list[tuple[str, str]]
    sessions: int
    runs: int


def user_rows(agent: Agent, user_id: str | None) -> UserRows:
    """A user's memories (agno's physical order, as its context reads them) and session and
    run counts, from the primary: a move's preview must show what the move will do."""
    user = same_user(user_id)
    with in_agent_schema(agent) as tables:
        memories: list[tuple[str, str]] = []
        sessions = runs = 0
        with tables.cursor() as cursor:
            if tables.memories:
                cursor.execute(
                    tables.sql(
                        f"SELECT memory_id, memory FROM {{memories}} WHERE {user} ORDER BY ctid"
                    ),
                    {"u": user_id},
                )
                memories = [(i, memory_text(stored_json.loads(m))) for i, m in cursor.fetchall()]
            if tables.sessions:
                cursor.execute(
                    tables.sql(f"SELECT count(*) FROM {{sessions}} WHERE {user}"), {"u": user_id}
                )
                sessions = cursor.fetchone()[0]
            if tables.runs:
                cursor.execute(
                    tables.sql(f"SELECT count(*) FROM {{runs}} WHERE {user}"), {"u": user_id}
                )
                runs = cursor.fetchone()[0]
    return UserRows(memories, sessions, runs)


@dataclass(frozen=True)
class Moved:
    memories: int = 0
    sessions: int = 0
    runs: int = 0
    memory_ids: tuple[str, ...] = ()


def move_user_rows(agent: Agent, source: str | None, target: str, *, sessions: bool) -> Moved:
    """Give every memory (and, if asked, session and run) of `source` the user_id `target`,
    in one transaction on the agent's connection. updated_at is left as it was: the memory's
    content did not change, and agno orders nothing by it."""
    user = same_user(source, "%(source)s")
    params = {"source": source, "target": target}
    with in_agent_schema(agent) as tables:
        memory_ids: list[str] = []
        session_count = run_count = 0
        with tables.cursor() as cursor:
            if tables.memories:
                cursor.execute(
                    tables.sql(
                        "UPDATE {memories} SET user_id = %(target)s "
                        f"WHERE {user} RETURNING memory_id"
                    ),
                    params,
                )
                memory_ids = [row[0] for row in cursor.fetchall()]
            if sessions and tables.sessions:
                cursor.execute(
                    tables.sql(f"UPDATE {{sessions}} SET user_id = %(target)s WHERE {user}"),
                    params,
                )
                session_count = cursor.rowcount
            if sessions and tables.runs:
                cursor.execute(
                    tables.sql(f"UPDATE {{runs}} SET user_id = %(target)s WHERE {user}"),
                    params,
                )
                run_count = cursor.rowcount
    return Moved(len(memory_ids), session_count, run_count, tuple(memory_ids))
