"""Memories as the runtime stores them: pages, lookups, and the writes actions make.

Functions here read or write the agent's memory table (agno_memories unless its PostgresDb
renames it) and nothing else; the studio-side upkeep of a write (audit, token counts, flags)
is the job of memories.actions.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from django.db.models import BooleanField, Func, JSONField, TextField, Value
from django.db.models.expressions import RawSQL

from agents.models import Agent
from memories.models import Memory, memory_text, topic_items
from memories.runtime.access import (
    PAGE_SIZE,
    ForeignMemories,
    MemoryNotFound,
    Page,
    StaleMemory,
    Tables,
    decode_cursor,
    in_agent_schema,
    keyset_page,
    like_escaped,
    page_limit,
    read_runtime,
    same_user,
    walk_without_table,
)
from memories.runtime.schema import ensure_runtime_tables
from studio import stored_json
from studio.sql_rows import fetch, fetch_one, select_list


class MemoryText(Func):
    """The memory as plain text: `memory` is JSONB holding a JSON string."""

    template = "(%(expressions)s #>> '{}')"
    output_field = TextField()


MEMORY_SORTS = {
    "-updated": "Recently updated",
    "updated": "Least recently updated",
    "-created": "Newest",
    "created": "Oldest",
}


def topics_value(topics: list[str] | None) -> Any:
    # The runtime writes JSON null (not SQL NULL) when a memory has no topics.
    return topics if topics else Value(None, output_field=JSONField())


def user_memories(agent: Agent, user_id: str | None, **filters: Any) -> Page[Memory]:
    """One page of a user's memories, newest first by default, keyset-paginated; `filters`
    are memories_page's (after, search, topic, sort, limit, only_ids, with_summary)."""
    if filters.get("only_ids") is not None and not filters["only_ids"]:
        return Page([])
    return read_runtime(
        agent, lambda tables: memories_page(tables, user_id, **filters), replica=True
    )


def memories_page(
    tables: Tables,
    user_id: str | None,
    *,
    after: str | None = None,
    search: str = "",
    topic: str = "",
    sort: str = "-updated",
    limit: int = PAGE_SIZE,
    only_ids: Sequence[str] | None = None,
    with_summary: bool = False,
) -> Page[Memory]:
    """A page of a user's memories from tables being read (user_memories; user_page reads
    the summary in the same block). With `with_summary`, each row also carries the user's
    totals (summary_memories, summary_sessions, summary_last): uncorrelated subqueries
    Postgres runs once, not per row."""
    if sort not in MEMORY_SORTS:
        sort = "-updated"
    limit = page_limit(limit)
    if not tables.memories or (only_ids is not None and not only_ids):
        return Page([])
    query = MemoryQuery([same_user(user_id, "%s")], [] if user_id is None else [user_id])
    query.filter_text(search)
    query.filter_topic(topic)
    if only_ids is not None:
        query.where.append("memory_id = ANY(%s)")
        query.params.append(list(only_ids))
    if with_summary:
        query.add_summary(tables, user_id)
    return query.page(tables, sort, after, limit)


