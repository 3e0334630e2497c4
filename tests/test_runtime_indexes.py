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


def without_indexes(dump: list[str]) -> list[str]:
    """The schema's statements other than CREATE INDEX (whose expressions span lines)."""
    statements = " ".join(dump).split(";")
    return [statement for statement in statements if "CREATE INDEX" not in statement]


def test_indexes_are_added_once_and_change_no_column(agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory="Renewal is in November.", user_id="ann"))
    # Only memories exist yet: the sessions indexes wait for their table.
    assert all("sessions" not in name for name in ensure_runtime_indexes(agent.db_schema))
    drop_runtime_indexes(agent.db_schema)
    agno.upsert_session(AgentSession(session_id="s", agent_id="a", user_id="ann", created_at=1))
    before = without_indexes(_dump_schema(agent.db_schema))
    runtime_own = index_names(agent.db_schema)
    assert sorted(ensure_runtime_indexes(agent.db_schema)) == sorted(i.name for i in INDEXES)
    assert ensure_runtime_indexes(agent.db_schema) == []
    call_command("runtime_indexes", "--agent", agent.slug)
    assert index_names(agent.db_schema) == runtime_own | {i.name for i in INDEXES}
    after = without_indexes(_dump_schema(agent.db_schema))
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
            [f'"{agent.db_schema}".idx_ms_memories_recent_s'],
        )
    assert ensure_runtime_indexes(agent.db_schema) == ["idx_ms_memories_recent_s"]


def test_milliseconds_sort_by_the_moment_they_name_through_the_indexes(
    agent, agno_db_for, editor_client
):
    import time

    from django.urls import reverse

    from memories.runtime.memories import SORT_KEYS

    now = int(time.time())
    agno = agno_db_for(agent)
    # agno keeps the times it is given: one row in milliseconds (a day old), one an hour old.
    for memory_id, stamp in (("in-ms", (now - 86_400) * 1000), ("in-s", now - 3600)):
        agno.upsert_user_memory(
            UserMemory(memory_id=memory_id, memory=memory_id, user_id="ann", updated_at=stamp)
        )
    assert agno.get_user_memory("in-ms").updated_at == (now - 86_400) * 1000
    ensure_runtime_indexes(agent.db_schema)
    with connection.cursor() as cursor:  # a table this small would be scanned, not indexed
        cursor.execute(f'ANALYZE "{agent.db_schema}".agno_memories')
    # Newest first: the hour-old memory leads; the millisecond one follows, as a day old.
    assert [m.memory_id for m in runtime.user_memories(agent, "ann").items] == ["in-s", "in-ms"]
    assert [m.memory_id for m in runtime.recent_memories(agent)] == ["in-s", "in-ms"]
    oldest = runtime.user_memories(agent, "ann", sort="updated").items
    assert [m.memory_id for m in oldest] == ["in-ms", "in-s"]
    html = editor_client.get(reverse("memories:user", args=[agent.slug]), {"user_id": "ann"})
    assert "stored in milliseconds" in html.content.decode()
    # The planner serves both orders from an index built on the very same expression (with two
    # rows it may pick either of them), never by sorting.
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        for sql, index in (
            (
                f"SELECT memory_id FROM \"{agent.db_schema}\".agno_memories WHERE user_id = 'ann' "
                f"ORDER BY {SORT_KEYS['updated']} DESC, memory_id DESC LIMIT 25",
                "idx_ms_memories_user_recent_s",
            ),
            (
                f'SELECT memory_id FROM "{agent.db_schema}".agno_memories '
                f"ORDER BY {SORT_KEYS['updated']} DESC, memory_id DESC LIMIT 10",
                "idx_ms_memories_recent_s",
            ),
        ):
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            used = {i.name for i in INDEXES if f"using {i.name} " in plan.lower()}
            assert used & {index, "idx_ms_memories_recent_s"} and "Sort" not in plan, plan
        cursor.execute("RESET enable_seqscan")


def test_the_indexes_that_sorted_milliseconds_as_seconds_are_retired(agent):
    insert_memory(agent, "ann", text="x", topics=[])
    schema = agent.db_schema
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE INDEX idx_ms_memories_recent ON "{schema}".agno_memories '
            "((coalesce(updated_at, created_at)) DESC, memory_id DESC)"
        )
    ensure_runtime_indexes(schema)
    names = index_names(schema)
    assert "idx_ms_memories_recent" not in names and "idx_ms_memories_recent_s" in names
