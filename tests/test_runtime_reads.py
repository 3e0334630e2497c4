"""Reads in plain SQL outside a transaction (runtime.access.read_runtime): the users list, a
user's memories, a row, search, the recent poll and topics ask the runtime one statement
each, with schema-qualified names, once its memory and session tables are known to exist;
an agent whose tables agno has not all created yet, or that never ran, is read as before."""

from __future__ import annotations

import time

import pytest
from agno.db.schemas.memory import UserMemory
from agno.session import AgentSession
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from memories import runtime
from memories.runtime import users as runtime_users
from memories.users import agent_users
from studio.database_urls import psycopg_connect
from tests.factories import make_person, memory_url, user_page


def _listed(agent: Agent) -> list[str | None]:
    return [row.user_id for row in agent_users(agent).items]


def _qualified(agent: Agent, table: str) -> str:
    return f'"{agent.db_schema}"."{table}"'


def _walks(captured: CaptureQueriesContext) -> list[str]:
    """The users list's statements among the captured queries."""
    return [q["sql"] for q in captured.captured_queries if "WITH RECURSIVE" in q["sql"]]


def _runtime_statements(captured: CaptureQueriesContext, agent: Agent) -> list[str]:
    """The captured statements that reach the agent's runtime (lookups and transactions
    included)."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if agent.db_schema in q["sql"] or q["sql"] in ("BEGIN", "COMMIT")
    ]


def _session(user_id: str, session_id: str) -> AgentSession:
    return AgentSession(
        session_id=session_id, agent_id="a", user_id=user_id, created_at=int(time.time())
    )


@pytest.fixture
def ran(agent, agno_db_for):
    """An agent whose runtime holds a memory and a session of ann's (both tables exist),
    and whose tables this process has looked up once already."""
    agno = agno_db_for(agent)
    written = agno.upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))
    agno.upsert_session(_session("ann", "s-ann"))
    assert _listed(agent) == ["ann"]
    return {"agent": agent, "agno": agno, "memory_id": written.memory_id}


def test_the_users_list_asks_the_runtime_one_statement(ran):
    agent = ran["agent"]
    ran["agno"].upsert_session(_session("bob", "s-bob"))
    with CaptureQueriesContext(connection) as captured:
        stats = runtime_users.users_with_stats(
            agent, after=None, prefix="", limit=26, with_null=True
        )
    assert list(stats) == ["ann", "bob"]
    assert (stats["ann"].memory_count, stats["ann"].session_count) == (1, 1)
    assert (stats["bob"].memory_count, stats["bob"].session_count) == (0, 1)
    # No BEGIN, search_path or table lookup around it: the statement names the schema.
    [statement] = captured.captured_queries
    assert _qualified(agent, "agno_memories") in statement["sql"]
    assert _qualified(agent, "agno_sessions") in statement["sql"]


@pytest.mark.parametrize(
    ("read", "table"),
    [
        (lambda agent, memory_id: runtime.user_memories(agent, "ann"), "agno_memories"),
        (lambda agent, memory_id: runtime_users.user_summary(agent, "ann"), "agno_memories"),
        (lambda agent, memory_id: runtime_users.user_page(agent, "ann"), "agno_memories"),
        (lambda agent, memory_id: runtime.get_memory(agent, "ann", memory_id), "agno_memories"),
        (lambda agent, memory_id: runtime.search_memories(agent, "chess"), "agno_memories"),
        (lambda agent, memory_id: runtime.recent_memories(agent), "agno_memories"),
        (lambda agent, memory_id: runtime.memory_topics(agent, "ann"), "agno_memories"),
        (lambda agent, memory_id: runtime.user_sessions(agent, "ann"), "agno_sessions"),
    ],
    ids=["memories", "summary", "page", "one memory", "search", "recent", "topics", "sessions"],
)
def test_each_plain_sql_read_is_one_qualified_statement(ran, read, table):
    agent = ran["agent"]
    with CaptureQueriesContext(connection) as captured:
        found = read(agent, ran["memory_id"])
    assert found is not None
    [statement] = _runtime_statements(captured, agent)
    assert _qualified(agent, table) in statement


def test_pages_are_one_statement_each_through_the_views(ran, editor_client):
    agent = ran["agent"]
    with CaptureQueriesContext(connection) as page_reads:
        page = editor_client.get(user_page(agent, "ann"))
    assert page.status_code == 200 and "Plays chess." in page.content.decode()
    [page_statement] = _runtime_statements(page_reads, agent)
    assert _qualified(agent, "agno_sessions") in page_statement  # the summary rides on it
    for action in ("row", "edit"):
        with CaptureQueriesContext(connection) as row_reads:
            row = editor_client.get(
                memory_url(agent, ran["memory_id"], action, user_id="ann"),
                HTTP_HX_REQUEST="true",
            )
        assert row.status_code == 200 and "Plays chess." in row.content.decode()
        assert len(_runtime_statements(row_reads, agent)) == 1, action


def test_a_table_agno_creates_later_is_seen_at_once(agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))  # no sessions
    assert _listed(agent) == ["ann"]
    with CaptureQueriesContext(connection) as again:
        assert _listed(agent) == ["ann"]
    # Without a session table every read looks the tables up again (in_agent_schema), and
    # no statement names a table that is not there.
    [walk] = _walks(again)
    assert "agno_sessions" not in walk and _qualified(agent, "agno_memories") not in walk
    agno.upsert_session(_session("bob", "s-bob"))
    assert _listed(agent) == ["ann", "bob"]  # the next read already sees it
    with CaptureQueriesContext(connection) as later:
        assert _listed(agent) == ["ann", "bob"]
    [walk] = _walks(later)
    assert _qualified(agent, "agno_sessions") in walk


def test_a_table_dropped_after_it_was_seen_is_read_around(ran, editor_client):
    agent = ran["agent"]
    with psycopg_connect(connection.settings_dict) as owner:  # as the runtime's owner would
        owner.execute(f"DROP TABLE {_qualified(agent, 'agno_sessions')}")
    assert _listed(agent) == ["ann"]
    page = editor_client.get(user_page(agent, "ann"))
    assert page.status_code == 200 and "Plays chess." in page.content.decode()
    with CaptureQueriesContext(connection) as after:
        assert _listed(agent) == ["ann"]
    assert "agno_sessions" not in _walks(after)[0]  # found gone: no failing statement again


def test_a_users_page_read_around_a_dropped_table_reports_the_tables_it_found(ran):
    agent = ran["agent"]
    with psycopg_connect(connection.settings_dict) as owner:
        owner.execute(f"DROP TABLE {_qualified(agent, 'agno_sessions')}")
    page, summary = runtime_users.user_page(agent, "ann")
    assert [m.text for m in page.items] == ["Plays chess."]
    # The rows and the summary come from the same second look, not the one that failed.
    assert (summary.memory_count, summary.session_count) == (1, 0)
    assert summary.tables.memories and not summary.tables.sessions


def test_an_agent_that_never_ran_lists_nobody_outside_a_transaction(agent, agno_db_for):
    assert not connection.in_atomic_block
    assert _listed(agent) == []


def test_pages_of_an_agent_missing_tables_read_what_exists_outside_a_transaction(
    make_agent, agno_db_for, editor_client
):
    never_ran = make_agent()
    make_person("new@example.com")  # registered: their page exists before the agent ran
    page = editor_client.get(user_page(never_ran, "new@example.com"))
    assert page.status_code == 200 and "has not run yet" in page.content.decode()
    memories_only = make_agent()
    agno_db_for(memories_only).upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))
    page = editor_client.get(user_page(memories_only, "ann"))
    assert page.status_code == 200 and "Plays chess." in page.content.decode()
    page, summary = runtime_users.user_page(memories_only, "ann")
    assert [m.text for m in page.items] == ["Plays chess."]
    assert (summary.memory_count, summary.session_count) == (1, 0)
    assert summary.tables.memories and not summary.tables.sessions
    nobody, summary = runtime_users.user_page(memories_only, "bob")
    assert nobody.items == [] and summary.memory_count == 0 and summary.tables.any


def test_inside_a_transaction_a_missing_table_leaves_the_transaction_usable(agent, agno_db_for):
    agno_db_for(agent).upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))
    with transaction.atomic():
        assert _listed(agent) == ["ann"]
        # A failed statement would have aborted it: the next query would raise.
        assert Agent.objects.filter(pk=agent.pk).exists()