class MemoryQuery:
    """A keyset page of memories as plain SQL (studio.sql_rows): the ORM took longer to
    compile the user page's query (1.2 ms) than Postgres took to answer it."""

    def __init__(self, where: list[str] | None = None, params: list[Any] | None = None) -> None:
        self.where, self.params = where or [], params or []
        self.columns: list[str] = []  # SQL for extra columns, named in column_names
        self.column_names: list[str] = []
        self.column_params: list[Any] = []

    def add_column(self, sql: str, name: str) -> None:
        self.columns.append(f"{sql} AS {name}")
        self.column_names.append(name)

    def filter_text(self, search: str) -> None:
        if search:
            # ILIKE on the plain text: a trigram index (manage.py runtime_indexes) serves it.
            self.where.append("(memory #>> '{}') ILIKE %s")
            self.params.append(f"%{like_escaped(search)}%")

    def filter_topic(self, topic: str) -> None:
        if topic:
            # `topics @> '"t"'`: an array holding "t", or "t" stored as a bare JSON string.
            self.where.append("topics @> %s::jsonb")
            self.params.append(json.dumps(topic))

    def add_summary(self, tables: Tables, user_id: str | None) -> None:
        user = same_user(user_id, "%s")
        given = [] if user_id is None else [user_id]
        sessions = f"(SELECT count(*) FROM {{sessions}} WHERE {user})" if tables.sessions else "0"
        self.add_column(f"(SELECT count(*) FROM {{memories}} WHERE {user})", "summary_memories")
        self.add_column(newest_stamp(user), "summary_last")
        self.add_column(sessions, "summary_sessions")
        self.column_params += given * (3 if tables.sessions else 2)

    def page(self, tables: Tables, sort: str, after: str | None, limit: int) -> Page[Memory]:
        """The page after the cursor, ordered by (sort key, memory_id) like the indexes."""
        descending = sort.startswith("-")
        key_sql = SORT_KEYS[sort.lstrip("-")]
        where, params = list(self.where), list(self.params)
        if after:
            last_key, last_id = decode_cursor(after, (int, str))
            where.append(f"({key_sql}, memory_id) {'<' if descending else '>'} (%s, %s)")
            params += [last_key, last_id]
        direction = "DESC" if descending else "ASC"
        columns = ", ".join([select_list(tables.Memory), *self.columns, f"{key_sql} AS sort_key"])
        sql = tables.sql(
            f"SELECT {columns} FROM {{memories}} WHERE {' AND '.join(where) or 'TRUE'} "
            f"ORDER BY sort_key {direction}, memory_id {direction} LIMIT %s"
        )
        rows = fetch(
            tables.Memory,
            sql,
            [*self.column_params, *params, limit + 1],
            extras=[*self.column_names, "sort_key"],
            using=tables.alias,
        )
        return keyset_page(rows, limit, lambda memory: (memory.sort_key, memory.memory_id))


def newest_stamp(user: str) -> str:
    """SQL for a user's newest memory time as stored, found as the first entry of the
    (user_id, sort key) index: max() over the stamps read every one of a user's rows (3 ms
    for 10,000) and ranked a millisecond stamp above any in seconds."""
    key = SORT_KEYS["updated"]
    return (
        f"(SELECT coalesce(updated_at, created_at) FROM {{memories}} WHERE {user} "
        f"ORDER BY {key} DESC LIMIT 1)"
    )


def in_seconds(stamp: str) -> str:
    """A runtime time as SQL epoch seconds: the runtime writes seconds, but some rows hold
    milliseconds (10^11 and up, past year 5138 as seconds); those sort by the moment they
    name instead of ahead of everything. Pages still show the stored value, flagged."""
    return f"(CASE WHEN {stamp} >= 100000000000 THEN {stamp} / 1000 ELSE {stamp} END)"


# The sort keys as SQL, so keyset conditions compare rows the way the indexes are ordered
# (memories.runtime.indexes builds its indexes on these very expressions).
SORT_KEYS = {
    "updated": in_seconds("coalesce(updated_at, created_at)"),
    "created": in_seconds("created_at"),
}


def search_memories(
    agent: Agent, search: str, *, after: str | None = None, limit: int = PAGE_SIZE
) -> Page[Memory]:
    """Memories of every user of an agent whose text holds `search`, newest first."""
    limit = page_limit(limit)
    if not search:
        return Page([])

    def read(tables: Tables) -> Page[Memory]:
        if not tables.memories:
            return Page([])
        query = MemoryQuery()
        query.filter_text(search)
        return query.page(tables, "-updated", after, limit)

    return read_runtime(agent, read, replica=True)


def recent_memories(agent: Agent, limit: int = 10) -> list[Memory]:
    """The newest memories across every user of an agent (the index on the change time):
    every open Memory tab asks every few seconds."""

    def read(tables: Tables) -> list[Memory]:
        if not tables.memories:
            return []
        return MemoryQuery().page(tables, "-updated", None, page_limit(limit)).items

    return read_runtime(agent, read, replica=True)


