"""Our additive indexes: idempotent, concurrent, no column changed, agno unaffected."""

from __future__ import annotations

import pytest
from agno.db.schemas.memory import UserMemory
from agno.session import AgentSession
from django.core.management import call_command
from django.db import connection

from memories import runtime
from memories.runtime.indexes import INDEXES, drop_runtime_indexes, ensure_runtime_indexes
from memories.runtime.memories import insert_memory
from tests.test_runtime_interop import _dump_schema

pytestmark = pytest.mark.django_db(transaction=True)


def index_names(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_indexes_are_added_once_and_change_no_column(agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory="Renewal is in November.", user_id="ann"))
    # Only memories exist yet: the sessions indexes wait for their table.
    assert all("sessions" not in name for name in ensure_runtime_indexes(agent.db_schema))
    drop_runtime_indexes(agent.db_schema)
    agno.upsert_session(AgentSession(session_id="s", agent_id="a", user_id="ann", created_at=1))
    before = [line for line in _dump_schema(agent.db_schema) if "INDEX" not in line]
    runtime_own = index_names(agent.db_schema)
    assert sorted(ensure_runtime_indexes(agent.db_schema)) == sorted(i.name for i in INDEXES)
    assert ensure_runtime_indexes(agent.db_schema) == []
    call_command("runtime_indexes", "--agent", agent.slug)
    assert index_names(agent.db_schema) == runtime_own | {i.name for i in INDEXES}
    after = [line for line in _dump_schema(agent.db_schema) if "INDEX" not in line]
    assert after == before  # tables, columns and constraints are the runtime's, untouched
    agno.upsert_user_memory(UserMemory(memory="Still works.", user_id="ann"))
    assert [m.text for m in runtime.user_memories(agent, "ann", search="november").items] == [
        "Renewal is in November."
    ]
    drop_runtime_indexes(agent.db_schema)
    assert index_names(agent.db_schema) == runtime_own


def test_an_index_left_invalid_is_rebuilt(agent):
    insert_memory(agent, "ann", text="x", topics=[])
    ensure_runtime_indexes(agent.db_schema)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
            [f'"{agent.db_schema}".idx_ms_memories_recent'],
        )
    assert ensure_runtime_indexes(agent.db_schema) == ["idx_ms_memories_recent"]
