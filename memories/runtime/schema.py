"""The Agno runtime's tables for one agent schema: the exact DDL, and whether a schema has it.

The DDL is shared/agno-runtime-schema.sql as agno 3.1.10 creates it (PostgresDb with
db_schema=...), so a later PostgresDb on a schema we created finds its own tables. The
interop tests compare both under pg_dump --schema-only. Names go into SQL only after
`validate_schema_name`, and always double-quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from agents.models import validate_schema_name

# agno writes this into agno_schema_versions for each table it creates (MigrationManager).
RUNTIME_SCHEMA_VERSION = "3.0.0"

RUNTIME_TABLES = ("agno_memories", "agno_sessions", "agno_runs", "agno_schema_versions")

_DDL = """
CREATE TABLE IF NOT EXISTS {s}.agno_memories (
    memory_id character varying NOT NULL,
    memory jsonb NOT NULL,
    feedback text,
    input text,
    agent_id character varying,
    team_id character varying,
    user_id character varying,
    topics jsonb,
    created_at bigint NOT NULL,
    updated_at bigint,
    CONSTRAINT agno_memories_pkey PRIMARY KEY (memory_id)
);
CREATE INDEX IF NOT EXISTS idx_agno_memories_created_at ON {s}.agno_memories USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_agno_memories_updated_at ON {s}.agno_memories USING btree (updated_at);
CREATE INDEX IF NOT EXISTS idx_agno_memories_user_id ON {s}.agno_memories USING btree (user_id);
CREATE TABLE IF NOT EXISTS {s}.agno_sessions (
    session_id character varying NOT NULL,
    session_type character varying NOT NULL,
    agent_id character varying,
    team_id character varying,
    workflow_id character varying,
    user_id character varying,
    session_data jsonb,
    agent_data jsonb,
    team_data jsonb,
    workflow_data jsonb,
    metadata jsonb,
    summary jsonb,
    created_at bigint NOT NULL,
    updated_at bigint,
    CONSTRAINT agno_sessions_pkey PRIMARY KEY (session_id)
);
CREATE INDEX IF NOT EXISTS idx_agno_sessions_created_at ON {s}.agno_sessions USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_agno_sessions_session_type ON {s}.agno_sessions USING btree (session_type);
CREATE TABLE IF NOT EXISTS {s}.agno_runs (
    run_id character varying NOT NULL,
    session_id character varying NOT NULL,
    run_type character varying NOT NULL,
    agent_id character varying,
    team_id character varying,
    workflow_id character varying,
    user_id character varying,
    parent_run_id character varying,
    status character varying,
    run_index bigint,
    run_data jsonb NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint,
    CONSTRAINT agno_runs_pkey PRIMARY KEY (run_id),
    CONSTRAINT agno_runs_session_id_fkey FOREIGN KEY (session_id)
        REFERENCES {s}.agno_sessions(session_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_agno_runs_agent_id ON {s}.agno_runs USING btree (agent_id);
CREATE INDEX IF NOT EXISTS idx_agno_runs_created_at ON {s}.agno_runs USING btree (created_at);
CREATE INDEX IF NOT EXISTS idx_agno_runs_run_type ON {s}.agno_runs USING btree (run_type);
CREATE INDEX IF NOT EXISTS idx_agno_runs_session_id ON {s}.agno_runs USING btree (session_id);
CREATE INDEX IF NOT EXISTS idx_agno_runs_session_id_run_index ON {s}.agno_runs USING btree (session_id, run_index);
CREATE INDEX IF NOT EXISTS idx_agno_runs_status ON {s}.agno_runs USING btree (status);
CREATE INDEX IF NOT EXISTS idx_agno_runs_team_id ON {s}.agno_runs USING btree (team_id);
CREATE INDEX IF NOT EXISTS idx_agno_runs_user_id ON {s}.agno_runs USING btree (user_id);
CREATE INDEX IF NOT EXISTS idx_agno_runs_workflow_id ON {s}.agno_runs USING btree (workflow_id);
CREATE TABLE IF NOT EXISTS {s}.agno_schema_versions (
    table_name character varying NOT NULL,
    version character varying NOT NULL,
    created_at character varying NOT NULL,
    updated_at character varying,
    CONSTRAINT agno_schema_versions_pkey PRIMARY KEY (table_name)
);
CREATE INDEX IF NOT EXISTS idx_agno_schema_versions_created_at ON {s}.agno_schema_versions USING btree (created_at);
"""

# The columns each page needs, with Postgres' data_type names, to tell "ready" from "drifted".
EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    "agno_memories": {
        "memory_id": "character varying",
        "memory": "jsonb",
        "feedback": "text",
        "input": "text",
        "agent_id": "character varying",
        "team_id": "character varying",
        "user_id": "character varying",
        "topics": "jsonb",
        "created_at": "bigint",
        "updated_at": "bigint",
    },
    "agno_sessions": {
        "session_id": "character varying",
        "session_type": "character varying",
        "agent_id": "character varying",
        "user_id": "character varying",
        "session_data": "jsonb",
        "summary": "jsonb",
        "created_at": "bigint",
        "updated_at": "bigint",
    },
    "agno_runs": {
        "run_id": "character varying",
        "session_id": "character varying",
        "run_type": "character varying",
        "user_id": "character varying",
        "status": "character varying",
        "run_index": "bigint",
        "run_data": "jsonb",
        "created_at": "bigint",
        "updated_at": "bigint",
    },
}


def quoted_schema(schema: str) -> str:
    validate_schema_name(schema)
    return f'"{schema}"'


def ensure_runtime_tables(schema: str) -> bool:
    """Create the runtime's tables in `schema` exactly as agno would; True if anything was new."""
    quoted = quoted_schema(schema)
    with transaction.atomic(), connection.cursor() as cursor:
        # Two operators adding the first memory at once must not race on CREATE TABLE.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('memory_studio.ddl'), hashtext(%s))", [schema]
        )
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = ANY(%s)",
            [schema, list(RUNTIME_TABLES)],
        )
        existing = cursor.fetchone()[0]
        if existing == len(RUNTIME_TABLES):
            return False
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        cursor.execute(_DDL.format(s=quoted))
        # agno stores naive local ISO timestamps here; the version is what its migrations read.
        now = datetime.now().isoformat()
        for table in ("agno_memories", "agno_sessions", "agno_runs"):
            cursor.execute(
                f"INSERT INTO {quoted}.agno_schema_versions "
                "(table_name, version, created_at, updated_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (table_name) DO NOTHING",
                [table, RUNTIME_SCHEMA_VERSION, now, now],
            )
        return True


