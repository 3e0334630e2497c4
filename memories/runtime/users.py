"""Who the runtime knows: user_ids in the memory and session tables, with their counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections

from agents.models import Agent
from memories.runtime.access import (
    Page,
    Tables,
    in_agent_schema,
    like_escaped,
    read_rows,
    read_runtime,
    same_user,
    walk_without_table,
)
from memories.runtime.location import location_of
from memories.runtime.memories import in_seconds, memories_page, newest_stamp


def memory_users_after(
    agent: Agent, *, after: str | None, limit: int
) -> list[tuple[str, int, int]]:
    """The next `limit` user_ids holding memories, in user_id order, with how many they hold
    and their newest memory's time: what the token sweep compares with each count. Both come
    from indexes (the count from a user_id index, the newest from idx_ms_memories_user_recent_s,
    one entry per user); no memory text is read, and sessions play no part. Times are the
    list's sort key: a memory stored in milliseconds counts as the moment it names."""
    newest = in_seconds("coalesce(m.updated_at, m.created_at)")
    with in_agent_schema(agent, replica=True) as tables:
        if not tables.memories:
            return walk_without_table(after)
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    f"SELECT g.user_id, g.n, (SELECT {newest} "
                    "FROM {memories} m WHERE m.user_id = g.user_id "
                    f"ORDER BY {newest} DESC LIMIT 1) "
                    "FROM (SELECT user_id, count(*) AS n FROM {memories} "
                    "WHERE user_id IS NOT NULL "
                    "AND (%(after)s::text IS NULL OR user_id > %(after)s) "
                    "GROUP BY user_id ORDER BY user_id LIMIT %(n)s) AS g ORDER BY g.user_id"
                ),
                {"after": after, "n": limit},
            )
            return cursor.fetchall()


# The characters behind a token estimate, read from the stored size: a short JSON string is
# its UTF-8 bytes plus 9 (varlena, container and entry headers; 12 past 126 bytes).
# Unpacking every memory's text (`char_length(memory #>> '{}')`) cost twice as much for a
# user with 10,000 memories, and bytes are the fairer measure where one letter takes three
# (and often a token of its own).
JSONB_STRING_OVERHEAD = 9
STORED_CHARS = f"greatest(sum(pg_column_size(memory)) - {JSONB_STRING_OVERHEAD} * count(*), 0)"


@dataclass
class UserStats:
    memory_count: int = 0
    session_count: int = 0
    last_update: int | None = None
    memory_chars: int = 0


def has_memories_without_user_id(agent: Agent) -> bool:
    """Whether the runtime holds memories or sessions stored with user_id NULL."""
    with in_agent_schema(agent, replica=True) as tables:
        parts = [
            f"EXISTS (SELECT 1 FROM {{{table}}} WHERE user_id IS NULL)"
            for table, present in (("memories", tables.memories), ("sessions", tables.sessions))
            if present
        ]
        if not parts:
            return False
        with tables.cursor() as cursor:
            cursor.execute(tables.sql(f"SELECT {' OR '.join(parts)}"))
            return bool(cursor.fetchone()[0])


