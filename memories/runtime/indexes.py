"""Additive indexes on the runtime's tables that the dashboard's pages need.

The runtime leaves agno_sessions.user_id unindexed and has nothing for the dashboard's sort
orders or for text search. These indexes change no column and no behaviour of the runtime;
they are built CONCURRENTLY so writers are never blocked, and the command is idempotent
(an index left INVALID by an interrupted build is dropped and built again).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.models import Agent
from memories.runtime.location import Location, location_of
from memories.runtime.memories import SORT_KEYS
from memories.runtime.schema import quoted_schema


@dataclass(frozen=True)
class RuntimeIndex:
    name: str
    table: str  # the runtime table's role: the agent's PostgresDb may rename it
    definition: str  # what follows ON <schema>.<table>
    why: str


INDEXES = (
    RuntimeIndex(
        "idx_ms_memories_user_recent_s",
        "memories",
        f"USING btree (user_id, {SORT_KEYS['updated']} DESC, memory_id DESC)",
        "a user's memories, most recently updated first (keyset pages)",
    ),
    RuntimeIndex(
        "idx_ms_memories_user_created_s",
        "memories",
        f"USING btree (user_id, {SORT_KEYS['created']} DESC, memory_id DESC)",
        "a user's memories by creation time",
    ),
    RuntimeIndex(
        "idx_ms_memories_recent_s",
        "memories",
        f"USING btree ({SORT_KEYS['updated']} DESC, memory_id DESC)",
        "agent-wide lists, newest first",
    ),
    RuntimeIndex(
        "idx_ms_memories_user_pattern",
        "memories",
        "USING btree (user_id text_pattern_ops)",
        "users list: search by the beginning of a user_id",
    ),
    RuntimeIndex(
        "idx_ms_memories_topics",
        "memories",
        "USING gin (topics jsonb_path_ops)",
        "topic filter, fast even when few or none of a user's memories carry the topic",
    ),
    RuntimeIndex(
        "idx_ms_memories_text_trgm",
        "memories",
        "USING gin ((memory #>> '{}') {trgm}.gin_trgm_ops)",
        "search in memory text (ILIKE '%…%')",
    ),
    RuntimeIndex(
        "idx_ms_sessions_user_recent_s",
        "sessions",
        f"USING btree (user_id, {SORT_KEYS['updated']} DESC, session_id DESC)",
        "a user's sessions, newest first; the runtime leaves user_id unindexed",
    ),
    RuntimeIndex(
        "idx_ms_sessions_user_pattern",
        "sessions",
        "USING btree (user_id text_pattern_ops)",
        "users list: search by the beginning of a user_id",
    ),
)


# Earlier versions of the indexes above (sorting milliseconds as seconds): dropped when found.
RETIRED = (
    "idx_ms_memories_user_recent",
    "idx_ms_memories_user_created",
    "idx_ms_memories_recent",
    "idx_ms_sessions_user_recent",
)


def _trigram_schema(cursor) -> str:
    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    cursor.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    return f'"{cursor.fetchone()[0]}"'


def ensure_runtime_indexes(
    target: Location | Agent | str, *, concurrently: bool = True
) -> list[str]:
    """Create what is missing; returns the names of the indexes built now."""
    location = target if isinstance(target, Location) else location_of(target)
    schema, connection = location.schema, location.connection
    quoted = quoted_schema(schema)
    built = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
            [schema],
        )
        existing = dict(cursor.fetchall())
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        )
        tables = {row[0] for row in cursor.fetchall()}
        trgm = _trigram_schema(cursor)
        how = "CONCURRENTLY " if concurrently and not connection.in_atomic_block else ""
        for index in INDEXES:
            table = getattr(location.names, index.table)
            if table not in tables:
                continue
            if existing.get(index.name) is True:
                continue
            if index.name in existing:  # left INVALID by an interrupted concurrent build
                cursor.execute(f'DROP INDEX {how}IF EXISTS {quoted}."{index.name}"')
            definition = index.definition.replace("{trgm}", trgm)
            cursor.execute(
                f'CREATE INDEX {how}IF NOT EXISTS "{index.name}" ON {quoted}."{table}" {definition}'
            )
            built.append(index.name)
        for name in RETIRED:
            if name in existing:
                cursor.execute(f'DROP INDEX {how}IF EXISTS {quoted}."{name}"')
    return built


def drop_runtime_indexes(target: Location | Agent | str) -> None:
    """Only the indexes this module adds; the runtime's own are never touched."""
    location = target if isinstance(target, Location) else location_of(target)
    quoted = quoted_schema(location.schema)
    with location.connection.cursor() as cursor:
        for name in [index.name for index in INDEXES] + list(RETIRED):
            cursor.execute(f'DROP INDEX IF EXISTS {quoted}."{name}"')
