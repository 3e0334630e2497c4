"""Every read and write of the Agno runtime's tables goes through this module.

Each agent keeps its runtime tables in its own Postgres schema. `reach(agent)` opens a
transaction and points the search_path at that schema with set_config(..., true), so
the unmanaged models serve every agent and nothing leaks to the next request on a
pooled connection. Functions here say what they return; views never write SQL.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connection, transaction
from django.db.models import BigIntegerField, BooleanField, Func, JSONField, Q, TextField, Value
from django.db.models.expressions import RawSQL

from agents.models import Agent
from memories.models import EndUser, Memory, Run, RuntimeSession
from memories.runtime_schema import ensure_runtime_tables, quoted_schema

T = TypeVar("T")
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
# A rough, clearly labelled estimate until a real tokenizer counts them: ~4 characters a token.
CHARS_PER_TOKEN = 4
# Above this many rows (by the planner's estimate) the agents list shows estimated counts.
EXACT_COUNT_LIMIT = 200_000


class RuntimeAccessError(Exception):
    """Base for what the runtime layer reports to views."""


class InvalidCursor(RuntimeAccessError):
    message = "This page link is malformed or out of date. Start again from the first page."


class MemoryNotFound(RuntimeAccessError):
    message = "This memory no longer exists: it was deleted, or belongs to another user."


class StaleEdit(RuntimeAccessError):
    message = "This memory changed since you opened it. Its current text is shown; edit again."

    def __init__(self, current: Memory) -> None:
        super().__init__(self.message)
        self.current = current


class ForeignMemories(RuntimeAccessError):
    message = (
        "Some of the selected memories do not belong to this user in this agent. "
        "Nothing was deleted; reload the page and select again."
    )


@dataclass(frozen=True)
class Tables:
    """Which runtime tables exist in the schema reached: an agent that never ran has none."""

    schema: str
    memories: bool
    sessions: bool
    runs: bool

    @property
    def any(self) -> bool:
        return self.memories or self.sessions


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def schema_of(agent: Agent | str) -> str:
    return agent.db_schema if isinstance(agent, Agent) else agent


@contextmanager
def reach(agent: Agent | str) -> Iterator[Tables]:
    """Run the block in one transaction with the agent's schema first on the search_path."""
    schema = schema_of(agent)
    quoted = quoted_schema(schema)
    current: Tables | None = getattr(connection, "_runtime_tables", None)
    if current is not None and current.schema == schema and connection.in_atomic_block:
        yield current  # already there: nested calls share the transaction and the lookup
        return
    nested = connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('search_path'), set_config('search_path', %s, true), "
                "to_regclass(%s), to_regclass(%s), to_regclass(%s)",
                [
                    f"{quoted}, public",
                    f"{quoted}.agno_memories",
                    f"{quoted}.agno_sessions",
                    f"{quoted}.agno_runs",
                ],
            )
            previous, _, memories, sessions, runs = cursor.fetchone()
        tables = Tables(schema, memories is not None, sessions is not None, runs is not None)
        connection._runtime_tables = tables
        try:
            yield tables
        finally:
            connection._runtime_tables = current
        if nested:
            # SET LOCAL outlives a released savepoint: put the caller's path back.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('search_path', %s, true)", [previous])


# Cursors: the sort key and the memory_id of the last row shown, opaque to the person.


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, types: Sequence[type]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise InvalidCursor(InvalidCursor.message) from error
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, types, strict=True)
        )
    ):
        raise InvalidCursor(InvalidCursor.message)
    return values


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


def memory_version(memory: Memory) -> str:
    """What an edit form carries to detect that someone else changed the memory meanwhile."""
    return memory.version


def _topics_value(topics: list[str] | None) -> Any:
    # The runtime writes JSON null (not SQL NULL) when a memory has no topics.
    return topics if topics else Value(None, output_field=JSONField())


