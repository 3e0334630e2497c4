"""The runtime on its own Postgres server: agents name their connection (RUNTIME_DATABASES),
list pages read a replica, writes go to the primary, and a read-only role is detected.

Two real servers: the embedded one holds the studio's tables, a second embedded cluster (its
own data directory and socket) holds the runtime's, written by agno's own PostgresDb.
"""

from __future__ import annotations

from html import unescape

import pytest
from agno.db.postgres import PostgresDb
from agno.db.schemas.memory import UserMemory
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from memories import runtime
from memories.runtime import location as runtime_location
from studio.database_urls import psycopg_connect, sqlalchemy_url
from studio.runtime_databases import RuntimeConnection
from tests.conftest import READER_ROLE
from tests.factories import memory_url, shown_version, user_page

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(autouse=True)
def fresh_privileges():
    runtime_location._privileges_seen.clear()
    yield
    runtime_location._privileges_seen.clear()


def owner_agno(runtime_connections, schema: str) -> PostgresDb:
    """agno as the runtime's owner writes it, whatever role the studio connects with."""
    runtime_connections["schemas"].append(schema)
    agno = PostgresDb(db_url=sqlalchemy_url(runtime_connections["server"]), db_schema=schema)
    runtime_connections["engines"].append(agno.db_engine)
    return agno


def on_runtime_server(runtime_connections, sql: str, params=None) -> list[tuple]:
    with psycopg_connect(runtime_connections["server"]) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def grant_reader(runtime_connections, schema: str, *, write: bool = False) -> None:
    privileges = "SELECT, INSERT, UPDATE, DELETE" if write else "SELECT"
    on_runtime_server(runtime_connections, f'GRANT USAGE ON SCHEMA "{schema}" TO {READER_ROLE}')
    on_runtime_server(
        runtime_connections,
        f'GRANT {privileges} ON ALL TABLES IN SCHEMA "{schema}" TO {READER_ROLE}',
    )


