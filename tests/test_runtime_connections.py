"""The runtime on its own Postgres server: agents name their connection (RUNTIME_DATABASES),
list pages read a replica, writes go to the primary, and a read-only role is detected.

Two real servers: the embedded one holds the studio's tables, a second embedded cluster (its
own data directory and socket) holds the runtime's, written by agno's own PostgresDb.
"""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import pytest
from agno.db.postgres import PostgresDb
from agno.db.schemas.memory import UserMemory
from agno.session import AgentSession
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from memories import runtime
from memories.runtime import location as runtime_location
from memories.runtime.memories import insert_memory
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


def ann_in_two_runtimes(make_agent, runtime_connections, second: str) -> tuple:
    """Agent "A writable runtime" on `remote` and "B <second> runtime" on `remote_ro`, each
    with a memory of ann written by agno; and agno's store for each."""
    writable = make_agent(connection="remote", name="A writable runtime")
    other = make_agent(connection="remote_ro", name=f"B {second} runtime")
    stores = {
        agent: owner_agno(runtime_connections, agent.db_schema) for agent in (writable, other)
    }
    for agent, agno in stores.items():
        agno.upsert_user_memory(UserMemory(memory=f"Ann in {agent.name}.", user_id="ann"))
    return writable, other, stores


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


def test_a_read_only_runtime_leaves_the_studios_own_settings_to_editors(
    editor_client, make_agent, runtime_connections
):
    from memories.models import AuditEvent, Job

    agent = make_agent(connection="remote_ro", token_budget=0)
    agno = owner_agno(runtime_connections, agent.db_schema)
    written = agno.upsert_user_memory(UserMemory(memory="Grows tomatoes.", user_id="ann"))
    grant_reader(runtime_connections, agent.db_schema)
    tab = reverse("agents:memory_tab", args=[agent.slug])
    html = unescape(editor_client.get(tab).content.decode())
    # One sentence says why the runtime's rows are read-only; the studio's settings are not.
    assert html.count("may not insert, update or delete") == 1
    assert "Your role can view these settings" not in html
    assert "<fieldset disabled>" not in html
    assert reverse("agents:bridge_rotate", args=[agent.slug]) in html
    assert reverse("memories:start_export", args=[agent.slug]) in html
    assert reverse("memories:import", args=[agent.slug]) not in html  # an import writes memories
    sensitive = unescape(
        editor_client.get(reverse("memories:sensitive", args=[agent.slug])).content.decode()
    )
    assert reverse("memories:scan", args=[agent.slug]) in sensitive
    cost = editor_client.get(reverse("memories:cost", args=[agent.slug])).content.decode()
    assert "<fieldset disabled" not in cost

    settings_form = {
        "session_storage": "on",
        "num_history_runs": "3",
        "user_memories_on": "on",
        "user_memories_agentic": "on",
        "max_tool_calls_from_history": "0",
        "compress_tool_results_threshold": "0",
    }
    saved = editor_client.post(reverse("agents:update_settings", args=[agent.slug]), settings_form)
    assert saved.status_code == 302
    rotated = editor_client.post(reverse("agents:bridge_rotate", args=[agent.slug]))
    assert rotated.status_code == 200 and "ms_" in rotated.content.decode()
    exported = editor_client.post(reverse("memories:start_export", args=[agent.slug]))
    scanned = editor_client.post(reverse("memories:scan", args=[agent.slug]))
    assert exported.status_code == 302 and scanned.status_code == 302
    cost_form = {
        "conversations_per_month": "1000",
        "turns_per_conversation": "5",
        "price_per_million": "2.5",
        "extraction_tokens_per_call": "500",
        "token_budget": "900",
    }
    costed = editor_client.post(reverse("memories:save_cost", args=[agent.slug]), cost_form)
    assert costed.status_code == 302
    agent.refresh_from_db()
    assert agent.memory_settings.mode == "agentic" and agent.bridge_token_hash
    assert agent.token_budget == 900
    assert set(Job.objects.filter(agent=agent).values_list("kind", flat=True)) == {
        Job.Kind.EXPORT,
        Job.Kind.SENSITIVE_SCAN,
    }
    assert AuditEvent.objects.filter(agent=agent, action="settings.changed").exists()
    # The runtime's rows stay as agno wrote them, and a write to them is still refused.
    refused = editor_client.post(memory_url(agent, written.memory_id, "delete"), {"user_id": "ann"})
    assert refused.status_code == 403
    assert agno.get_user_memory(written.memory_id).memory == "Grows tomatoes."


