from __future__ import annotations

import re

from django.db import connection
from django.urls import reverse

from agents.memory_settings import MemorySettings
from memories import runtime
from memories.runtime.memories import insert_memory
from tests.factories import table_row


def test_it_lists_agents_with_mode_and_counts(editor_client, make_agent):
    support = make_agent(
        name="Support", settings=MemorySettings(session_storage=True, agentic_memory=True)
    )
    fresh = make_agent(name="Fresh", settings=MemorySettings())
    insert_memory(support, "ann@example.com", text="Prefers tea.", topics=[])
    insert_memory(support, "bob@example.com", text="Prefers coffee.", topics=[])
    response = editor_client.get(reverse("agents:list"))
    assert response.status_code == 200
    html = response.content.decode()
    support_row = table_row(html, ">Support</a>")
    assert '<span class="mode mode-agentic">Agentic</span>' in support_row
    # Users, then memories: both cells of Support's own row.
    assert re.findall(r'<td class="num">([^<]*)</td>', support_row) == ["2", "2"]
    fresh_row = table_row(html, ">Fresh</a>")
    assert '<span class="mode mode-off">Off</span>' in fresh_row
    assert "the agent has not run" in fresh_row
    with runtime.in_agent_schema(fresh) as tables:
        assert not tables.any  # listing an agent that never ran creates nothing for it


def test_it_redirects_anonymous_people_to_login(client):
    response = client.get(reverse("agents:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_login_page_logs_a_staff_member_in(client, editor):
    from tests.factories import PASSWORD

    response = client.post(reverse("login"), {"username": "edna", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("agents:list")).status_code == 200


def test_it_uses_postgres(db):
    from django.db import connection

    assert connection.vendor == "postgresql"


def test_permissions_load_in_one_query_and_still_separate_roles(
    viewer, editor, django_assert_num_queries
):
    from django.contrib.auth.models import User

    fresh_viewer, fresh_editor = User.objects.get(pk=viewer.pk), User.objects.get(pk=editor.pk)
    with django_assert_num_queries(1):
        assert fresh_viewer.has_perm("agents.view_agent")
        assert not fresh_viewer.has_perm("agents.operate_agent")
    assert fresh_editor.has_perm("agents.operate_agent")


def test_one_unreadable_table_marks_only_its_own_agent(editor_client, make_agent):
    """Agents share a connection, and one agent's memory table has drifted (no updated_at):
    the agents list still shows the others' figures."""
    good, bad = make_agent(name="Good"), make_agent(name="Drifted")
    insert_memory(good, "ann@example.com", text="Prefers tea.", topics=[])
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{bad.db_schema}"')
        cursor.execute(
            f'CREATE TABLE "{bad.db_schema}".agno_memories '
            "(memory_id text, user_id text, created_at bigint)"
        )
    html = editor_client.get(reverse("agents:list")).content.decode()
    assert "cannot be read" not in table_row(html, ">Good</a>")
    assert '<td class="num">1</td>' in table_row(html, ">Good</a>")
    assert "cannot be read" in table_row(html, ">Drifted</a>")
