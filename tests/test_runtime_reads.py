"""Reads of one statement outside a transaction (runtime.access.read_rows): the users list
asks the runtime once, with schema-qualified names, and still reads an agent whose tables
agno has not all created yet, or that never ran."""

from __future__ import annotations

import time

from agno.db.schemas.memory import UserMemory
from agno.session import AgentSession
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from memories import runtime
from memories.runtime import access
from memories.runtime.users import user_page as users_page
from memories.runtime.users import users_with_stats
from memories.users import agent_users
from tests.factories import make_person, memory_url, user_page


def _listed(agent: Agent) -> list[str | None]:
    return [row.user_id for row in agent_users(agent).items]


def _qualified(agent: Agent, table: str) -> str:
    return f'"{agent.db_schema}"."{table}"'


def _walks(captured: CaptureQueriesContext) -> list[str]:
    """The users list's statements among the captured queries."""
    return [q["sql"] for q in captured.captured_queries if "WITH RECURSIVE" in q["sql"]]


def _session(user_id: str, session_id: str) -> AgentSession:
    return AgentSession(
        session_id=session_id, agent_id="a", user_id=user_id, created_at=int(time.time())
    )


def test_the_users_list_asks_the_runtime_one_statement(agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))
    agno.upsert_session(_session("bob", "s-bob"))
    with CaptureQueriesContext(connection) as ran:
        stats = users_with_stats(agent, after=None, prefix="", limit=26, with_null=True)
    assert list(stats) == ["ann", "bob"]
    assert (stats["ann"].memory_count, stats["ann"].session_count) == (1, 0)
    assert (stats["bob"].memory_count, stats["bob"].session_count) == (0, 1)
    # No BEGIN, search_path or table lookup around it: the statement names the schema.
    [statement] = ran.captured_queries
    assert _qualified(agent, "agno_memories") in statement["sql"]
    assert _qualified(agent, "agno_sessions") in statement["sql"]


def test_a_table_agno_has_not_created_yet_is_found_out_and_asked_after_later(
    agent, agno_db_for, monkeypatch
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))  # no sessions
    assert _listed(agent) == ["ann"]
    with CaptureQueriesContext(connection) as again:
        assert _listed(agent) == ["ann"]
    # Within MISSING_TABLE_SECONDS the lookup goes first: no statement fails on every page,
    # and the one asked names the memories alone, through the search_path.
    [walk] = _walks(again)
    assert _qualified(agent, "agno_memories") not in walk and "agno_sessions" not in walk
    agno.upsert_session(_session("bob", "s-bob"))
    monkeypatch.setattr(access, "MISSING_TABLE_SECONDS", 0)
    with CaptureQueriesContext(connection) as later:
        assert _listed(agent) == ["ann", "bob"]
    [walk] = _walks(later)
    assert _qualified(agent, "agno_sessions") in walk


def test_an_agent_that_never_ran_lists_nobody_outside_a_transaction(agent, agno_db_for):
    assert not connection.in_atomic_block
    assert _listed(agent) == []


def test_inside_a_transaction_a_missing_table_leaves_the_transaction_usable(agent, agno_db_for):
    agno_db_for(agent).upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))
    with transaction.atomic():
        assert _listed(agent) == ["ann"]
        # A failed statement would have aborted it: the next query would raise.
        assert Agent.objects.filter(pk=agent.pk).exists()


def _runtime_statements(captured: CaptureQueriesContext, agent: Agent) -> list[str]:
    """The captured statements that read the agent's runtime tables (lookups included), but
    the write-privilege check, which a process asks once a minute (runtime.location)."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if (agent.db_schema in q["sql"] or q["sql"] in ("BEGIN", "COMMIT"))
        and "has_table_privilege" not in q["sql"]
    ]


def test_a_users_memories_page_and_one_memory_are_one_statement_each(
    agent, agno_db_for, editor_client
):
    agno = agno_db_for(agent)
    written = agno.upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))
    agno.upsert_session(_session("ann", "s-ann"))
    with CaptureQueriesContext(connection) as page_reads:
        page = editor_client.get(user_page(agent, "ann"))
    assert page.status_code == 200 and "Plays chess." in page.content.decode()
    [page_statement] = _runtime_statements(page_reads, agent)
    assert _qualified(agent, "agno_sessions") in page_statement  # the summary rides on it
    with CaptureQueriesContext(connection) as row_reads:
        row = editor_client.get(
            memory_url(agent, written.memory_id, user_id="ann"), HTTP_HX_REQUEST="true"
        )
    assert row.status_code == 200 and "Plays chess." in row.content.decode()
    assert len(_runtime_statements(row_reads, agent)) == 1
    memory = runtime.get_memory(agent, "ann", written.memory_id)
    assert memory.text == "Plays chess."


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
    page, summary = users_page(memories_only, "ann")
    assert [m.text for m in page.items] == ["Plays chess."]
    assert (summary.memory_count, summary.session_count) == (1, 0)
    nobody, summary = users_page(memories_only, "bob")
    assert nobody.items == [] and summary.memory_count == 0 and summary.tables.any