def memory_topics(agent: Agent, user_id: str) -> list[str]:
    """The topics in use across a user's memories (a scan of them all: loaded on demand)."""

    def read(tables: Tables) -> list[str]:
        if not tables.memories:
            return []
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    # A bare JSON string is one topic (agno accepts topics="travel").
                    "SELECT DISTINCT jsonb_array_elements_text(CASE jsonb_typeof(topics) "
                    "WHEN 'array' THEN topics WHEN 'string' THEN jsonb_build_array(topics) END) "
                    f"FROM {{memories}} WHERE {same_user(user_id)} "
                    "AND jsonb_typeof(topics) IN ('array', 'string') ORDER BY 1"
                ),
                {"u": user_id},
            )
            # A stored "" topic is left out: "" is the filter's "All topics".
            return [row[0] for row in cursor.fetchall() if row[0] != ""]

    return read_runtime(agent, read, replica=True)


def get_memory(agent: Agent, user_id: str | None, memory_id: str) -> Memory:
    """One memory as the primary holds it now (a row, an edit form, a confirmation)."""

    def read(tables: Tables) -> Memory:
        return _one_memory(tables, user_id, memory_id)

    return read_runtime(agent, read, replica=False)


def _one_memory(
    tables: Tables, user_id: str | None, memory_id: str, *, lock: bool = False
) -> Memory:
    """One memory of this user as stored, or MemoryNotFound. Plain SQL (the row, the edit
    form and every save read one): the ORM spent longer building the query than Postgres
    spent answering it."""
    if not tables.memories:
        raise MemoryNotFound(MemoryNotFound.message)
    where, keys = _memory_key(user_id, memory_id)
    lock_sql = " FOR UPDATE" if lock else ""
    sql = f"SELECT {select_list(tables.Memory)} FROM {{memories}} WHERE {where}{lock_sql}"
    memory = fetch_one(tables.Memory, tables.sql(sql), keys, using=tables.alias)
    if memory is None:
        raise MemoryNotFound(MemoryNotFound.message)
    return memory


def _memory_key(user_id: str | None, memory_id: str) -> tuple[str, list[str]]:
    """The WHERE for one memory of this user (NULL included) and its parameters."""
    where = f"memory_id = %s AND {same_user(user_id, '%s')}"
    return where, [memory_id] if user_id is None else [memory_id, user_id]


def insert_memory(
    agent: Agent, user_id: str, *, text: str, topics: list[str], input_text: str = ""
) -> tuple[Memory, bool]:
    """Insert a memory as the runtime would (uuid4 id, epoch seconds); True if tables were new."""
    created_tables = False
    # No savepoint (two round trips fewer): the add action's transaction fails as a whole.
    with in_agent_schema(agent, savepoint=False) as tables:
        if not tables.memories:
            created_tables = ensure_runtime_tables(tables.location)
        now = int(time.time())
        memory = tables.Memory(
            memory_id=str(uuid.uuid4()),
            memory=text,
            input=input_text or None,
            user_id=user_id,
            topics=topics_value(topics),
            created_at=now,
            updated_at=now,
        )
        memory.save(force_insert=True)
        memory.topics = topics or None
    return memory, created_tables


def update_memory(
    agent: Agent,
    user_id: str,
    memory_id: str,
    *,
    version: str,
    text: str | None,
    topics: list[Any] | None,
) -> Memory:
    """Change what is given (None: keep as stored), refusing if the memory changed since
    `version` was read. Nothing given, nothing written: updated_at stays."""
    # Plain SQL (raw() for the row): an edit is one locked read and one UPDATE, and the ORM
    # spent longer building them than Postgres spent running them.
    where, keys = _memory_key(user_id, memory_id)
    # No savepoint: a refused edit (stale, not found) fails the whole action.
    with in_agent_schema(agent, savepoint=False) as tables:
        memory = _one_memory(tables, user_id, memory_id, lock=True)
        if memory.version != version:
            raise StaleMemory(memory)
        sets, values = [], []
        if text is not None:
            sets.append("memory = %s::jsonb")
            values.append(json.dumps(text))
        if topics is not None:
            topics = _with_stored_items(memory, topics)
            # No topics: JSON null, as the runtime writes it (not SQL NULL, not []).
            sets.append("topics = %s::jsonb")
            values.append(stored_json.dumps(topics or None))  # a too-deep topic as stored
        if not sets:
            return memory
        now = int(time.time())
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    f"UPDATE {{memories}} SET {', '.join(sets)}, updated_at = %s WHERE {where}"
                ),
                [*values, now, *keys],
            )
    if text is not None:
        memory.memory = text
    if topics is not None:
        memory.topics = topics or None
    memory.updated_at = now
    return memory