def test_a_viewer_still_sees_the_settings_locked_with_the_reason(
    viewer_client, make_agent, runtime_connections
):
    agent = make_agent(connection="remote_ro")
    owner_agno(runtime_connections, agent.db_schema).upsert_user_memory(
        UserMemory(memory="Sails.", user_id="ann")
    )
    grant_reader(runtime_connections, agent.db_schema)
    html = viewer_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    assert "Your role can view these settings" in html and "<fieldset disabled>" in html
    refused = viewer_client.post(reverse("agents:bridge_rotate", args=[agent.slug]))
    assert refused.status_code == 403
    agent.refresh_from_db()
    assert not agent.bridge_token_hash


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


def test_a_list_read_inside_a_primary_block_stays_in_it_not_on_the_replica(
    make_agent, runtime_connections
):
    """A list reads the replica, but inside a block on the primary (an action's write) it
    must read that block, which holds what it has not committed yet; the replica's
    connection is in no transaction, so only the block's own marker keeps the read there."""
    agent = make_agent(connection="remote")
    agno = owner_agno(runtime_connections, agent.db_schema)
    agno.upsert_user_memory(UserMemory(memory="Plays chess.", user_id="ann"))
    # Both tables, so outside the block the list is one statement on the replica.
    agno.upsert_session(AgentSession(session_id="s", agent_id="a", user_id="ann", created_at=1))
    grant_reader(runtime_connections, agent.db_schema)
    with CaptureQueriesContext(connections["remote_replica"]) as outside:
        assert [m.text for m in runtime.user_memories(agent, "ann").items] == ["Plays chess."]
    qualified = f'"{agent.db_schema}"."agno_memories"'
    assert any(qualified in q["sql"] for q in outside.captured_queries)
    with runtime.in_agent_schema(agent) as tables:
        assert tables.alias == "remote"
        insert_memory(agent, "ann", text="Not committed yet.", topics=[])
        with CaptureQueriesContext(connections["remote_replica"]) as replica_reads:
            inside = [m.text for m in runtime.user_memories(agent, "ann").items]
        assert sorted(inside) == ["Not committed yet.", "Plays chess."]
        assert replica_reads.captured_queries == []
        transaction.set_rollback(True, using="remote")
    assert [m.text for m in runtime.user_memories(agent, "ann").items] == ["Plays chess."]


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


def test_forgetting_across_agents_refuses_a_read_only_one_before_touching_any(
    editor_client, make_agent, runtime_connections
):
    from memories.models import AuditEvent, ForgetReceipt, Job

    # Agents are erased in name order: the writable one would go first and stay erased.
    writable, locked, stores = ann_in_two_runtimes(make_agent, runtime_connections, "read-only")
    for agent in stores:
        grant_reader(runtime_connections, agent.db_schema)
    url = reverse("memories:forget")
    preview = unescape(editor_client.get(url, {"user_id": "ann"}).content.decode())
    assert "may not change the runtime of “B read-only runtime”" in preview
    assert "“A writable runtime”" not in preview.split("so this forget")[0]
    for background in ({}, {"background": "on"}):
        refused = editor_client.post(url, {"user_id": "ann", "confirmation": "ann", **background})
        html = unescape(refused.content.decode())
        assert refused.status_code == 403
        assert "Nothing was erased" in html and "“B read-only runtime”" in html
        for agno in stores.values():
            assert [m.memory for m in agno.get_user_memories(user_id="ann")] != []
        assert not ForgetReceipt.objects.exists() and not Job.objects.exists()
        assert not AuditEvent.objects.filter(action="user.forgotten").exists()
    # The writable agent alone, as the message advises, is forgotten and receipted in full.
    done = editor_client.post(
        url, {"user_id": "ann", "confirmation": "ann", "agent": writable.slug}
    )
    assert done.status_code == 302
    assert stores[writable].get_user_memories(user_id="ann") == []
    assert len(stores[locked].get_user_memories(user_id="ann")) == 1
    receipt = ForgetReceipt.objects.get()
    assert receipt.finished_at is not None
    assert [line.agent_slug for line in receipt.lines.all()] == [writable.slug]


