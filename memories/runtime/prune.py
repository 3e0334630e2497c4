"""The runtime side of pruning: which memories match, and deleting a fixed batch of them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from agents.models import Agent
from memories.models import memory_text
from memories.runtime.access import in_agent_schema, read_rows, same_user
from memories.runtime.memories import EXPORT_FIELDS, SORT_KEYS, in_seconds
from studio import stored_json

# (memory_id, user_id, the memory's updated_at or created_at, tokens its line costs)
Candidate = tuple[str, str | None, int, int]


def _candidate_sql(
    *,
    user_id: str | None,
    one_user: bool,
    topic: str,
    changed_before: int | None,
    keep_newest: int | None,
) -> tuple[str, list[Any]]:
    conditions, params = ["TRUE"], []
    # NULL is matched with IS NULL (`=` never matches it); "" is a user_id like any other.
    user_params = [] if user_id is None else [user_id]
    if one_user:
        conditions.append(same_user(user_id, "%s", "m.user_id"))
        params.extend(user_params)
    if topic:
        # A bare JSON string contains itself, and an array contains a string it holds.
        conditions.append("m.topics @> %s::jsonb")
        params.append(json.dumps(topic))
    if changed_before is not None:
        # Milliseconds count as the moment they name, as every list sorts them.
        conditions.append(f"{in_seconds('coalesce(m.updated_at, m.created_at)')} < %s")
        params.append(changed_before)
    source = "{memories} m"
    if keep_newest is not None:
        # Rank every memory of each user, newest first; those past K are candidates.
        source = (
            "(SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY "
            f"{SORT_KEYS['updated']} DESC, memory_id DESC) AS rank FROM {{memories}}"
            + (f" WHERE {same_user(user_id, '%s')}" if one_user else "")
            + ") m"
        )
        if one_user:
            params[:0] = user_params
        conditions.append("m.rank > %s")
        params.append(keep_newest)
    sql = (
        "SELECT m.memory_id, m.user_id, coalesce(m.updated_at, m.created_at), m.memory "
        f"FROM {source} WHERE {' AND '.join(conditions)}"
    )
    return sql, params


def prune_candidates(
    agent: Agent,
    *,
    line_tokens: Callable[[str], int],
    user_id: str | None = None,
    one_user: bool = False,
    topic: str = "",
    changed_before: int | None = None,
    keep_newest: int | None = None,
) -> list[Candidate]:
    """Every memory the criteria match, read in one snapshot, with what its line costs
    (psycopg's client-side cursor holds the result anyway; the text is dropped at once).
    With `one_user`, only `user_id`'s (None: the rows stored with user_id NULL)."""
    sql, params = _candidate_sql(
        user_id=user_id,
        one_user=one_user,
        topic=topic,
        changed_before=changed_before,
        keep_newest=keep_newest,
    )
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return []
        with tables.cursor() as cursor:
            cursor.execute(tables.sql(sql), params)
            # Django's connection reads jsonb as text; agno's context holds str() of the value.
            return [
                (memory_id, owner, changed, line_tokens(memory_text(stored_json.loads(memory))))
                for memory_id, owner, changed, memory in cursor.fetchall()
            ]


@cache
def _whitespace() -> str:
    """Every character str.split() splits on, so SQL folds spaces as typed topics are folded."""
    return "".join(c for c in map(chr, range(0x110000)) if c.isspace())


def topics_spaced_otherwise(
    agent: Agent, topic: str, *, user_id: str | None, one_user: bool, limit: int = 10
) -> list[tuple[str, int]]:
    """The stored topics (text ones: a number never matches a typed topic) that equal `topic`
    once padding and runs of spaces are set aside but differ from it as stored, with how many
    memories (of `user_id`'s, with `one_user`) hold each, most first. A scan, as the prune's
    own preview is."""
    folded = " ".join(topic.split())
    spaces = _whitespace()
    # Only rows whose topics' JSON text holds the longest word are expanded (JSON escapes only
    # quotes, backslashes and control characters, so a word free of them appears as itself).
    plain = [w for w in folded.split(" ") if w and not any(c in '"\\' or c < " " for c in w)]
    word = max(plain, key=len, default="")
    sql = (
        # Memories share a few topic lists: each distinct list is expanded once.
        "WITH lists AS (SELECT m.topics, count(*) AS n FROM {memories} m "
        "WHERE jsonb_typeof(m.topics) IN ('array', 'string') "
        + (f"AND {same_user(user_id, '%(u)s', 'm.user_id')} " if one_user else "")
        + ("AND strpos(m.topics::text, %(word)s) > 0 " if word else "")
        + "GROUP BY m.topics) "
        "SELECT t.topic, sum(l.n) FROM lists l CROSS JOIN LATERAL ("
        # A bare JSON string is one topic; each topic once per memory.
        "SELECT DISTINCT e #>> '{}' AS topic FROM jsonb_array_elements("
        "CASE jsonb_typeof(l.topics) WHEN 'array' THEN l.topics "
        "ELSE jsonb_build_array(l.topics) END) AS e "
        "WHERE jsonb_typeof(e) = 'string') t "
        "WHERE btrim(regexp_replace(translate(t.topic, %(ws)s, %(blanks)s), "
        "' {2,}', ' ', 'g'), ' ') = %(folded)s "
        # "" is no topic to prune by (a blank topic is no criterion).
        "AND t.topic <> %(topic)s AND t.topic <> '' "
        "GROUP BY t.topic ORDER BY sum(l.n) DESC, t.topic LIMIT %(limit)s"
    )
    params = {
        "u": user_id,
        "ws": spaces,
        "blanks": " " * len(spaces),
        "folded": folded,
        "word": word,
        "topic": topic,
        "limit": limit,
    }
    # A read on the primary, which the preview it explains reads too.
    rows = read_rows(agent, lambda tables: sql if tables.memories else None, params, replica=False)
    return [(stored, int(count)) for stored, count in rows]


def delete_unchanged(agent: Agent, planned: Sequence[tuple[str, int]]) -> list[tuple[str, str]]:
    """Delete memories by (memory_id, changed-at seen in the preview); one that changed since
    is kept. Returns (memory_id, user_id) of those deleted."""
    return [(row["memory_id"], row["user_id"]) for row in take_unchanged(agent, planned)]


# The columns in EXPORT_FIELDS' order, plus whether topics is SQL NULL (not JSON null).
_RETURNED = (
    "m.memory_id, m.memory, m.topics, m.input, m.feedback, m.agent_id, m.team_id, m.user_id, "
    "m.created_at, m.updated_at, m.topics IS NULL"
)


def take_unchanged(agent: Agent, planned: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """As delete_unchanged, returning the deleted rows as stored (the export format)."""
    return _unchanged(agent, planned, "DELETE FROM {memories} m USING", "RETURNING")


def unchanged_rows(agent: Agent, planned: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """The rows take_unchanged would delete now, read from the primary and left in place."""
    return _unchanged(agent, planned, "SELECT {returned} FROM {memories} m,", "")


def still_stored(agent: Agent, memory_ids: Sequence[str]) -> set[str]:
    """Which of `memory_ids` the runtime holds (whatever their version)."""
    if not memory_ids:
        return set()
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return set()
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql("SELECT memory_id FROM {memories} WHERE memory_id = ANY(%s::text[])"),
                [list(memory_ids)],
            )
            return {row[0] for row in cursor.fetchall()}


def _unchanged(
    agent: Agent, planned: Sequence[tuple[str, int]], head: str, tail: str
) -> list[dict[str, Any]]:
    if not planned:
        return []
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return []
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    head.replace("{returned}", _RETURNED) + " unnest(%s::text[], %s::bigint[]) "
                    "AS b(memory_id, changed_at) WHERE m.memory_id = b.memory_id "
                    "AND coalesce(m.updated_at, m.created_at) = b.changed_at "
                    + (f"{tail} {_RETURNED}" if tail else "")
                ),
                [[memory_id for memory_id, _ in planned], [changed for _, changed in planned]],
            )
            fetched = cursor.fetchall()
    rows = []
    for *columns, topics_sql_null in fetched:
        row = dict(zip(EXPORT_FIELDS, columns, strict=True))
        # A raw cursor returns JSONB as text (Django's loader), read however deep it nests.
        for name in ("memory", "topics"):
            if isinstance(row[name], str):
                row[name] = stored_json.loads(row[name])
        if topics_sql_null:
            del row["topics"]
        rows.append(row)
    return rows
