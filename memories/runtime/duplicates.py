"""The runtime side of duplicates: memories of one user that repeat each other.

Exact repeats compare the text after lower-casing and folding every run of spaces and
punctuation into one space, in SQL, so an agent-wide search never loads every memory.
Near repeats use pg_trgm's similarity (served by idx_ms_memories_text_trgm where
`manage.py runtime_indexes` ran); the extension lives in a schema of its own, outside the
agent's search path, so its function and operator are named with that schema.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import DatabaseError

from agents.models import Agent
from memories.runtime.access import in_agent_schema, read_rows, same_user

# Text as exact repeats compare it: case, spaces and punctuation do not count.
NORMALISED = "btrim(regexp_replace(lower(memory #>> '{}'), '[^[:alnum:]]+', ' ', 'g'))"
MAX_GROUPS = 200  # exact groups per search: the page shows this many
MAX_PAIRS = 1_000  # near pairs per search
NEAR_TIMEOUT_MS = 20_000  # an agent-wide near search gives up rather than hold a worker


class TrigramMissing(Exception):
    message = (
        "Near repeats need Postgres's pg_trgm extension, which this runtime database does not "
        "have. Run `manage.py runtime_indexes` (it creates the extension and the trigram index) "
        "or ask the database owner to `CREATE EXTENSION pg_trgm`. Exact repeats are shown."
    )


class NearSearchTooSlow(Exception):
    message = (
        "The near-repeat search took longer than 20 seconds and was stopped. Look at one user, "
        "raise the threshold, or run `manage.py runtime_indexes` for the trigram index. "
        "Exact repeats are shown."
    )


def exact_groups(agent: Agent, user_id: str | None, *, all_users: bool) -> list[list[str]]:
    """memory_ids of memories sharing a user and a normalised text, largest groups first."""
    where = "TRUE" if all_users else same_user(user_id)
    sql = (
        "SELECT array_agg(memory_id ORDER BY memory_id) FROM {memories} "
        f"WHERE {where} GROUP BY user_id, md5({NORMALISED}) "
        "HAVING count(*) > 1 ORDER BY count(*) DESC, min(memory_id) LIMIT %(n)s"
    )
    rows = read_rows(
        agent,
        lambda tables: sql if tables.memories else None,
        {"u": user_id, "n": MAX_GROUPS},
        replica=False,  # the groups are removed from the primary
    )
    return [list(row[0]) for row in rows]


def _trigram_schema(cursor) -> str | None:  # noqa: ANN001 - a DB-API cursor
    cursor.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    row = cursor.fetchone()
    return f'"{row[0]}"' if row else None


def near_pairs(
    agent: Agent, user_id: str | None, *, all_users: bool, threshold: float
) -> list[tuple[str, str, float]]:
    """(memory_id, memory_id, similarity) of one user's memories at least `threshold` alike.
    Raises TrigramMissing without pg_trgm, NearSearchTooSlow past the time limit."""
    where = "TRUE" if all_users else same_user(user_id)
    params = {"u": user_id, "n": MAX_PAIRS, "threshold": threshold}
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return []
        with tables.cursor() as cursor:
            trgm = _trigram_schema(cursor)
            if trgm is None:
                raise TrigramMissing(TrigramMissing.message)
            # `%` compares with this threshold, and can use the trigram index.
            cursor.execute(
                "SELECT current_setting('statement_timeout'), "
                "set_config('pg_trgm.similarity_threshold', %s, true), "
                "set_config('statement_timeout', %s, true)",
                [str(threshold), str(NEAR_TIMEOUT_MS)],
            )
            timeout_before = cursor.fetchone()[0]
            by_index = all_users or _has_many_memories(cursor, tables, user_id)
            try:
                cursor.execute(tables.sql(_near_sql(trgm, where, by_index=by_index)), params)
                pairs = [(a, b, float(s)) for a, b, s in cursor.fetchall()]
            except DatabaseError as error:
                if getattr(error.__cause__, "sqlstate", None) == "57014":  # query_canceled
                    raise NearSearchTooSlow(NearSearchTooSlow.message) from error
                raise
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [timeout_before])
    return pairs


# Past this many memories, one user's near search goes through the trigram index: comparing
# every pair is quadratic. 3,000 distinct memories among 100,000: every pair ran past the
# 20-second limit, the index answered in 13.6 s (still slow: such users want a job).
PAIRWISE_LIMIT = 500


def _has_many_memories(cursor, tables, user_id: str | None) -> bool:  # noqa: ANN001
    cursor.execute(
        tables.sql(
            f"SELECT count(*) > %(limit)s FROM (SELECT 1 FROM {{memories}} "
            f"WHERE {same_user(user_id)} LIMIT %(limit)s + 1) AS enough"
        ),
        {"u": user_id, "limit": PAIRWISE_LIMIT},
    )
    return bool(cursor.fetchone()[0])


def _near_sql(trgm: str, where: str, *, by_index: bool) -> str:
    if not by_index:
        # A few of one user's memories against each other: the trigram index would also
        # return every other user's look-alikes, so compare the rows directly.
        return (
            "WITH u AS MATERIALIZED (SELECT memory_id, memory #>> '{}' AS t FROM {memories} "
            f"WHERE {where}) SELECT a.memory_id, b.memory_id, {trgm}.similarity(a.t, b.t) "
            "FROM u a JOIN u b ON b.memory_id > a.memory_id "
            f"WHERE {trgm}.similarity(a.t, b.t) >= %(threshold)s "
            "ORDER BY 3 DESC, 1, 2 LIMIT %(n)s"
        )
    # Each memory (of every user, or of one with many) looks up its look-alikes through the
    # trigram index (`%`), the same user's only.
    return (
        f"SELECT a.memory_id, b.memory_id, {trgm}.similarity(a.t, b.t) FROM "
        f"(SELECT memory_id, user_id, memory #>> '{{}}' AS t FROM {{memories}} WHERE {where}) a "
        "JOIN LATERAL (SELECT memory_id, memory #>> '{}' AS t FROM {memories} "
        f"WHERE (memory #>> '{{}}') OPERATOR({trgm}.%%) a.t AND memory_id > a.memory_id "
        "AND user_id IS NOT DISTINCT FROM a.user_id) b ON TRUE "
        "ORDER BY 3 DESC, 1, 2 LIMIT %(n)s"
    )


def normalised_collisions(
    agent: Agent, source: str | None, target: str
) -> Sequence[tuple[str, str]]:
    """(source memory_id, target memory_id) pairs whose texts are exact repeats: what a move
    of `source`'s memories to `target` would put twice under `target`."""
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return []
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    "SELECT DISTINCT ON (s.memory_id) s.memory_id, t.memory_id FROM "
                    f"(SELECT memory_id, {NORMALISED} AS n FROM {{memories}} "
                    f"WHERE {same_user(source)}) s JOIN "
                    f"(SELECT memory_id, {NORMALISED} AS n FROM {{memories}} "
                    "WHERE user_id = %(t)s) t ON s.n = t.n ORDER BY s.memory_id, t.memory_id"
                ),
                {"u": source, "t": target},
            )
            return cursor.fetchall()