def test_the_forget_command_refuses_a_read_only_agent_in_words(make_agent, runtime_connections):
    locked = make_agent(connection="remote_ro")
    agno = owner_agno(runtime_connections, locked.db_schema)
    agno.upsert_user_memory(UserMemory(memory="Ann's fact.", user_id="ann"))
    grant_reader(runtime_connections, locked.db_schema)
    with pytest.raises(CommandError, match="Nothing was erased"):
        call_command("forget_user", "ann", "--yes")
    assert len(agno.get_user_memories(user_id="ann")) == 1


# RUNTIME_DATABASES, RUNTIME_REPLICAS and RUNTIME_READ_ONLY as a deployment writes them, read by
# the settings' own runtime_databases(): connection "prod", a Unix-socket URL to the runtime server.


@pytest.fixture
def socket_connections(runtime_connections, settings) -> Iterator[dict]:
    """The connections studio/test_settings.py builds as RUNTIME_DATABASES would: "socket",
    "socket_ro" (RUNTIME_READ_ONLY) and "lagging" (with its RUNTIME_REPLICAS database)."""
    settings.RUNTIME_CONNECTIONS = {
        **settings.RUNTIME_CONNECTIONS,
        **settings.SOCKET_RUNTIME_CONNECTIONS,
    }
    yield runtime_connections
    for alias in ("socket", "socket_ro", "lagging", "lagging_replica"):
        connections[alias].close()


def edit_data(memory_text: str, version: str) -> dict[str, str]:
    return {
        "user_id": "ann",
        "text": memory_text,
        "topics": "",
        "version": version,
        "text_shown": memory_text,
        "topics_shown": "",
    }


def test_runtime_read_only_refuses_a_write_and_the_server_refuses_one_that_slips_past(
    editor, editor_client, make_agent, socket_connections
):
    import psycopg
    from django.db import DatabaseError

    from memories import actions
    from memories.models import AuditEvent, TrashedMemory

    with connections["socket_ro"].cursor() as cursor:  # the URL's own option kept beside it
        cursor.execute("SELECT current_setting('default_transaction_read_only')")
        assert cursor.fetchone()[0] == "on"
        cursor.execute("SELECT current_setting('statement_timeout')")
        assert cursor.fetchone()[0] == "4321ms"
    agent = make_agent(connection="socket_ro")
    agno = owner_agno(socket_connections, agent.db_schema)
    written = agno.upsert_user_memory(UserMemory(memory="Rides a tandem.", user_id="ann"))
    html = unescape(editor_client.get(user_page(agent, "ann")).content.decode())
    assert "Rides a tandem." in html and "(RUNTIME_READ_ONLY)" in html
    assert 'name="text"' not in html
    memory = runtime.get_memory(agent, "ann", written.memory_id)
    for url, data in (
        (memory_url(agent, written.memory_id, "edit"), edit_data("Walks.", memory.version)),
        (memory_url(agent, written.memory_id, "delete"), {"user_id": "ann"}),
    ):
        refused = editor_client.post(url, data)
        assert refused.status_code == 403
        assert "read-only to Memory Studio (RUNTIME_READ_ONLY)" in unescape(
            refused.content.decode()
        )
    # Past the views, the server itself refuses: the connection's sessions are read-only.
    with pytest.raises(DatabaseError) as refusal:
        actions.delete_memory(actor=editor, agent=agent, user_id="ann", memory_id=written.memory_id)
    assert isinstance(refusal.value.__cause__, psycopg.errors.ReadOnlySqlTransaction)
    assert agno.get_user_memory(written.memory_id).memory == "Rides a tandem."
    assert not TrashedMemory.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="memory").exists()