def _with_stored_items(memory: Memory, topics: list[str]) -> list[Any]:
    """The topics to store: a stored topic that is not text (agno does not check) was shown
    and sent back as its text (memory_text), and goes back as it was stored, not as that text.
    Stored items are taken in order per text, so [1, "1"] stays [1, "1"]. The version check
    has made sure these are the topics the form showed."""
    stored = topic_items(memory.topics)
    if all(isinstance(item, str) for item in stored):
        return topics
    waiting: dict[str, deque[Any]] = {}
    for item in stored:
        waiting.setdefault(memory_text(item), deque()).append(item)
    return [waiting[topic].popleft() if waiting.get(topic) else topic for topic in topics]


def delete_memory(agent: Agent, user_id: str, memory_id: str, *, version: str = "") -> None:
    """Delete one memory; with `version`, only if it has not changed since it was shown."""
    take_memory(agent, user_id, memory_id, version=version)


def take_memory(
    agent: Agent, user_id: str | None, memory_id: str, *, version: str = ""
) -> dict[str, Any]:
    """Delete one memory and return its row as stored (the export format), for the trash.
    Plain SQL, as an edit's: a locked read and a DELETE, which the ORM took longer to build
    than Postgres took to run. No savepoint: a refused delete (stale, not found) fails the
    delete action's whole transaction, as a refused edit does."""
    with in_agent_schema(agent, savepoint=False) as tables:
        if not tables.memories:
            raise MemoryNotFound(MemoryNotFound.message)
        where, keys = _memory_key(user_id, memory_id)
        memory = fetch_one(
            tables.Memory,
            # Django reads SQL NULL and JSON null topics both as None; the trash must tell
            # them apart, so the row says which (stored_row).
            tables.sql(
                f"SELECT {select_list(tables.Memory)}, topics IS NULL FROM {{memories}} "
                f"WHERE {where} FOR UPDATE"
            ),
            keys,
            extras=["topics_sql_null"],
            using=tables.alias,
        )
        if memory is None:
            raise MemoryNotFound(MemoryNotFound.message)
        if version and memory.version != version:
            raise StaleMemory(memory)
        with tables.cursor() as cursor:
            cursor.execute(tables.sql(f"DELETE FROM {{memories}} WHERE {where}"), keys)
    return stored_row(memory)


def delete_user_memories(agent: Agent, user_id: str, memory_ids: Sequence[str]) -> int:
    """Delete all of `memory_ids` or none: every id must be this user's memory in this agent."""
    return len(take_user_memories(agent, user_id, memory_ids))