def user_stats(agent: Agent, user_ids: Sequence[str | None]) -> dict[str | None, UserStats]:
    """Memory and session counts for the users on the page only, in one query (and one more
    for the runtime's NULL user_id, which no `=` or join matches)."""
    stats: dict[str | None, UserStats] = {key: UserStats() for key in user_ids}
    if None in stats:
        del stats[None]
        stats = {None: _null_user_stats(agent), **stats}
    if not [key for key in stats if key is not None]:
        return stats
    with in_agent_schema(agent, replica=True) as tables:
        if not tables.any:
            return stats
        memories = (
            "SELECT user_id, count(*) AS n, max(coalesce(updated_at, created_at)) AS last, "
            f"{STORED_CHARS} AS chars FROM {{memories}} "
            "WHERE user_id = ANY(%(keys)s) GROUP BY user_id"
            if tables.memories
            else "SELECT NULL::text AS user_id, 0::bigint AS n, NULL::bigint AS last, 0 AS chars"
        )
        sessions = (
            "SELECT user_id, count(*) AS n, max(coalesce(updated_at, created_at)) AS last "
            "FROM {sessions} WHERE user_id = ANY(%(keys)s) GROUP BY user_id"
            if tables.sessions
            else "SELECT NULL::text AS user_id, 0::bigint AS n, NULL::bigint AS last"
        )
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    f"SELECT k.user_id, m.n, m.last, m.chars, s.n, s.last "
                    f"FROM unnest(%(keys)s::text[]) AS k(user_id) LEFT JOIN ({memories}) AS m "
                    f"USING (user_id) LEFT JOIN ({sessions}) AS s USING (user_id)"
                ),
                {"keys": [key for key in stats if key is not None]},
            )
            found = cursor.fetchall()
    for key, memory_count, memory_last, chars, session_count, session_last in found:
        stamps = [stamp for stamp in (memory_last, session_last) if stamp is not None]
        stats[key] = UserStats(
            memory_count or 0, session_count or 0, max(stamps) if stamps else None, chars or 0
        )
    return stats


def _null_user_stats(agent: Agent) -> UserStats:
    summary = user_summary(agent, None)
    with in_agent_schema(agent, replica=True) as tables:
        if not tables.memories:
            return UserStats(summary.memory_count, summary.session_count, summary.last_update)
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    f"SELECT coalesce({STORED_CHARS}, 0) FROM {{memories}} WHERE user_id IS NULL"
                )
            )
            chars = cursor.fetchone()[0]
    return UserStats(summary.memory_count, summary.session_count, summary.last_update, chars)


@dataclass(frozen=True)
class UserSummary:
    memory_count: int = 0
    session_count: int = 0
    last_update: int | None = None
    tables: Tables | None = None


def user_summary(agent: Agent, user_id: str | None, *, replica: bool = True) -> UserSummary:
    """Counts and last update for one user, in one query (index-only where vacuumed).
    `replica=False` right after a write, which a lagging replica would not count yet."""
    return read_runtime(agent, lambda tables: summary_of(tables, user_id), replica=replica)


def summary_of(tables: Tables, user_id: str | None) -> UserSummary:
    """user_summary's read, for a caller already reading the tables (user_page)."""
    if not tables.any:
        return UserSummary(tables=tables)
    user = same_user(user_id)
    memories = (
        f"(SELECT count(*) FROM {{memories}} WHERE {user}), " + newest_stamp(user)
        if tables.memories
        else "0, NULL::bigint"
    )
    sessions = f"(SELECT count(*) FROM {{sessions}} WHERE {user})" if tables.sessions else "0"
    with tables.cursor() as cursor:
        cursor.execute(tables.sql(f"SELECT {memories}, {sessions}"), {"u": user_id})
        memory_count, last_update, session_count = cursor.fetchone()
    return UserSummary(memory_count, session_count, last_update, tables)


def user_page(
    agent: Agent, user_id: str | None, *, replica: bool = True, **filters: Any
) -> tuple[Page, UserSummary]:
    """A page of a user's memories and the user's summary: one query when the page has rows
    (the totals ride on it), a second for the summary only when it is empty. Both read the
    same tables, so a fallback to in_agent_schema (read_runtime) takes the two along.
    `replica=False` right after a write, which a lagging replica would not show yet."""

    def read(tables: Tables) -> tuple[Page, UserSummary]:
        page = memories_page(tables, user_id, with_summary=True, **filters)
        if not page.items:
            return page, summary_of(tables, user_id)
        first = page.items[0]
        summary = UserSummary(
            first.summary_memories, first.summary_sessions, first.summary_last, tables
        )
        return page, summary

    return read_runtime(agent, read, replica=replica)


# Forgetting a person: every memory, session and run under one user_id.


