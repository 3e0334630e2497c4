"""Faults answer plainly: Postgres down, runtime tables missing or drifted."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core import checks
from django.db import OperationalError, connection, connections
from django.urls import reverse

from memories.runtime import users as runtime_users
from memories.runtime.memories import insert_memory
from memories.runtime.schema import ensure_runtime_tables, schema_state

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db(transaction=True)
def test_with_postgres_unreachable_pages_answer_503_in_plain_words(editor_client, agent):
    url = reverse("memories:user", args=[agent.slug])
    connection.close()
    refused = OperationalError('connection to server on socket "/x/.s.PGSQL.5432" failed')
    with mock.patch.object(type(connections["default"]), "get_new_connection", side_effect=refused):
        response = editor_client.get(url, {"user_id": "ann"})
        htmx = editor_client.post(
            reverse("memories:add", args=[agent.slug]), {"user_id": "ann", "text": "x"}, **HTMX
        )
        login = editor_client.get(reverse("login"))
    html = response.content.decode()
    assert response.status_code == 503
    assert "cannot reach its Postgres database" in html and "Traceback" not in html
    assert htmx.status_code == 503 and "cannot reach" in htmx["HX-Trigger"]
    assert login.status_code in (200, 503)
    connection.close()


def test_a_database_error_inside_a_view_is_503_too(editor_client, agent):
    # The runtime query the user page makes, failing as a dropped connection does.
    with mock.patch.object(
        runtime_users, "user_page", side_effect=OperationalError("server closed the connection")
    ):
        response = editor_client.get(
            reverse("memories:user", args=[agent.slug]), {"user_id": "ann"}
        )
    assert response.status_code == 503
    assert "cannot reach its Postgres database" in response.content.decode()


def test_an_agent_whose_tables_do_not_exist_shows_a_friendly_empty_state(editor_client, agent):
    from tests.factories import make_person

    make_person("ann@example.com")
    tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]))
    assert tab.status_code == 200
    page = editor_client.get(
        reverse("memories:user", args=[agent.slug]), {"user_id": "ann@example.com"}
    )
    assert page.status_code == 200 and "has not run yet" in page.content.decode()
    listing = editor_client.get(reverse("agents:list")).content.decode()
    assert "the agent has not run" in listing


def test_a_runtime_table_missing_a_column_is_reported_by_name(editor_client, agent):
    insert_memory(agent, "ann", text="x", topics=["t"])
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{agent.db_schema}".agno_memories DROP COLUMN topics')
    response = editor_client.get(reverse("memories:user", args=[agent.slug]), {"user_id": "ann"})
    html = response.content.decode()
    assert response.status_code == 500
    assert f"{agent.db_schema}.agno_memories has no column topics" in html
    assert "Traceback" not in html


def test_the_system_check_reports_each_agents_schema(make_agent):
    missing, ready, drifted = (
        make_agent(slug="missing"),
        make_agent(slug="ready"),
        make_agent(slug="drifted"),
    )
    ensure_runtime_tables(ready.db_schema)
    ensure_runtime_tables(drifted.db_schema)
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "{drifted.db_schema}".agno_memories ALTER COLUMN created_at TYPE text'
        )
    assert schema_state(missing.db_schema).status == "missing"
    assert schema_state(ready.db_schema).status == "ready"
    messages = {m.id: m for m in checks.run_checks(tags=["runtime"])}
    error = messages["memories.W001"]
    assert "drifted" in error.msg and "created_at is text, the runtime writes bigint" in error.msg
    with mock.patch("sys.argv", ["manage.py", "check"]):
        infos = [m.msg for m in checks.run_checks(tags=["runtime"])]
    summary = next(msg for msg in infos if msg.startswith("Agent schemas: "))
    assert f"missing ({missing.db_schema}) missing (the agent has not run)" in summary
    assert f"ready ({ready.db_schema}) ready" in summary
    assert "drifted (" not in summary