def take_user_memories(
    agent: Agent, user_id: str | None, memory_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Delete all of `memory_ids` or none (every id must be this user's memory in this agent)
    and return the rows as stored, for the trash."""
    wanted = set(memory_ids)
    if not wanted:
        return []
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            raise ForeignMemories(ForeignMemories.message)
        rows = tables.Memory.objects.filter(memory_id__in=wanted, user_id=user_id)
        owned = list(with_null_topics(rows).select_for_update().order_by("memory_id"))
        if {memory.memory_id for memory in owned} != wanted:
            raise ForeignMemories(ForeignMemories.message)
        rows.delete()
    return [stored_row(memory) for memory in owned]


def with_null_topics(rows: Any) -> Any:
    # Django reads SQL NULL and JSON null topics both as None; the trash must tell them apart.
    return rows.annotate(topics_sql_null=RawSQL("topics IS NULL", (), BooleanField()))


def stored_row(memory: Memory) -> dict[str, Any]:
    """A memory as stored, in the export format: no `topics` key means SQL NULL topics."""
    skipped = ("topics",) if getattr(memory, "topics_sql_null", False) else ()
    return {name: getattr(memory, name) for name in EXPORT_FIELDS if name not in skipped}


# The row format of exports, imports and the trash, in the runtime's own field names
# (moving rows in and out is memories.runtime.transfer).

EXPORT_FIELDS = (
    "memory_id",
    "memory",
    "topics",
    "input",
    "feedback",
    "agent_id",
    "team_id",
    "user_id",
    "created_at",
    "updated_at",
)


# Hygiene: the context block, prunes and the sensitive scan read the runtime through these.


def newest_memory_time(agent: Agent, user_id: str) -> int | None:
    """A user's newest memory time as the lists sort it (the index's first entry): what a
    token count remembers, so the sweep knows exactly when it has gone stale."""
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return None
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    f"SELECT {SORT_KEYS['updated']} FROM {{memories}} WHERE {same_user(user_id)} "
                    f"ORDER BY {SORT_KEYS['updated']} DESC LIMIT 1"
                ),
                {"u": user_id},
            )
            row = cursor.fetchone()
    return row[0] if row else None


def memories_for_context(agent: Agent, user_id: str) -> list[str]:
    """A user's memory texts in the order agno reads them (its query has no ORDER BY, so
    Postgres returns them in physical order; ctid makes that explicit)."""
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return []
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    f"SELECT memory FROM {{memories}} WHERE {same_user(user_id)} ORDER BY ctid"
                ),
                {"u": user_id},
            )
            return [memory_text(stored_json.loads(row[0])) for row in cursor.fetchall()]


def context_reads(agent: Agent, user_id: str | None) -> tuple[int | None, list[str]]:
    """What a token count reads: the user's newest memory time, then the texts in agno's
    order, in one visit to the agent's schema (each statement still sees its own snapshot,
    so a memory written between the two is counted but not remembered, never the reverse)."""
    with in_agent_schema(agent):
        newest = newest_memory_time(agent, user_id)
        return newest, memories_for_context(agent, user_id)


def memories_by_id(agent: Agent, memory_ids: Sequence[str]) -> dict[str, Memory]:
    with in_agent_schema(agent) as tables:
        if not tables.memories or not memory_ids:
            return {}
        return {
            m.memory_id: m for m in tables.Memory.objects.filter(memory_id__in=list(memory_ids))
        }


def memories_after(agent: Agent, after: str | None, limit: int) -> list[Memory]:
    """The next memories in memory_id order: how agent-wide scans walk a big table. `after`
    None starts at the first, memory_id "" included (agno stores it as given). A table gone
    mid-walk (after rows were read) is TablesGone, not an end that looks like the last row."""
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return walk_without_table(after)
        rows = tables.Memory.objects.all()
        if after is not None:
            rows = rows.filter(memory_id__gt=after)
        return list(rows.order_by("memory_id")[:limit])


def user_memories_all(agent: Agent, user_id: str, cap: int = 20_000) -> list[Memory]:
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return []
        return list(tables.Memory.objects.filter(user_id=user_id).order_by("memory_id")[:cap])


def delete_memories_by_id(agent: Agent, memory_ids: Sequence[str]) -> list[tuple[str, str]]:
    """Delete memories of any users by id; returns (memory_id, user_id) of those deleted."""
    with in_agent_schema(agent) as tables:
        if not tables.memories or not memory_ids:
            return []
        rows = tables.Memory.objects.filter(memory_id__in=list(memory_ids))
        deleted = list(rows.values_list("memory_id", "user_id"))
        rows.delete()
        return deleted


def memories_created_per_day(agent: Agent, days: int = 90) -> list[tuple[int, int]]:
    """(day as epoch seconds at 00:00 UTC, memories created) for the last `days` days."""
    since = (int(time.time()) // 86_400 - days + 1) * 86_400
    with in_agent_schema(agent, replica=True) as tables:
        if not tables.memories:
            return []
        with tables.cursor() as cursor:
            cursor.execute(
                tables.sql(
                    "SELECT created_at / 86400 * 86400 AS day, count(*) FROM {memories} "
                    "WHERE created_at >= %s GROUP BY 1 ORDER BY 1"
                ),
                [since],
            )
            return list(cursor.fetchall())
