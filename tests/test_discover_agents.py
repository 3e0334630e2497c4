"""Discovering agents in a runtime connection: default-named, renamed and Agent Studio's
`ag_…` schemas, on the second Postgres server, written by agno's own PostgresDb."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from html import unescape
from io import StringIO

import pytest
from agno.db.postgres import PostgresDb
from agno.db.schemas.memory import UserMemory
from agno.session import AgentSession
from django.core.management import call_command
from django.urls import reverse

from agents.models import Agent
from memories import runtime
from memories.models import AuditEvent
from studio.database_urls import psycopg_connect, sqlalchemy_url
from tests.conftest import READER_ROLE
from tests.factories import user_page

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def found(runtime_connections):
    """Three agents' schemas as their runtimes left them, and one schema that is not agno's."""
    tag = uuid.uuid4().hex[:8]
    schemas = {
        "plain": f"t_plain_{tag}",
        "renamed": f"t_renamed_{tag}",
        "studio": f"ag_support_bot_{tag}",
        "other": f"t_other_{tag}",
    }
    runtime_connections["schemas"].extend(schemas.values())
    url = sqlalchemy_url(runtime_connections["server"])
    handles = [
        PostgresDb(db_url=url, db_schema=schemas["plain"]),
        PostgresDb(
            db_url=url,
            db_schema=schemas["renamed"],
            memory_table="bot_memories",
            session_table="bot_chats",
        ),
        PostgresDb(db_url=url, db_schema=schemas["studio"]),
    ]
    runtime_connections["engines"].extend(agno.db_engine for agno in handles)
    for n, agno in enumerate(handles):
        for i in range(n + 1):
            agno.upsert_user_memory(UserMemory(memory=f"Fact {i}.", user_id=f"user{i}"))
        agno.upsert_session(
            AgentSession(
                session_id=f"s-{tag}-{n}", agent_id="a", user_id="u", created_at=int(time.time())
            )
        )
    with psycopg_connect(runtime_connections["server"]) as conn:
        conn.execute(f'CREATE SCHEMA "{schemas["other"]}"')
        conn.execute(f'CREATE TABLE "{schemas["other"]}".notes (id int, memory text)')
        for schema in schemas.values():  # the replica's login reads what lists show
            conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {READER_ROLE}')
            conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {READER_ROLE}')
    return schemas


def discover_page(client, connection: str = "remote") -> str:
    response = client.get(reverse("agents:discover") + f"?connection={connection}")
    assert response.status_code == 200
    return unescape(response.content.decode())


def test_it_finds_default_renamed_and_agent_studio_schemas(editor_client, found):
    html = discover_page(editor_client)
    for key in ("plain", "renamed", "studio"):
        assert found[key] in html
    assert found["other"] not in html  # a table with a "memory" column is not agno's
    assert "bot_memories" in html and "bot_chats" in html
    assert "bot_chats_runs" not in html  # agno creates runs lazily: none were written
    assert f"support-bot-{found['studio'].rsplit('_', 1)[1]}" in html  # ag_<id>, "_" as "-"


def test_counts_are_those_agno_wrote(found):
    from memories.runtime.discovery import discover_schemas

    by_schema = {entry.schema: entry for entry in discover_schemas("remote")}
    assert [by_schema[found[k]].memories for k in ("plain", "renamed", "studio")] == [1, 2, 3]
    assert [by_schema[found[k]].users for k in ("plain", "renamed", "studio")] == [1, 2, 3]
    assert all(by_schema[found[k]].sessions == 1 for k in ("plain", "renamed", "studio"))
    assert by_schema[found["renamed"]].tables == {
        "memories": "bot_memories",
        "sessions": "bot_chats",
    }


def test_the_last_write_is_the_newest_row_agno_wrote(editor_client, found, runtime_connections):
    from memories.runtime.discovery import discover_schemas

    def last_write(schema: str) -> int:
        return {e.schema: e for e in discover_schemas("remote")}[schema].last_write

    before = last_write(found["plain"])
    assert before is not None and before <= int(time.time())
    time.sleep(1.1)  # agno stamps rows in whole seconds
    agno = PostgresDb(
        db_url=sqlalchemy_url(runtime_connections["server"]), db_schema=found["plain"]
    )
    runtime_connections["engines"].append(agno.db_engine)
    newer = agno.upsert_user_memory(UserMemory(memory="Newest fact.", user_id="user9"))
    stamped = agno.get_user_memory(newer.memory_id).updated_at
    assert stamped > before and last_write(found["plain"]) == stamped
    assert last_write(found["studio"]) < stamped  # another schema keeps its own
    row = discover_page(editor_client).split(found["plain"])[1].split("</tr>")[0]
    moment = datetime.fromtimestamp(stamped, UTC).isoformat()
    assert f'<time datetime="{moment}"' in row


def test_registering_a_renamed_schema_takes_one_click_and_shows_its_memories(editor_client, found):
    response = editor_client.post(
        reverse("agents:register_discovered"),
        {"connection": "remote", "schema": found["renamed"], "name": "Support bot"},
    )
    assert response.status_code == 302
    agent = Agent.objects.get(db_schema=found["renamed"])
    assert (agent.connection, agent.memory_table, agent.session_table, agent.runs_table) == (
        "remote",
        "bot_memories",
        "bot_chats",
        "",  # agno's default for a renamed session table: bot_chats_runs
    )
    assert agent.table_names.runs == "bot_chats_runs"
    assert AuditEvent.objects.get(action="agent.registered").agent == agent
    assert "Fact 1." in unescape(editor_client.get(user_page(agent, "user1")).content.decode())
    assert runtime.agent_overview(agent).memory_count == 2
    again = editor_client.post(
        reverse("agents:register_discovered"),
        {"connection": "remote", "schema": found["renamed"]},
    )
    assert (
        again.status_code == 302 and Agent.objects.filter(db_schema=found["renamed"]).count() == 1
    )
    assert f'href="{reverse("agents:memory_tab", args=[agent.slug])}"' in discover_page(
        editor_client
    )


def test_a_schema_without_agno_tables_cannot_be_registered(editor_client, found):
    response = editor_client.post(
        reverse("agents:register_discovered"), {"connection": "remote", "schema": found["other"]}
    )
    assert response.status_code == 404
    assert not Agent.objects.filter(db_schema=found["other"]).exists()


def test_a_viewer_sees_but_cannot_register(viewer_client, found):
    assert "Register</button>" not in discover_page(viewer_client)
    response = viewer_client.post(
        reverse("agents:register_discovered"), {"connection": "remote", "schema": found["plain"]}
    )
    assert response.status_code == 403


def test_an_unknown_connection_is_refused_plainly(editor_client, runtime_connections):
    response = editor_client.get(reverse("agents:discover") + "?connection=nowhere")
    assert response.status_code == 400
    assert "no runtime connection of that name" in response.content.decode()


def test_the_command_lists_what_the_page_lists(found):
    out = StringIO()
    call_command("discover_agents", "--connection", "remote", stdout=out)
    text = out.getvalue()
    assert found["plain"] in text and found["renamed"] in text and found["studio"] in text
    assert "memories=bot_memories" in text and "Agent Studio agent support-bot-" in text
    assert found["other"] not in text


@pytest.fixture
def ai_on_two_servers(runtime_connections):
    """agno's default schema, "ai", written by agno on the studio's own database and on the
    runtime server: two runtimes that never chose a schema name."""
    from django.db import connections

    from tests.conftest import drop_schema

    urls = {
        "default": sqlalchemy_url(connections["default"].settings_dict),
        "remote": sqlalchemy_url(runtime_connections["server"]),
    }
    handles = {name: PostgresDb(db_url=url) for name, url in urls.items()}
    assert {agno.db_schema for agno in handles.values()} == {"ai"}
    runtime_connections["schemas"].append("ai")
    runtime_connections["engines"].extend(agno.db_engine for agno in handles.values())
    for name, agno in handles.items():
        agno.upsert_user_memory(UserMemory(memory=f"Kept on {name}.", user_id="ann"))
    with psycopg_connect(runtime_connections["server"]) as conn:
        conn.execute(f'GRANT USAGE ON SCHEMA "ai" TO {READER_ROLE}')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "ai" TO {READER_ROLE}')
    yield handles
    drop_schema("ai")


def test_the_same_schema_on_two_connections_registers_as_two_agents(
    editor_client, ai_on_two_servers
):
    for connection in ("default", "remote"):
        response = editor_client.post(
            reverse("agents:register_discovered"),
            {"connection": connection, "schema": "ai", "name": f"Bot on {connection}"},
        )
        assert response.status_code == 302, response.content.decode()
    agents = {agent.connection: agent for agent in Agent.objects.filter(db_schema="ai")}
    assert set(agents) == {"default", "remote"}
    for connection, agent in agents.items():
        other = "remote" if connection == "default" else "default"
        html = unescape(editor_client.get(user_page(agent, "ann")).content.decode())
        assert f"Kept on {connection}." in html and f"Kept on {other}." not in html
    assert AuditEvent.objects.filter(action="agent.registered").count() == 2
    # Each discovery page links the schema to its own connection's agent.
    for connection, agent in agents.items():
        html = discover_page(editor_client, connection)
        assert f'href="{reverse("agents:memory_tab", args=[agent.slug])}"' in html


def test_a_schema_taken_on_its_connection_is_refused_in_words(editor_client, ai_on_two_servers):
    from django.db import IntegrityError, transaction

    from memories import actions

    first = actions.register_agent(actor=None, connection="remote", schema="ai", tables={})
    with pytest.raises(actions.SchemaTaken, match="already registered as ai"):
        actions.register_agent(actor=None, connection="remote", schema="ai", tables={})
    # The database keeps the rule too, whoever inserts.
    with pytest.raises(IntegrityError), transaction.atomic():
        Agent.objects.create(name="Copy", slug="copy", db_schema="ai", connection="remote")
    assert list(Agent.objects.filter(db_schema="ai")) == [first]
    assert AuditEvent.objects.filter(action="agent.registered").count() == 1


def test_at_scale_the_command_says_users_are_not_counted(found, runtime_connections, monkeypatch):
    from memories.runtime import discovery

    monkeypatch.setattr(discovery, "EXACT_COUNT_LIMIT", 2)  # a big table, as the planner sees it
    with psycopg_connect(runtime_connections["server"]) as conn:
        conn.execute(f'ANALYZE "{found["studio"]}".agno_memories')  # reltuples: 3
    out = StringIO()
    call_command("discover_agents", "--connection", "remote", stdout=out)
    line = next(row for row in out.getvalue().splitlines() if found["studio"] in row)
    assert "≈3 memories, users not counted, 1 sessions" in line
    assert " 0 users" not in line