def user_memories(
    agent: Agent,
    user_id: str,
    *,
    after: str | None = None,
    search: str = "",
    topic: str = "",
    sort: str = "-updated",
    limit: int = PAGE_SIZE,
    only_ids: Sequence[str] | None = None,
) -> Page[Memory]:
    """One page of a user's memories, newest first by default, keyset-paginated."""
    if sort not in MEMORY_SORTS:
        sort = "-updated"
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    with reach(agent) as tables:
        if not tables.memories:
            return Page([])
        rows = _filtered_memories(Memory.objects.filter(user_id=user_id), search, topic)
        if only_ids is not None:
            rows = rows.filter(memory_id__in=list(only_ids))
        items = _keyset_page(rows, sort, after, limit)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_cursor = encode_cursor(last.sort_key, last.memory_id)
    return Page(items, next_cursor)


# The sort keys as SQL, so keyset conditions compare rows the way the indexes are ordered.
SORT_KEYS = {"updated": "coalesce(updated_at, created_at)", "created": "created_at"}


def _like_escaped(text: str) -> str:
    """Text for a LIKE pattern, its wildcards taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered_memories(rows: Any, search: str, topic: str) -> Any:
    if search:
        # ILIKE on the plain text: a trigram index (manage.py runtime_indexes) serves it.
        rows = rows.filter(
            RawSQL("(memory #>> '{}') ILIKE %s", (f"%{_like_escaped(search)}%",), BooleanField())
        )
    if topic:
        rows = rows.filter(topics__contains=[topic])
    return rows


def _keyset_page(rows: Any, sort: str, after: str | None, limit: int) -> list[Memory]:
    """limit + 1 rows after the cursor, ordered by (sort key, memory_id) like the indexes."""
    descending = sort.startswith("-")
    key_sql = SORT_KEYS[sort.lstrip("-")]
    rows = rows.annotate(sort_key=RawSQL(key_sql, (), BigIntegerField()))
    if after:
        last_key, last_id = decode_cursor(after, (int, str))
        operator = "<" if descending else ">"
        rows = rows.filter(
            RawSQL(
                f"({key_sql}, memory_id) {operator} (%s, %s)", (last_key, last_id), BooleanField()
            )
        )
    order = ("-sort_key", "-memory_id") if descending else ("sort_key", "memory_id")
    return list(rows.order_by(*order)[: limit + 1])


def search_memories(
    agent: Agent, search: str, *, after: str | None = None, limit: int = PAGE_SIZE
) -> Page[Memory]:
    """Memories of every user of an agent whose text holds `search`, newest first."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    with reach(agent) as tables:
        if not tables.memories or not search:
            return Page([])
        items = _keyset_page(
            _filtered_memories(Memory.objects.all(), search, ""), "-updated", after, limit
        )
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(items[-1].sort_key, items[-1].memory_id)
    return Page(items, next_cursor)


@dataclass(frozen=True)
class UserSummary:
    memory_count: int = 0
    session_count: int = 0
    last_update: int | None = None
    tables: Tables | None = None


def user_summary(agent: Agent, user_id: str) -> UserSummary:
    """Counts and last update for one user, in one query (index-only where vacuumed)."""
    with reach(agent) as tables:
        if not tables.any:
            return UserSummary(tables=tables)
        memories = (
            "(SELECT count(*) FROM agno_memories WHERE user_id = %(u)s), "
            "(SELECT max(coalesce(updated_at, created_at)) FROM agno_memories "
            " WHERE user_id = %(u)s)"
            if tables.memories
            else "0, NULL::bigint"
        )
        sessions = (
            "(SELECT count(*) FROM agno_sessions WHERE user_id = %(u)s)" if tables.sessions else "0"
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {memories}, {sessions}", {"u": user_id})
            memory_count, last_update, session_count = cursor.fetchone()
    return UserSummary(memory_count, session_count, last_update, tables)


def memory_topics(agent: Agent, user_id: str) -> list[str]:
    """The topics in use across a user's memories (a scan of them all: loaded on demand)."""
    with reach(agent) as tables:
        if not tables.memories:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT jsonb_array_elements_text(topics) FROM agno_memories "
                "WHERE user_id = %s AND jsonb_typeof(topics) = 'array' ORDER BY 1",
                [user_id],
            )
            return [row[0] for row in cursor.fetchall()]