@dataclass(frozen=True)
class SchemaState:
    schema: str
    status: str  # "missing" (agent never ran), "partial", "ready" or "drifted"
    missing_tables: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_usable(self) -> bool:
        return self.status in ("ready", "partial")


def schema_state(schema: str) -> SchemaState:
    """Compare a schema's runtime tables with what the pages need, naming what is off."""
    validate_schema_name(schema)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = ANY(%s)",
            [schema, list(EXPECTED_COLUMNS)],
        )
        found: dict[str, dict[str, str]] = {}
        for table, column, data_type in cursor.fetchall():
            found.setdefault(table, {})[column] = data_type
    if not found:
        return SchemaState(schema, "missing", tuple(EXPECTED_COLUMNS))
    problems = []
    for table, columns in EXPECTED_COLUMNS.items():
        if table not in found:
            continue
        for column, data_type in columns.items():
            actual = found[table].get(column)
            if actual is None:
                problems.append(f"{schema}.{table} has no column {column}")
            elif actual != data_type:
                problems.append(
                    f"{schema}.{table}.{column} is {actual}, the runtime writes {data_type}"
                )
    missing = tuple(t for t in EXPECTED_COLUMNS if t not in found)
    if problems:
        return SchemaState(schema, "drifted", missing, tuple(problems))
    return SchemaState(schema, "partial" if missing else "ready", missing)