@pytest.fixture
def primary_ahead_of_replica(make_agent, socket_connections):
    """The primary holds "Porto" and a second memory; the lagging replica still "Lisbon" only."""
    agent = make_agent(connection="lagging")
    primary = owner_agno(socket_connections, agent.db_schema)
    replica_db = connections["lagging_replica"].settings_dict
    assert replica_db["NAME"] != connections["lagging"].settings_dict["NAME"]
    replica = PostgresDb(db_url=sqlalchemy_url(replica_db), db_schema=agent.db_schema)
    socket_connections["engines"].append(replica.db_engine)
    moved = primary.upsert_user_memory(UserMemory(memory="Lives in Porto.", user_id="ann"))
    second = primary.upsert_user_memory(UserMemory(memory="Has a cat.", user_id="ann"))
    replica.upsert_user_memory(
        UserMemory(memory_id=moved.memory_id, memory="Lives in Lisbon.", user_id="ann")
    )
    yield {"agent": agent, "primary": primary, "ids": [moved.memory_id, second.memory_id]}
    with psycopg_connect(replica_db) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{agent.db_schema}" CASCADE')


def test_a_list_answering_a_write_is_read_from_the_primary_not_the_lagging_replica(
    editor_client, primary_ahead_of_replica
):
    """The add's reset list and the bulk delete's list show what the write left, which a
    lagging replica does not hold yet; the add from the first page takes the primary too."""
    agent, primary = primary_ahead_of_replica["agent"], primary_ahead_of_replica["primary"]
    htmx = {"HTTP_HX_REQUEST": "true"}
    add_url = reverse("memories:add", args=[agent.slug])
    for shown, text in ((user_page(agent, "ann", q="Porto"), "Plays chess."), (None, "Sings.")):
        where = {"HTTP_HX_CURRENT_URL": "http://testserver" + shown} if shown else {}
        added = editor_client.post(
            add_url, {"user_id": "ann", "text": text, "topics": ""}, **htmx, **where
        )
        html = unescape(added.content.decode())
        assert added.status_code == 200 and text in html and "Has a cat." in html
        assert "Lives in Porto." in html and "Lives in Lisbon." not in html
    cat = primary_ahead_of_replica["ids"][1]
    deleted = editor_client.post(
        reverse("memories:bulk_delete", args=[agent.slug]),
        {"user_id": "ann", "memory_ids": [cat], "confirmed": "1"},
        **htmx,
    )
    html = unescape(deleted.content.decode())
    assert "Has a cat." not in html and "Plays chess." in html and "Lives in Porto." in html
    assert {m.memory for m in primary.get_user_memories(user_id="ann")} == {
        "Lives in Porto.",
        "Plays chess.",
        "Sings.",
    }


def test_the_stale_edit_check_reads_the_primary_not_the_lagging_replica(
    editor_client, primary_ahead_of_replica
):
    import re

    agent, primary = primary_ahead_of_replica["agent"], primary_ahead_of_replica["primary"]
    moved = primary_ahead_of_replica["ids"][0]
    html = unescape(editor_client.get(user_page(agent, "ann")).content.decode())
    assert "Lives in Lisbon." in html and "Has a cat." not in html  # the list is the replica's
    [replica_version] = set(re.findall(r'name="version" value="([0-9a-f]+)"', html))
    stale = editor_client.post(
        memory_url(agent, moved, "edit"), edit_data("Lives in Faro.", replica_version)
    )
    assert stale.status_code == 409
    assert "Lives in Porto." in unescape(stale.content.decode())  # what the primary holds now
    assert primary.get_user_memory(moved).memory == "Lives in Porto."
    current = runtime.get_memory(agent, "ann", moved)
    assert current.text == "Lives in Porto." and current.version != replica_version
    saved = editor_client.post(
        memory_url(agent, moved, "edit"), edit_data("Lives in Faro.", current.version)
    )
    assert saved.status_code == 302
    assert primary.get_user_memory(moved).memory == "Lives in Faro."