def get_memory(agent: Agent, user_id: str, memory_id: str) -> Memory:
    with reach(agent) as tables:
        memory = (
            Memory.objects.filter(memory_id=memory_id, user_id=user_id).first()
            if tables.memories
            else None
        )
    if memory is None:
        raise MemoryNotFound(MemoryNotFound.message)
    return memory


def add_memory(
    agent: Agent, user_id: str, *, text: str, topics: list[str], input_text: str = ""
) -> tuple[Memory, bool]:
    """Insert a memory as the runtime would (uuid4 id, epoch seconds); True if tables were new."""
    created_tables = False
    with reach(agent) as tables:
        if not tables.memories:
            created_tables = ensure_runtime_tables(tables.schema)
        now = int(time.time())
        memory = Memory(
            memory_id=str(uuid.uuid4()),
            memory=text,
            input=input_text or None,
            user_id=user_id,
            topics=_topics_value(topics),
            created_at=now,
            updated_at=now,
        )
        memory.save(force_insert=True)
        memory.topics = topics or None
    return memory, created_tables


def edit_memory(
    agent: Agent, user_id: str, memory_id: str, *, text: str, topics: list[str], version: str
) -> Memory:
    """Change text and topics, refusing if the memory changed since `version` was read."""
    with reach(agent) as tables:
        memory = (
            Memory.objects.select_for_update().filter(memory_id=memory_id, user_id=user_id).first()
            if tables.memories
            else None
        )
        if memory is None:
            raise MemoryNotFound(MemoryNotFound.message)
        if memory_version(memory) != version:
            raise StaleEdit(memory)
        now = int(time.time())
        Memory.objects.filter(memory_id=memory_id, user_id=user_id).update(
            memory=text, topics=_topics_value(topics), updated_at=now
        )
    memory.memory, memory.topics, memory.updated_at = text, topics or None, now
    return memory


def delete_memory(agent: Agent, user_id: str, memory_id: str) -> None:
    with reach(agent) as tables:
        deleted = (
            Memory.objects.filter(memory_id=memory_id, user_id=user_id).delete()[0]
            if tables.memories
            else 0
        )
    if not deleted:
        raise MemoryNotFound(MemoryNotFound.message)


def delete_memories(agent: Agent, user_id: str, memory_ids: Sequence[str]) -> int:
    """Delete all of `memory_ids` or none: every id must be this user's memory in this agent."""
    wanted = set(memory_ids)
    if not wanted:
        return 0
    with reach(agent) as tables:
        if not tables.memories:
            raise ForeignMemories(ForeignMemories.message)
        rows = Memory.objects.filter(memory_id__in=wanted, user_id=user_id)
        owned = set(rows.select_for_update().values_list("memory_id", flat=True))
        if owned != wanted:
            raise ForeignMemories(ForeignMemories.message)
        return rows.delete()[0]


# Users of an agent: registered people and user_ids found in the runtime tables.


