"""Finding agents in a runtime connection: schemas holding agno's tables, known by their columns.

Table names are not trusted (PostgresDb may rename them); a memory table is any table with the
memory columns agno writes, and so on for sessions and runs. Agent Studio names an agent's
schema `ag_<agent id with "-" as "_">`; that id is shown when the name follows the pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections

from agents.models import (
    DEFAULT_MEMORY_TABLE,
    DEFAULT_RUNS_TABLE,
    DEFAULT_SESSION_TABLE,
    SCHEMA_NAME_PATTERN,
    TABLE_NAME_PATTERN,
    Agent,
)
from memories.runtime.location import RuntimeConnectionMissing
from memories.runtime.overview import EXACT_COUNT_LIMIT

ROLE_COLUMNS = {
    "memories": {"memory_id", "memory", "topics", "user_id", "created_at", "updated_at"},
    "sessions": {"session_id", "session_type", "session_data", "user_id", "created_at"},
    "runs": {"run_id", "session_id", "run_type", "run_data", "created_at"},
}
DEFAULT_NAMES = {
    "memories": DEFAULT_MEMORY_TABLE,
    "sessions": DEFAULT_SESSION_TABLE,
    "runs": DEFAULT_RUNS_TABLE,
}
AGENT_STUDIO_SCHEMA = re.compile(r"^ag_([a-z0-9_]+)$")


@dataclass
class FoundSchema:
    connection: str
    schema: str
    tables: dict[str, str] = field(default_factory=dict)  # role -> table name
    memories: int = 0
    users: int = 0
    sessions: int = 0
    last_write: int | None = None
    estimated: bool = False
    registered: Agent | None = None

    @property
    def agent_studio_id(self) -> str:
        """Agent Studio's agent id, read back from its `ag_…` schema name ("" if not one)."""
        match = AGENT_STUDIO_SCHEMA.fullmatch(self.schema)
        return match.group(1).replace("_", "-") if match else ""

    @property
    def renamed_tables(self) -> dict[str, str]:
        return {role: name for role, name in self.tables.items() if name != DEFAULT_NAMES[role]}

    @property
    def runs_follow_sessions(self) -> bool:
        sessions, runs = self.tables.get("sessions"), self.tables.get("runs")
        return bool(sessions and runs and runs == f"{sessions}_runs")


def discover_schemas(connection_name: str) -> list[FoundSchema]:
    """Every schema of a runtime connection that holds an agno memory or session table."""
    connection = settings.RUNTIME_CONNECTIONS.get(connection_name)
    if connection is None:
        raise RuntimeConnectionMissing(connection_name)
    with connections[connection.alias].cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name, array_agg(column_name::text) "
            "FROM information_schema.columns "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND table_schema NOT LIKE 'pg\\_%%' GROUP BY 1, 2 ORDER BY 1, 2"
        )
        columns = cursor.fetchall()
        found: dict[str, FoundSchema] = {}
        for schema, table, names in columns:
            if not SCHEMA_NAME_PATTERN.fullmatch(schema) or not TABLE_NAME_PATTERN.fullmatch(table):
                continue  # a name the dashboard could not quote safely is left alone
            for role, wanted in ROLE_COLUMNS.items():
                if wanted <= set(names):
                    entry = found.setdefault(schema, FoundSchema(connection_name, schema))
                    # Two candidates: agno's default name wins, then the first by name.
                    if role not in entry.tables or table == DEFAULT_NAMES[role]:
                        entry.tables[role] = table
        schemas = [s for s in found.values() if {"memories", "sessions"} & set(s.tables)]
        for entry in schemas:
            _count(cursor, entry)
    registered = {
        agent.db_schema: agent
        for agent in Agent.objects.filter(
            connection=connection_name, db_schema__in=[s.schema for s in schemas]
        )
    }
    for entry in schemas:
        entry.registered = registered.get(entry.schema)
    return schemas


def _count(cursor, entry: FoundSchema) -> None:  # noqa: ANN001 - a DB-API cursor
    """Memories, users and sessions, exact when small, the planner's estimate at scale."""
    stamps = []
    memory_table = entry.tables.get("memories")
    if memory_table:
        qualified = f'"{entry.schema}"."{memory_table}"'
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [qualified]
        )
        estimate = cursor.fetchone()[0]
        if estimate < EXACT_COUNT_LIMIT:
            cursor.execute(
                f"SELECT count(*), count(DISTINCT user_id), "
                f"max(coalesce(updated_at, created_at)) FROM {qualified}"
            )
            entry.memories, entry.users, last = cursor.fetchone()
        else:
            cursor.execute(f"SELECT max(updated_at) FROM {qualified}")
            entry.memories, entry.estimated, last = estimate, True, cursor.fetchone()[0]
        stamps.append(last)
    session_table = entry.tables.get("sessions")
    if session_table:
        qualified = f'"{entry.schema}"."{session_table}"'
        cursor.execute(f"SELECT count(*), max(coalesce(updated_at, created_at)) FROM {qualified}")
        entry.sessions, last = cursor.fetchone()
        stamps.append(last)
    stamps = [s for s in stamps if s is not None]
    entry.last_write = max(stamps) if stamps else None