def test_the_bulk_delete_confirmation_shows_the_primarys_rows(
    editor_client, primary_ahead_of_replica
):
    agent, primary = primary_ahead_of_replica["agent"], primary_ahead_of_replica["primary"]
    ids = primary_ahead_of_replica["ids"]
    confirm = editor_client.post(
        reverse("memories:bulk_delete", args=[agent.slug]), {"user_id": "ann", "memory_ids": ids}
    )
    html = unescape(confirm.content.decode())
    assert confirm.status_code == 200
    assert "Lives in Porto." in html and "Has a cat." in html and "Lisbon" not in html
    assert "not this user's" not in html
    assert len(primary.get_user_memories(user_id="ann")) == 2  # a confirmation deletes nothing


def test_the_counts_after_a_delete_are_the_primarys(editor_client, primary_ahead_of_replica):
    agent, primary = primary_ahead_of_replica["agent"], primary_ahead_of_replica["primary"]
    primary.upsert_user_memory(UserMemory(memory="Cycles to work.", user_id="ann"))
    doomed = primary_ahead_of_replica["ids"][1]  # the primary holds 3 memories, the replica 1
    deleted = editor_client.post(
        memory_url(agent, doomed, "delete"),
        {"user_id": "ann", "version": shown_version(agent, doomed)},
        HTTP_HX_REQUEST="true",
    )
    assert deleted.status_code == 200
    assert primary.get_user_memory(doomed) is None
    # The summary swapped in counts what the primary holds now, not the replica's one.
    count = '<span class="stat-value">2</span><span class="stat-label">memories</span>'
    assert count in deleted.content.decode()


def test_the_forget_preview_counts_the_primarys_rows(editor_client, primary_ahead_of_replica):
    preview = editor_client.get(reverse("memories:forget"), {"user_id": "ann"})
    html = preview.content.decode()
    assert preview.status_code == 200
    # Two memories on the primary (the replica has one), no sessions, no runs.
    assert '<td class="num">2</td><td class="num">0</td><td class="num">0</td>' in html


def test_a_unix_socket_runtime_url_reaches_django_agno_and_psycopg_and_healthz(
    client, editor_client, make_agent, socket_connections
):
    entry = connections["socket"].settings_dict
    assert entry["HOST"] == socket_connections["server"]["HOST"] and entry["HOST"].startswith("/")
    agent = make_agent(connection="socket")
    socket_connections["schemas"].append(agent.db_schema)
    # agno's PostgresDb from the same connection settings, as a deployment hands them over.
    agno = PostgresDb(db_url=sqlalchemy_url(entry), db_schema=agent.db_schema)
    socket_connections["engines"].append(agno.db_engine)
    written = agno.upsert_user_memory(UserMemory(memory="Reached by socket.", user_id="ann"))
    html = unescape(editor_client.get(user_page(agent, "ann")).content.decode())
    assert "Reached by socket." in html  # Django, through the socket URL
    with psycopg_connect(entry) as conn:
        data_directory = conn.execute("SHOW data_directory").fetchone()[0]
        stored = conn.execute(
            f"SELECT memory #>> '{{}}' FROM \"{agent.db_schema}\".agno_memories "
            "WHERE memory_id = %s",
            [written.memory_id],
        ).fetchone()[0]
    assert data_directory.endswith("runtime-postgres") and stored == "Reached by socket."
    health = client.get("/healthz")
    body = health.json()
    assert health.status_code == 200 and body["status"] == "ok"
    assert body["runtime_connections"]["socket"]["up"] is True
    assert body["runtime_connections"]["lagging"]["replica"]["up"] is True
    assert body["runtime_connections"]["remote"]["up"] is True
    assert body["runtime_connections"]["remote"]["replica"]["up"] is True
    assert "postgres://" not in health.content.decode()


