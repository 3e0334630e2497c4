"""The Agno runtime's tables for one agent schema: the exact DDL, and whether a schema has it.

The DDL is shared/agno-runtime-schema.sql as agno 3.1.10 creates it (PostgresDb with
db_schema=... and, when the agent renames them, memory_table/session_table/runs_table), so a later PostgresDb on a schema we created finds its own tables. The
interop tests compare both under pg_dump --schema-only. Names go into SQL only after
`validate_schema_name`, and always double-quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from agents.models import Agent, validate_schema_name
from memories.runtime.location import Location, location_of, tables_created

# agno writes this into agno_schema_versions for each table it creates (MigrationManager).
RUNTIME_SCHEMA_VERSION = "3.0.0"


_DDL = """
CREATE TABLE IF NOT EXISTS {s}."{m}" (
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
    CONSTRAINT "{m}_pkey" PRIMARY KEY (memory_id)
);
CREATE INDEX IF NOT EXISTS "idx_{m}_created_at" ON {s}."{m}" USING btree (created_at);
CREATE INDEX IF NOT EXISTS "idx_{m}_updated_at" ON {s}."{m}" USING btree (updated_at);
CREATE INDEX IF NOT EXISTS "idx_{m}_user_id" ON {s}."{m}" USING btree (user_id);
CREATE TABLE IF NOT EXISTS {s}."{se}" (
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
    CONSTRAINT "{se}_pkey" PRIMARY KEY (session_id)
);
CREATE INDEX IF NOT EXISTS "idx_{se}_created_at" ON {s}."{se}" USING btree (created_at);
CREATE INDEX IF NOT EXISTS "idx_{se}_session_type" ON {s}."{se}" USING btree (session_type);
CREATE TABLE IF NOT EXISTS {s}."{r}" (
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
    CONSTRAINT "{r}_pkey" PRIMARY KEY (run_id),
    CONSTRAINT "{r}_session_id_fkey" FOREIGN KEY (session_id)
        REFERENCES {s}."{se}"(session_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_{r}_agent_id" ON {s}."{r}" USING btree (agent_id);
CREATE INDEX IF NOT EXISTS "idx_{r}_created_at" ON {s}."{r}" USING btree (created_at);
CREATE INDEX IF NOT EXISTS "idx_{r}_run_type" ON {s}."{r}" USING btree (run_type);
CREATE INDEX IF NOT EXISTS "idx_{r}_session_id" ON {s}."{r}" USING btree (session_id);
CREATE INDEX IF NOT EXISTS "idx_{r}_session_id_run_index" ON {s}."{r}" USING btree (session_id, run_index);
CREATE INDEX IF NOT EXISTS "idx_{r}_status" ON {s}."{r}" USING btree (status);
CREATE INDEX IF NOT EXISTS "idx_{r}_team_id" ON {s}."{r}" USING btree (team_id);
CREATE INDEX IF NOT EXISTS "idx_{r}_user_id" ON {s}."{r}" USING btree (user_id);
CREATE INDEX IF NOT EXISTS "idx_{r}_workflow_id" ON {s}."{r}" USING btree (workflow_id);
CREATE TABLE IF NOT EXISTS {s}."{v}" (
    table_name character varying NOT NULL,
    version character varying NOT NULL,
    created_at character varying NOT NULL,
    updated_at character varying,
    CONSTRAINT "{v}_pkey" PRIMARY KEY (table_name)
);
CREATE INDEX IF NOT EXISTS "idx_{v}_created_at" ON {s}."{v}" USING btree (created_at);
"""

# The columns each page needs, with Postgres' data_type names, to tell "ready" from "drifted".
EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    "memories": {
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
    "sessions": {
        "session_id": "character varying",
        "session_type": "character varying",
        "agent_id": "character varying",
        "user_id": "character varying",
        "session_data": "jsonb",
        "summary": "jsonb",
        "created_at": "bigint",
        "updated_at": "bigint",
    },
    "runs": {
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


def ensure_runtime_tables(target: Location | Agent | str) -> bool:
    """Create the runtime's tables where the agent's PostgresDb would, exactly as agno would
    (its table names included); True if anything was new."""
    location = target if isinstance(target, Location) else location_of(target)
    names = location.names
    quoted = quoted_schema(location.schema)
    wanted = [names.memories, names.sessions, names.runs, names.versions]
    with transaction.atomic(using=location.alias), location.connection.cursor() as cursor:
        # Two operators adding the first memory at once must not race on CREATE TABLE.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('memory_studio.ddl'), hashtext(%s))",
            [location.schema],
        )
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = ANY(%s)",
            [location.schema, wanted],
        )
        existing = cursor.fetchone()[0]
        if existing == len(wanted):
            return False
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        cursor.execute(
            _DDL.format(
                s=quoted, m=names.memories, se=names.sessions, r=names.runs, v=names.versions
            )
        )
        # agno stores naive local ISO timestamps here; the version is what its migrations read.
        now = datetime.now().isoformat()
        for table in (names.memories, names.sessions, names.runs):
            cursor.execute(
                f'INSERT INTO {quoted}."{names.versions}" '
                "(table_name, version, created_at, updated_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (table_name) DO NOTHING",
                [table, RUNTIME_SCHEMA_VERSION, now, now],
            )
    tables_created(location)
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


def schema_state(target: Location | Agent | str) -> SchemaState:
    """Compare an agent's runtime tables with what the pages need, naming what is off."""
    location = target if isinstance(target, Location) else location_of(target)
    schema = location.schema
    by_name = {getattr(location.names, role): role for role in EXPECTED_COLUMNS}
    with location.connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = ANY(%s)",
            [schema, list(by_name)],
        )
        found: dict[str, dict[str, str]] = {}
        for table, column, data_type in cursor.fetchall():
            found.setdefault(by_name[table], {})[column] = data_type
    expected_names = tuple(getattr(location.names, role) for role in EXPECTED_COLUMNS)
    if not found:
        return SchemaState(schema, "missing", expected_names)
    problems = []
    for role, columns in EXPECTED_COLUMNS.items():
        if role not in found:
            continue
        table = getattr(location.names, role)
        for column, data_type in columns.items():
            actual = found[role].get(column)
            if actual is None:
                problems.append(f"{schema}.{table} has no column {column}")
            elif actual != data_type:
                problems.append(
                    f"{schema}.{table}.{column} is {actual}, the runtime writes {data_type}"
                )
    missing = tuple(getattr(location.names, r) for r in EXPECTED_COLUMNS if r not in found)
    if problems:
        return SchemaState(schema, "drifted", missing, tuple(problems))
    return SchemaState(schema, "partial" if missing else "ready", missing)