@dataclass
class UserRow:
    user_id: str
    registered: EndUser | None = None
    # The registered person this key belongs to under the *other* key kind (email vs id).
    other_kind_match: EndUser | None = None
    memory_count: int = 0
    session_count: int = 0
    last_update: int | None = None
    memory_chars: int = 0
    counted_tokens: int | None = None  # exact, from the token cache (memories.hygiene)

    @property
    def is_unregistered(self) -> bool:
        return self.registered is None

    @property
    def approx_tokens(self) -> int:
        return -(-self.memory_chars // CHARS_PER_TOKEN)


def agent_users(
    agent: Agent, *, after: str | None = None, prefix: str = "", limit: int = PAGE_SIZE
) -> Page[UserRow]:
    """Registered users and runtime user_ids in user_id order, with per-row counts."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    after_key = decode_cursor(after, (str,))[0] if after else None
    by_id = agent.user_id_kind == Agent.UserIdKind.ID
    registered_column = "external_id" if by_id else "email"
    params = {"after": after_key, "prefix": _like_escaped(prefix) + "%", "n": limit + 1}
    with reach(agent) as tables:
        parts = []
        for table, present in (
            ("agno_memories", tables.memories),
            ("agno_sessions", tables.sessions),
        ):
            if present:
                parts.append(
                    f"(SELECT DISTINCT user_id FROM {table} WHERE user_id IS NOT NULL "
                    "AND (%(after)s::text IS NULL OR user_id > %(after)s) "
                    "AND user_id LIKE %(prefix)s ORDER BY user_id LIMIT %(n)s)"
                )
        parts.append(
            f"(SELECT {registered_column} FROM public.memories_enduser "
            f"WHERE {registered_column} <> '' "
            f"AND (%(after)s::text IS NULL OR {registered_column} > %(after)s) "
            f"AND {registered_column} LIKE %(prefix)s ORDER BY 1 LIMIT %(n)s)"
        )
        sql = (
            f"SELECT user_id FROM ({' UNION '.join(parts)}) AS keys(user_id) ORDER BY 1 LIMIT %(n)s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            keys = [row[0] for row in cursor.fetchall()]
            next_cursor = None
            if len(keys) > limit:
                keys = keys[:limit]
                next_cursor = encode_cursor(keys[-1])
            rows = {key: UserRow(key) for key in keys}
            if keys and tables.any:
                _count_for_users(cursor, tables, rows)
    _attach_registered_users(list(rows.values()), by_id=by_id)
    return Page(list(rows.values()), next_cursor)


def user_rows(agent: Agent, user_ids: Sequence[str]) -> list[UserRow]:
    """Rows of the users list for given user_ids, in that order (e.g. the heaviest first)."""
    rows = {key: UserRow(key) for key in user_ids}
    with reach(agent) as tables, connection.cursor() as cursor:
        if rows and tables.any:
            _count_for_users(cursor, tables, rows)
    _attach_registered_users(list(rows.values()), by_id=agent.user_id_kind == Agent.UserIdKind.ID)
    return list(rows.values())


def _count_for_users(cursor: Any, tables: Tables, rows: dict[str, UserRow]) -> None:
    """Memory and session counts for the users on the page only, in one query."""
    memories = (
        "SELECT user_id, count(*) AS n, max(coalesce(updated_at, created_at)) AS last, "
        "sum(char_length(memory #>> '{}')) AS chars FROM agno_memories "
        "WHERE user_id = ANY(%(keys)s) GROUP BY user_id"
        if tables.memories
        else "SELECT NULL::text AS user_id, 0::bigint AS n, NULL::bigint AS last, 0 AS chars"
    )
    sessions = (
        "SELECT user_id, count(*) AS n, max(coalesce(updated_at, created_at)) AS last "
        "FROM agno_sessions WHERE user_id = ANY(%(keys)s) GROUP BY user_id"
        if tables.sessions
        else "SELECT NULL::text AS user_id, 0::bigint AS n, NULL::bigint AS last"
    )
    cursor.execute(
        f"SELECT k.user_id, m.n, m.last, m.chars, s.n, s.last "
        f"FROM unnest(%(keys)s::text[]) AS k(user_id) "
        f"LEFT JOIN ({memories}) AS m USING (user_id) LEFT JOIN ({sessions}) AS s USING (user_id)",
        {"keys": list(rows)},
    )
    for key, memory_count, memory_last, chars, session_count, session_last in cursor.fetchall():
        row = rows[key]
        row.memory_count, row.memory_chars = memory_count or 0, chars or 0
        row.session_count = session_count or 0
        stamps = [stamp for stamp in (memory_last, session_last) if stamp is not None]
        row.last_update = max(stamps) if stamps else None


def _attach_registered_users(rows: list[UserRow], *, by_id: bool) -> None:
    keys = [row.user_id for row in rows]
    if not keys:
        return
    people = list(EndUser.objects.filter(Q(email__in=keys) | Q(external_id__in=keys)))
    by_email = {person.email: person for person in people}
    by_external = {person.external_id: person for person in people if person.external_id}
    expected, other = (by_external, by_email) if by_id else (by_email, by_external)
    for row in rows:
        row.registered = expected.get(row.user_id)
        if row.registered is None:
            row.other_kind_match = other.get(row.user_id)


def registered_user(agent: Agent, user_id: str) -> tuple[EndUser | None, EndUser | None]:
    """The registered person for a user_id, and, failing that, one matched by the other key."""
    row = UserRow(user_id)
    _attach_registered_users([row], by_id=agent.user_id_kind == Agent.UserIdKind.ID)
    return row.registered, row.other_kind_match


# Sessions and runs.


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
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    with reach(agent) as tables:
        if not tables.sessions:
            return Page([])
        rows = RuntimeSession.objects.filter(user_id=user_id).annotate(
            sort_key=RawSQL(SORT_KEYS["updated"], (), BigIntegerField())
        )
        if after:
            last_key, last_id = decode_cursor(after, (int, str))
            condition = f"({SORT_KEYS['updated']}, session_id) < (%s, %s)"
            rows = rows.filter(RawSQL(condition, (last_key, last_id), BooleanField()))
        sessions = list(rows.order_by("-sort_key", "-session_id")[: limit + 1])
        next_cursor = None
        if len(sessions) > limit:
            sessions = sessions[:limit]
            next_cursor = encode_cursor(sessions[-1].sort_key, sessions[-1].session_id)
        result = [SessionRow(s, 0, s.created_at, s.updated_at or s.created_at) for s in sessions]
        if sessions and tables.runs:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT session_id, count(*), min(created_at), "
                    "max(coalesce(updated_at, created_at)) FROM agno_runs "
                    "WHERE session_id = ANY(%s) GROUP BY session_id",
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
    return Page(result, next_cursor)


def session_runs(agent: Agent, session_id: str, limit: int = 500) -> list[Run]:
    with reach(agent) as tables:
        if not tables.runs:
            return []
        return list(
            Run.objects.filter(session_id=session_id).order_by("run_index", "created_at")[:limit]
        )


# The agents list: how much each agent holds, exact when small, estimated at scale.


@dataclass(frozen=True)
class AgentOverview:
    tables: Tables
    memory_count: int = 0
    user_count: int = 0
    last_update: int | None = None
    estimated: bool = False


def agent_overview(agent: Agent) -> AgentOverview:
    with reach(agent) as tables:
        if not tables.memories:
            return AgentOverview(tables)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = 'agno_memories'::regclass"
            )
            planner_rows = cursor.fetchone()[0]
            if planner_rows < EXACT_COUNT_LIMIT:
                cursor.execute(
                    "SELECT count(*), count(DISTINCT user_id), "
                    "max(coalesce(updated_at, created_at)) FROM agno_memories"
                )
                memories, users, last = cursor.fetchone()
                return AgentOverview(tables, memories, users, last)
            # At scale, the planner's statistics: exact counts would scan a million rows.
            cursor.execute(
                "SELECT (SELECT max(updated_at) FROM agno_memories), "
                "(SELECT n_distinct FROM pg_stats WHERE schemaname = %s "
                " AND tablename = 'agno_memories' AND attname = 'user_id')",
                [tables.schema],
            )
            last, n_distinct = cursor.fetchone()
    users = int(n_distinct if n_distinct and n_distinct > 0 else -(n_distinct or 0) * planner_rows)
    return AgentOverview(tables, planner_rows, users, last, estimated=True)


def get_session(agent: Agent, session_id: str) -> RuntimeSession | None:
    with reach(agent) as tables:
        if not tables.sessions:
            return None
        return RuntimeSession.objects.filter(session_id=session_id).first()


def delete_session(agent: Agent, session_id: str) -> tuple[str | None, int]:
    """Delete a session; its runs go with it (the runtime's foreign key cascades)."""
    with reach(agent) as tables:
        session = (
            RuntimeSession.objects.select_for_update().filter(session_id=session_id).first()
            if tables.sessions
            else None
        )
        if session is None:
            raise SessionNotFound(SessionNotFound.message)
        runs = Run.objects.filter(session_id=session_id).count() if tables.runs else 0
        RuntimeSession.objects.filter(session_id=session_id).delete()
    return session.user_id, runs


class SessionNotFound(RuntimeAccessError):
    message = "This session no longer exists: it was deleted, or belongs to another agent."


# Forgetting a person: every memory, session and run under one user_id.


@dataclass(frozen=True)
class UserFootprint:
    memories: int = 0
    sessions: int = 0
    runs: int = 0

    @property
    def total(self) -> int:
        return self.memories + self.sessions + self.runs


def user_footprint(agent: Agent, user_id: str) -> UserFootprint:
    with reach(agent) as tables:
        parts = [
            "(SELECT count(*) FROM agno_memories WHERE user_id = %(u)s)"
            if tables.memories
            else "0",
            "(SELECT count(*) FROM agno_sessions WHERE user_id = %(u)s)"
            if tables.sessions
            else "0",
            "(SELECT count(*) FROM agno_runs WHERE user_id = %(u)s OR session_id IN "
            "(SELECT session_id FROM agno_sessions WHERE user_id = %(u)s))"
            if tables.runs and tables.sessions
            else "0",
        ]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(parts)}", {"u": user_id})
            return UserFootprint(*cursor.fetchone())


def forget_user(agent: Agent, user_id: str) -> UserFootprint:
    """Erase every memory, session and run of `user_id` in one agent, in one transaction."""
    with reach(agent) as tables:
        footprint = user_footprint(agent, user_id)
        with connection.cursor() as cursor:
            if tables.runs:
                cursor.execute("DELETE FROM agno_runs WHERE user_id = %s", [user_id])
            if tables.sessions:
                # Runs of these sessions written without a user_id go by the foreign key.
                cursor.execute("DELETE FROM agno_sessions WHERE user_id = %s", [user_id])
            if tables.memories:
                cursor.execute("DELETE FROM agno_memories WHERE user_id = %s", [user_id])
    return footprint


# Export and import in the runtime's own field names.

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


def iter_memories_for_export(
    agent: Agent, user_id: str | None = None, chunk: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every memory of an agent (or one user) as runtime-shaped dicts, in memory_id chunks."""
    after = ""
    while True:
        with reach(agent) as tables:
            if not tables.memories:
                return
            rows = Memory.objects.filter(memory_id__gt=after)
            if user_id is not None:
                rows = rows.filter(user_id=user_id)
            batch = list(rows.order_by("memory_id")[:chunk])
        for memory in batch:
            yield {name: getattr(memory, name) for name in EXPORT_FIELDS}
        if len(batch) < chunk:
            return
        after = batch[-1].memory_id


def upsert_imported_memories(agent: Agent, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Insert or update validated rows by memory_id; returns (added, updated). One transaction."""
    added = updated = 0
    if not rows:
        return 0, 0
    with reach(agent) as tables:
        if not tables.memories:
            ensure_runtime_tables(tables.schema)
        existing = {
            m.memory_id: m
            for m in Memory.objects.select_for_update().filter(
                memory_id__in=[row["memory_id"] for row in rows]
            )
        }
        now = int(time.time())
        fresh = []
        for row in rows:
            current = existing.get(row["memory_id"])
            if current is None:
                fresh.append(
                    Memory(
                        memory_id=row["memory_id"],
                        memory=row["memory"],
                        topics=row["topics"] or None,
                        input=row["input"] or None,
                        feedback=row.get("feedback") or None,
                        agent_id=row.get("agent_id") or None,
                        team_id=row.get("team_id") or None,
                        user_id=row["user_id"],
                        created_at=row.get("created_at") or now,
                        updated_at=row.get("updated_at") or row.get("created_at") or now,
                    )
                )
            elif (current.memory, current.topic_list, current.input or "") != (
                row["memory"],
                row["topics"],
                row["input"] or "",
            ):
                Memory.objects.filter(memory_id=current.memory_id).update(
                    memory=row["memory"],
                    topics=_topics_value(row["topics"]),
                    input=row["input"] or None,
                    updated_at=now,
                )
                updated += 1
        for memory in fresh:
            if not memory.topics:
                memory.topics = _topics_value([])
        Memory.objects.bulk_create(fresh)
        added = len(fresh)
    return added, updated


def memory_owners(agent: Agent, memory_ids: Sequence[str]) -> dict[str, str | None]:
    with reach(agent) as tables:
        if not tables.memories or not memory_ids:
            return {}
        return dict(
            Memory.objects.filter(memory_id__in=list(memory_ids)).values_list(
                "memory_id", "user_id"
            )
        )


# Hygiene: the context block, prunes and the sensitive scan read the runtime through these.


def memories_for_context(agent: Agent, user_id: str) -> list[str]:
    """A user's memory texts in the order agno reads them (its query has no ORDER BY, so
    Postgres returns them in physical order; ctid makes that explicit)."""
    with reach(agent) as tables:
        if not tables.memories:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT memory #>> '{}' FROM agno_memories WHERE user_id = %s ORDER BY ctid",
                [user_id],
            )
            return [row[0] for row in cursor.fetchall()]


def memories_by_id(agent: Agent, memory_ids: Sequence[str]) -> dict[str, Memory]:
    with reach(agent) as tables:
        if not tables.memories or not memory_ids:
            return {}
        return {m.memory_id: m for m in Memory.objects.filter(memory_id__in=list(memory_ids))}


def memories_after(agent: Agent, after: str, limit: int) -> list[Memory]:
    """The next memories in memory_id order: how agent-wide scans walk a big table."""
    with reach(agent) as tables:
        if not tables.memories:
            return []
        return list(Memory.objects.filter(memory_id__gt=after).order_by("memory_id")[:limit])


def user_memories_all(agent: Agent, user_id: str, cap: int = 20_000) -> list[Memory]:
    with reach(agent) as tables:
        if not tables.memories:
            return []
        return list(Memory.objects.filter(user_id=user_id).order_by("memory_id")[:cap])


def delete_memories_anywhere(agent: Agent, memory_ids: Sequence[str]) -> list[tuple[str, str]]:
    """Delete memories of any users by id; returns (memory_id, user_id) of those deleted."""
    with reach(agent) as tables:
        if not tables.memories or not memory_ids:
            return []
        rows = Memory.objects.filter(memory_id__in=list(memory_ids))
        deleted = list(rows.values_list("memory_id", "user_id"))
        rows.delete()
        return deleted


def memories_created_per_day(agent: Agent, days: int = 90) -> list[tuple[int, int]]:
    """(day as epoch seconds at 00:00 UTC, memories created) for the last `days` days."""
    since = (int(time.time()) // 86_400 - days + 1) * 86_400
    with reach(agent) as tables:
        if not tables.memories:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT created_at / 86400 * 86400 AS day, count(*) FROM agno_memories "
                "WHERE created_at >= %s GROUP BY 1 ORDER BY 1",
                [since],
            )
            return list(cursor.fetchall())