def test_a_runtime_that_turns_read_only_mid_forget_is_reported_truthfully(
    editor_client, make_agent, runtime_connections
):
    from memories.models import AuditEvent, ForgetReceipt

    writable, revoked, stores = ann_in_two_runtimes(make_agent, runtime_connections, "revoked")
    grant_reader(runtime_connections, revoked.db_schema, write=True)
    url = reverse("memories:forget")
    preview = unescape(editor_client.get(url, {"user_id": "ann"}).content.decode())
    assert "may not change the runtime" not in preview  # both writable when last checked
    # Revoked within the minute the check is remembered: the up-front check still passes.
    on_runtime_server(
        runtime_connections,
        f'REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{revoked.db_schema}" '
        f"FROM {READER_ROLE}",
    )
    refused = editor_client.post(url, {"user_id": "ann", "confirmation": "ann"})
    html = unescape(refused.content.decode())
    assert refused.status_code == 403
    assert "Forgot the user in “A writable runtime” only" in html
    assert "“B revoked runtime” refused" in html and "Nothing was changed" not in html
    assert stores[writable].get_user_memories(user_id="ann") == []
    assert len(stores[revoked].get_user_memories(user_id="ann")) == 1
    receipt = ForgetReceipt.objects.get()
    assert f"Receipt {receipt.pk}" in html and receipt.finished_at is None
    assert [line.agent_slug for line in receipt.lines.all()] == [writable.slug]
    assert list(
        AuditEvent.objects.filter(action="user.forgotten").values_list("agent_slug", flat=True)
    ) == [writable.slug]
    # The refusal is remembered: the next preview names the agent at once.
    again = unescape(editor_client.get(url, {"user_id": "ann"}).content.decode())
    assert "may not change the runtime of “B revoked runtime”" in again


def test_runtime_indexes_skip_a_read_only_connection_and_say_why(make_agent, socket_connections):
    from io import StringIO

    from memories.runtime.indexes import INDEXES

    locked = make_agent(connection="socket_ro", slug="locked")
    owned = make_agent(connection="socket", slug="owned")
    for agent in (locked, owned):
        owner_agno(socket_connections, agent.db_schema).upsert_user_memory(
            UserMemory(memory="Indexed?", user_id="ann")
        )
    out = StringIO()
    call_command("runtime_indexes", stdout=out)
    lines = dict(line.split(" ", 1) for line in out.getvalue().splitlines())
    assert "skipped" in lines["locked"] and "(RUNTIME_READ_ONLY)" in lines["locked"]
    assert "built" in lines["owned"]
    ours = {index.name for index in INDEXES}
    found = on_runtime_server(
        socket_connections,
        "SELECT schemaname, indexname FROM pg_indexes WHERE schemaname IN (%s, %s)",
        [locked.db_schema, owned.db_schema],
    )
    by_schema = {schema: {name for s, name in found if s == schema} for schema, _ in found}
    assert ours & by_schema[owned.db_schema] and not ours & by_schema[locked.db_schema]


def test_a_runtime_that_is_down_is_named_not_the_studios_database(
    editor_client, make_agent, settings
):
    settings.RUNTIME_CONNECTIONS = {
        **settings.RUNTIME_CONNECTIONS,
        **settings.DEAD_RUNTIME_CONNECTIONS,
    }
    agent = make_agent(connection="dead")
    response = editor_client.get(user_page(agent, "ann"))
    html = unescape(response.content.decode())
    assert response.status_code == 503
    assert "This agent's runtime database cannot be reached" in html
    assert "cannot reach its Postgres database" not in html
    # The studio's own pages keep working.
    assert editor_client.get(reverse("agents:list")).status_code == 200
    connections["dead"].close()