@dataclass(frozen=True)
class UserFootprint:
    memories: int = 0
    sessions: int = 0
    runs: int = 0

    @property
    def total(self) -> int:
        return self.memories + self.sessions + self.runs


def user_footprint(agent: Agent, user_id: str | None) -> UserFootprint:
    with in_agent_schema(agent) as tables:
        user = same_user(user_id)
        parts = [
            f"(SELECT count(*) FROM {{memories}} WHERE {user})" if tables.memories else "0",
            f"(SELECT count(*) FROM {{sessions}} WHERE {user})" if tables.sessions else "0",
            f"(SELECT count(*) FROM {{runs}} WHERE {user} OR session_id IN "
            f"(SELECT session_id FROM {{sessions}} WHERE {user}))"
            if tables.runs and tables.sessions
            else "0",
        ]
        with tables.cursor() as cursor:
            cursor.execute(tables.sql(f"SELECT {', '.join(parts)}"), {"u": user_id})
            return UserFootprint(*cursor.fetchone())


def erase_user(agent: Agent, user_id: str | None) -> UserFootprint:
    """Erase every memory, session and run of `user_id` in one agent, in one transaction."""
    with in_agent_schema(agent) as tables:
        footprint = user_footprint(agent, user_id)
        user = same_user(user_id)
        with tables.cursor() as cursor:
            if tables.runs:
                cursor.execute(tables.sql(f"DELETE FROM {{runs}} WHERE {user}"), {"u": user_id})
            if tables.sessions:
                # Runs of these sessions written without a user_id go by the foreign key.
                cursor.execute(tables.sql(f"DELETE FROM {{sessions}} WHERE {user}"), {"u": user_id})
            if tables.memories:
                cursor.execute(tables.sql(f"DELETE FROM {{memories}} WHERE {user}"), {"u": user_id})
    return footprint


# The users list: one query for a page of user_ids and their counts.


def users_with_stats(
    agent: Agent, *, after: str | None, prefix: str, limit: int, with_null: bool
) -> dict[str | None, UserStats]:
    """The next `limit` distinct user_ids of memories and sessions in user_id order, each
    with its counts, in one query; with `with_null`, the runtime's NULL user_id first when
    any row is stored under it. Registered keys missing here hold nothing in the runtime."""
    params = {"after": after, "prefix": like_escaped(prefix) + "%", "n": limit}

    def statement(tables: Tables) -> str | None:
        present = [name for name in ("memories", "sessions") if getattr(tables, name)]
        if not present:
            return None
        scans = [_next_keys(name, prefix) for name in present]
        keys = " UNION ".join(f"(SELECT user_id FROM {name}_keys)" for name in present)
        sql = (
            f"WITH RECURSIVE {', '.join(scans)}, "
            f"keys AS (SELECT user_id FROM ({keys}) AS u(user_id) ORDER BY 1 LIMIT %(n)s) "
            f"SELECT k.user_id, m.*, s.* FROM keys AS k "
            f"CROSS JOIN LATERAL ({_memory_figures(tables, 'user_id = k.user_id')}) AS m "
            f"CROSS JOIN LATERAL ({_session_figures(tables, 'user_id = k.user_id')}) AS s"
        )
        if with_null:
            memories, sessions = (
                figures(tables, "user_id IS NULL")
                for figures in (_memory_figures, _session_figures)
            )
            sql += (
                f" UNION ALL SELECT NULL, m.*, s.* FROM ({memories}) AS m, ({sessions}) AS s "
                "WHERE m.n + s.n > 0"
            )
        return sql

    # One statement: no transaction, search_path or table lookup around it (read_rows).
    found = read_rows(agent, statement, params, replica=True)
    stats = {
        key: UserStats(memory_count, session_count, _latest(memory_last, session_last))
        for key, memory_count, memory_last, session_count, session_last in found
    }
    # NULL first, as the list shows it, then user_id order.
    return dict(sorted(stats.items(), key=lambda item: (item[0] is not None, item[0] or "")))