def test_an_agent_on_another_server_is_read_and_written_there(
    editor_client, make_agent, runtime_connections
):
    agent = make_agent(connection="remote")
    agno = owner_agno(runtime_connections, agent.db_schema)
    written = agno.upsert_user_memory(UserMemory(memory="Lives in Lisbon.", user_id="ann"))
    grant_reader(runtime_connections, agent.db_schema)  # the replica's login reads the lists
    html = unescape(editor_client.get(user_page(agent, "ann")).content.decode())
    assert "Lives in Lisbon." in html
    memory = runtime.get_memory(agent, "ann", written.memory_id)
    edited = editor_client.post(
        memory_url(agent, written.memory_id, "edit"),
        {
            "user_id": "ann",
            "text": "Lives in Porto.",
            "topics": "",
            "version": memory.version,
            "text_shown": memory.text,
            "topics_shown": "",
        },
    )
    assert edited.status_code in (200, 302)
    assert agno.get_user_memory(written.memory_id).memory == "Lives in Porto."
    # The studio's own server never held the runtime's tables, nor the runtime server the studio's.
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s)", [agent.db_schema])
        assert cursor.fetchone()[0] is None
    studio_tables = on_runtime_server(
        runtime_connections,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    assert studio_tables == []


def test_migrate_refuses_a_runtime_database_and_creates_nothing_there(runtime_connections):
    with pytest.raises(CommandError, match="runtime connection"):
        call_command("migrate", database="remote", verbosity=0)
    tables = on_runtime_server(
        runtime_connections,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    assert tables == []


def test_a_read_only_role_hides_write_controls_and_says_why(
    editor_client, make_agent, runtime_connections
):
    agent = make_agent(connection="remote_ro")
    agno = owner_agno(runtime_connections, agent.db_schema)
    written = agno.upsert_user_memory(UserMemory(memory="Reads sci-fi.", user_id="ann"))
    grant_reader(runtime_connections, agent.db_schema)
    page = editor_client.get(user_page(agent, "ann"))
    html = unescape(page.content.decode())
    assert page.status_code == 200 and "Reads sci-fi." in html
    assert "may not insert, update or delete" in html
    assert 'name="text"' not in html and "memories:delete" not in html
    assert reverse("memories:delete", args=[agent.slug]) not in html
    shown = {"user_id": "ann", "version": shown_version(agent, written.memory_id)}
    refused = editor_client.post(memory_url(agent, written.memory_id, "delete"), shown)
    assert refused.status_code == 403
    assert "may not insert, update or delete" in unescape(refused.content.decode())
    assert agno.get_user_memory(written.memory_id) is not None


def test_a_write_reaching_a_role_that_lost_its_privileges_is_refused_plainly(
    editor_client, make_agent, runtime_connections
):
    agent = make_agent(connection="remote_ro")
    agno = owner_agno(runtime_connections, agent.db_schema)
    written = agno.upsert_user_memory(UserMemory(memory="Keeps bees.", user_id="ann"))
    grant_reader(runtime_connections, agent.db_schema, write=True)
    assert 'name="text"' in editor_client.get(user_page(agent, "ann")).content.decode()
    shown = {"user_id": "ann", "version": shown_version(agent, written.memory_id)}
    on_runtime_server(
        runtime_connections,
        f'REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{agent.db_schema}" '
        f"FROM {READER_ROLE}",
    )
    refused = editor_client.post(memory_url(agent, written.memory_id, "delete"), shown)
    assert refused.status_code == 403
    assert "refused this change" in unescape(refused.content.decode())
    assert agno.get_user_memory(written.memory_id) is not None


def test_lists_read_the_replica_and_writes_the_primary(
    editor_client, make_agent, runtime_connections
):
    agent = make_agent(connection="remote")
    agno = owner_agno(runtime_connections, agent.db_schema)
    written = agno.upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))
    grant_reader(runtime_connections, agent.db_schema)  # the replica's login may only read
    replica = connections["remote_replica"]
    with CaptureQueriesContext(replica) as read:
        html = unescape(editor_client.get(user_page(agent, "ann")).content.decode())
    assert "Plays chess." in html
    assert any("memory" in q["sql"] for q in read.captured_queries)
    shown = {"user_id": "ann", "version": shown_version(agent, written.memory_id)}
    with CaptureQueriesContext(replica) as written_queries:
        deleted = editor_client.post(memory_url(agent, written.memory_id, "delete"), shown)
    assert deleted.status_code in (200, 302)
    assert written_queries.captured_queries == []
    assert agno.get_user_memory(written.memory_id) is None


def test_a_connection_marked_read_only_says_so(
    editor_client, make_agent, runtime_connections, settings
):
    agent = make_agent(connection="remote")
    owner_agno(runtime_connections, agent.db_schema).upsert_user_memory(
        UserMemory(memory="Owns a kayak.", user_id="ann")
    )
    grant_reader(runtime_connections, agent.db_schema)
    settings.RUNTIME_CONNECTIONS = {
        **settings.RUNTIME_CONNECTIONS,
        "remote": RuntimeConnection("remote", "remote", read_only=True),
    }
    html = unescape(editor_client.get(user_page(agent, "ann")).content.decode())
    assert "Owns a kayak." in html and "(RUNTIME_READ_ONLY)" in html
    assert 'name="text"' not in html


def test_an_agent_naming_a_connection_not_configured_gets_a_plain_page(editor_client, make_agent):
    agent = make_agent(connection="gone")
    response = editor_client.get(user_page(agent, "ann"))
    assert response.status_code == 503
    assert "“gone” is not configured here" in unescape(response.content.decode())


def test_one_unreachable_runtime_leaves_the_agents_list_working(editor_client, make_agent, agent):
    make_agent(connection="gone", name="Lost agent")
    response = editor_client.get(reverse("agents:list"))
    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert "Lost agent" in html and "Unreachable" in html and agent.name in html
