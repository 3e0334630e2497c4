"""The studio's Postgres backend (studio.postgres): a health check without a round trip,
statements prepared once they repeat, a prepared read that outlives its table's change, and
json read however deep it is nested."""

from __future__ import annotations

import os
import re
import select
import tempfile
import time

import pytest
from django.db import connection, connections
from django.urls import reverse

from studio.database_urls import psycopg_connect
from studio.postgres.base import RECENT_SECONDS
from studio.stored_json import TOO_DEEP_TO_SHOW, TooDeepJSON
from tests import factories


def _server_said_something(wrapper, timeout: float = 5.0) -> None:
    """Wait until the server's goodbye reaches the connection's socket."""
    readable, _, _ = select.select([wrapper.connection.pgconn.socket], [], [], timeout)
    assert readable, "the server never ended the connection"


def _backend_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_every_connection_is_on_the_studio_backend_and_binds_on_the_server():
    for alias in connections:
        settings_dict = connections[alias].settings_dict
        assert settings_dict["ENGINE"] == "studio.postgres", alias
        assert settings_dict["OPTIONS"]["server_side_binding"] is True, alias


@pytest.mark.django_db
def test_an_idle_connection_passes_its_health_check_without_a_round_trip():
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        try:
            assert connection.is_usable() is True
            quiet = trace.seek(0, 2)
            with connection.cursor() as cursor:  # the trace records what a query sends
                cursor.execute("SELECT 1")
            spoken = trace.seek(0, 2)
        finally:
            pgconn.untrace()
    assert quiet == 0
    assert spoken > 0


@pytest.mark.django_db
def test_a_connection_quiet_for_a_while_is_asked_as_django_asks():
    connection.ensure_connection()
    raw = connection.connection
    raw._studio_answered_at = time.monotonic() - RECENT_SECONDS - 1  # last answered long ago
    with tempfile.TemporaryFile() as trace:
        raw.pgconn.trace(trace.fileno())
        try:
            assert connection.is_usable() is True
        finally:
            raw.pgconn.untrace()
        trace.seek(0)
        assert b"SELECT 1" in trace.read()


@pytest.mark.django_db(transaction=True)
def test_the_health_check_works_on_descriptors_past_1023():
    opened = []
    wrapper = connections.create_connection("default")
    try:
        while not opened or opened[-1] < 1100:
            opened.append(os.open(os.devnull, os.O_RDONLY))
        first = _backend_pid(wrapper)
        assert wrapper.connection.pgconn.socket > 1023
        assert wrapper.is_usable() is True
        wrapper.close_if_unusable_or_obsolete()
        assert _backend_pid(wrapper) == first
    finally:
        wrapper.close()
        for descriptor in opened:
            os.close(descriptor)


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_fails_its_health_check_and_is_replaced():
    wrapper = connections.create_connection("default")
    try:
        first = _backend_pid(wrapper)
        wrapper.close_if_unusable_or_obsolete()  # a request ends: the next one checks
        assert _backend_pid(wrapper) == first  # healthy: kept

        with psycopg_connect(connection.settings_dict) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [first])
        _server_said_something(wrapper)
        assert wrapper.is_usable() is False

        wrapper.close_if_unusable_or_obsolete()
        assert _backend_pid(wrapper) != first  # the next request got a new connection
    finally:
        wrapper.close()


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_a_page_read_repeatedly_is_prepared_and_agent_schema_writes_are_not(editor_client, agent):
    memory = factories.make_memory(agent, "ann", "Likes tea.")
    url = factories.user_page(agent, "ann")
    for _ in range(6):
        assert editor_client.get(url).status_code == 200
        response = editor_client.post(
            factories.memory_url(agent, memory.memory_id, "edit", user_id="ann"),
            {
                "user_id": "ann",
                "text": f"Likes tea {time.monotonic_ns()}.",
                "topics": "",
                "version": factories.shown_version(agent, memory.memory_id),
            },
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 200, response.content[:300]

    prepared = _prepared_statements()
    qualified = f'"{agent.db_schema}"."agno_memories"'
    assert any(qualified in statement for statement in prepared)
    # The edit's own statements name the table unqualified, under the agent's search_path.
    unqualified = re.compile(r'(?<![.\w])"?agno_memories"?\b')
    assert not [s for s in prepared if unqualified.search(s.replace(qualified, ""))]


@pytest.mark.django_db(transaction=True, databases=["default", "remote"])
def test_prepared_statements_are_planned_for_their_parameters_every_time(editor_client, agent):
    # After five runs Postgres may keep one generic plan, and for the users list's optional
    # `after IS NULL OR user_id > after` that plan filters the whole index (100x slower at
    # 400,000 memories). Small tables here never tempt it, so the setting is what is checked.
    factories.make_memory(agent, "ann")
    for _ in range(6):
        assert editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).status_code == 200
    assert any(agent.db_schema in statement for statement in _prepared_statements())
    for alias in ("default", "remote"):
        with connections[alias].cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            assert cursor.fetchone()[0] == "force_custom_plan", alias


@pytest.mark.django_db(transaction=True)
def test_a_prepared_read_survives_its_table_changing_a_columns_type(editor_client, agent):
    factories.make_memory(agent, "ann", "Likes tea.")
    url = factories.user_page(agent, "ann")
    for _ in range(6):
        assert editor_client.get(url).status_code == 200
    assert any(agent.db_schema in statement for statement in _prepared_statements())

    # The runtime's own migration, on its own connection: feedback's type changes.
    with psycopg_connect(connection.settings_dict) as runtime:
        runtime.execute(
            f'ALTER TABLE "{agent.db_schema}".agno_memories ALTER COLUMN feedback TYPE varchar'
        )

    response = editor_client.get(url)
    assert response.status_code == 200
    assert "Likes tea." in response.content.decode()


@pytest.mark.django_db(databases=["default", "remote"])
def test_json_nested_past_what_psycopg_reads_comes_back_as_a_marked_value():
    deep = "[" * 990 + '"x"' + "]" * 990  # agno's json.dumps writes this deep
    for alias in ("default", "remote"):  # the studio's database and a runtime connection's
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT %s::json, %s::json, %s::jsonb", [deep, '{"a": [1]}', deep])
            as_json, shallow, as_jsonb = cursor.fetchone()
        assert as_json == TooDeepJSON(deep) and str(as_json) == TOO_DEEP_TO_SHOW, alias
        assert shallow == {"a": [1]}, alias
        assert as_jsonb == deep, alias  # jsonb stays text: Django's JSONFields decode it