def _next_keys(table: str, prefix: str) -> str:
    """A CTE `<table>_keys` of the next %(n)s distinct user_ids after %(after)s. Without a
    prefix, a loose index scan: one probe of the user_id index per key, where DISTINCT read
    every row of every user on the page (10,000 index entries for one heavy user). With
    one, DISTINCT over the prefix's range of the pattern index, which stays narrow."""
    after = "(%(after)s::text IS NULL OR user_id > %(after)s)"
    if prefix:
        return (
            f"{table}_keys AS (SELECT DISTINCT user_id FROM {{{table}}} WHERE user_id IS NOT NULL "
            f"AND {after} AND user_id LIKE %(prefix)s ORDER BY user_id LIMIT %(n)s)"
        )
    first = f"SELECT user_id FROM {{{table}}} WHERE user_id IS NOT NULL AND {after}"
    return (
        f"{table}_walk(user_id, depth) AS (SELECT ({first} ORDER BY user_id LIMIT 1), 1 "
        f"UNION ALL SELECT (SELECT t.user_id FROM {{{table}}} AS t WHERE t.user_id > w.user_id "
        f"ORDER BY t.user_id LIMIT 1), w.depth + 1 FROM {table}_walk AS w "
        f"WHERE w.user_id IS NOT NULL AND w.depth < %(n)s), "
        f"{table}_keys AS (SELECT user_id FROM {table}_walk WHERE user_id IS NOT NULL)"
    )


def _memory_figures(tables: Tables, condition: str) -> str:
    """Count and newest time, both from the user_id indexes: no memory row is read. The
    characters behind an estimate come from stored_chars, for users not counted yet only."""
    if not tables.memories:
        return "SELECT 0::bigint AS n, NULL::bigint AS last"
    return (
        f"SELECT count(*) AS n, {newest_stamp(condition)} AS last "
        f"FROM {{memories}} WHERE {condition}"
    )


# Memories read per user for the estimate; a user with more has the rest scaled from these.
ESTIMATE_SAMPLE = 1_000


def stored_chars(agent: Agent, counts: dict[str | None, int]) -> dict[str | None, int]:
    """The characters of each user's memories (STORED_CHARS), for the token estimate of users
    the token sweep has not counted yet; `counts` holds each user's memory count. A user with
    more than ESTIMATE_SAMPLE memories has the first ESTIMATE_SAMPLE read (in the user_id
    index's order) and scaled to the count: reading all of a heavy user's 10,000 rows was
    most of the users list's SQL. Qualified names, so one query and no search_path."""
    location = location_of(agent)
    table = location.qualified("memories")

    def sample(match: str) -> str:
        return (
            f"SELECT {STORED_CHARS} AS chars, count(*) AS n FROM (SELECT memory FROM {table} "
            f"AS m WHERE {match} LIMIT %(sample)s) AS t"
        )

    sql = (
        "SELECT u.user_id, s.chars, s.n FROM unnest(%(keys)s::text[]) AS u(user_id) "
        f"CROSS JOIN LATERAL ({sample('m.user_id = u.user_id')}) AS s"
    )
    if None in counts:
        sql += f" UNION ALL SELECT NULL, s.chars, s.n FROM ({sample('m.user_id IS NULL')}) AS s"
    params = {"keys": [key for key in counts if key is not None], "sample": ESTIMATE_SAMPLE}
    with connections[location.replica_alias or location.alias].cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return {
        user_id: chars * counts[user_id] // n if n and counts[user_id] > n else chars
        for user_id, chars, n in found
    }


def _session_figures(tables: Tables, condition: str) -> str:
    if not tables.sessions:
        return "SELECT 0::bigint AS n, NULL::bigint AS last"
    return (
        "SELECT count(*) AS n, max(coalesce(updated_at, created_at)) AS last "
        f"FROM {{sessions}} WHERE {condition}"
    )


def _latest(*stamps: int | None) -> int | None:
    known = [stamp for stamp in stamps if stamp is not None]
    return max(known) if known else None
