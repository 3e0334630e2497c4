"""Django admin's Agent pages (agents.admin): agno_settings through the Memory tab's typed
form, never raw JSON; whatever is stored or sent, the page answers and refuses in words."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from agents.forms import MemoryTabForm
from agents.models import Agent
from memories.models import AuditEvent
from tests.factories import memory_tab_data


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "x" * 16))
    return client


def change_url(agent: Agent) -> str:
    return reverse("admin:agents_agent_change", args=[agent.pk])


def change_data(agent: Agent, **settings: str) -> dict[str, str]:
    """The change form as a browser sends it: unchecked boxes are simply absent, and `shown`
    holds the memory settings the page showed (those stored now)."""
    stored = Agent.objects.get(pk=agent.pk).memory_settings
    return {
        "shown": MemoryTabForm.for_settings(stored).initial["shown"],
        "name": agent.name,
        "slug": agent.slug,
        "description": "",
        "db_schema": agent.db_schema,
        "user_id_kind": "email",
        "token_budget": "0",
        "num_history_runs": "3",
        "max_tool_calls_from_history": "0",
        "compress_tool_results_threshold": "0",
        **settings,
    }


def checked(html: str, name: str) -> bool:
    tag = re.search(rf'<input type="checkbox" name="{name}"[^>]*>', html)
    assert tag, f"no checkbox {name}"
    return "checked" in tag.group()


def test_the_change_page_shows_the_memory_tabs_switches_not_raw_json(admin_client, agent):
    page = admin_client.get(change_url(agent))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="agno_settings"' not in html
    assert checked(html, "session_storage") and checked(html, "user_memories_on")
    assert not checked(html, "user_memories_agentic")
    assert 'name="num_history_runs" value="3"' in html


def test_saving_switches_agentic_mode_on_and_keeps_keys_it_does_not_own(admin_client, agent):
    Agent.objects.filter(pk=agent.pk).update(
        agno_settings={**agent.agno_settings, "bridge_note": "kept"}
    )
    response = admin_client.post(
        change_url(agent),
        change_data(agent, session_storage="on", user_memories_on="on", user_memories_agentic="on"),
    )
    assert response.status_code == 302, response.content.decode()[:500]
    agent.refresh_from_db()
    settings = agent.memory_settings
    assert settings.agentic_memory and not settings.user_memories and settings.session_storage
    assert agent.agno_settings["bridge_note"] == "kept"
    assert agent.agno_settings["agentic_memory"] is True


def test_the_string_false_stored_in_agno_settings_reads_as_off(admin_client, agent):
    stored = {**agent.agno_settings, "session_storage": "false", "user_memories": "false"}
    Agent.objects.filter(pk=agent.pk).update(agno_settings=stored)
    agent.refresh_from_db()
    assert not agent.memory_settings.session_storage
    assert not agent.memory_settings.user_memories
    html = admin_client.get(change_url(agent)).content.decode()
    assert not checked(html, "session_storage") and not checked(html, "user_memories_on")
    # An unchecked box posts nothing: saving writes real JSON false.
    assert admin_client.post(change_url(agent), change_data(agent)).status_code == 302
    agent.refresh_from_db()
    assert agent.agno_settings["session_storage"] is False


def test_a_huge_number_stored_in_agno_settings_is_shown_and_can_be_fixed(admin_client, agent):
    with connection.cursor() as cursor:  # jsonb keeps 1e999 (as a 1,000-digit integer)
        cursor.execute(
            "UPDATE agents_agent SET agno_settings = agno_settings"
            " || '{\"num_history_runs\": 1e999}' WHERE id = %s",
            [agent.pk],
        )
    agent.refresh_from_db()
    assert agent.memory_settings.num_history_runs == 10**999
    assert "The num history runs must be a whole number from 1 to 50." in (
        agent.memory_settings.violations()
    )
    page = admin_client.get(change_url(agent))
    assert page.status_code == 200
    assert f'name="num_history_runs" value="{10**999}"' in page.content.decode()
    kept = admin_client.post(
        change_url(agent), change_data(agent, session_storage="on", user_memories_on="on")
    )
    assert kept.status_code == 302
    agent.refresh_from_db()
    assert agent.agno_settings["num_history_runs"] == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_history_runs", "1e999", "The number of history runs is a whole number from 1 to 50"),
        ("max_tool_calls_from_history", "9" * 400, "Max tool calls from history is a whole"),
        ("compress_tool_results_threshold", "1\x00", "The compression threshold is a whole"),
        ("name", "Bad\x00name", "Null characters are not allowed"),
    ],
)
def test_bad_values_are_refused_in_words_and_nothing_is_saved(
    admin_client, agent, field, value, message
):
    before = dict(agent.agno_settings), agent.name
    data = change_data(agent, session_storage="on", user_memories_on="on", **{field: value})
    response = admin_client.post(change_url(agent), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    agent.refresh_from_db()
    assert (agent.agno_settings, agent.name) == before


def test_the_rules_of_the_memory_tab_hold_in_the_admin(admin_client, agent):
    before = dict(agent.agno_settings)
    response = admin_client.post(change_url(agent), change_data(agent, user_memories_on="on"))
    assert response.status_code == 200
    assert "User memories need session storage" in response.content.decode()
    agent.refresh_from_db()
    assert agent.agno_settings == before


def test_an_agent_added_in_the_admin_gets_typed_settings(admin_client, db):
    data = {
        "name": "Helper",
        "slug": "helper",
        "description": "",
        "db_schema": "agent_helper",
        "user_id_kind": "email",
        "token_budget": "0",
        "num_history_runs": "5",
        "max_tool_calls_from_history": "0",
        "compress_tool_results_threshold": "0",
        "session_storage": "on",
    }
    response = admin_client.post(reverse("admin:agents_agent_add"), data)
    assert response.status_code == 302, response.content.decode()[:500]
    made = Agent.objects.get(slug="helper")
    assert made.memory_settings.session_storage and made.memory_settings.num_history_runs == 5
    assert not made.memory_settings.memories_enabled


def test_the_runtime_location_is_set_in_admin_and_checked(admin_client, agent):
    data = change_data(agent, memory_table="bot_memories", session_table="bot_chats")
    assert admin_client.post(change_url(agent), data).status_code == 302
    agent.refresh_from_db()
    assert (agent.connection, agent.table_names.memories, agent.table_names.runs) == (
        "default",
        "bot_memories",
        "bot_chats_runs",
    )
    bad = admin_client.post(change_url(agent), {**data, "memory_table": 'x"; DROP'})
    assert bad.status_code == 200 and "A table name starts with a letter" in bad.content.decode()
    unknown = admin_client.post(change_url(agent), {**data, "connection": "nowhere"})
    assert unknown.status_code == 200 and "Select a valid choice" in unknown.content.decode()
    agent.refresh_from_db()
    assert agent.memory_table == "bot_memories"


def test_the_trash_days_are_set_in_admin_within_a_year(admin_client, agent):
    assert (
        admin_client.post(change_url(agent), {**change_data(agent), "trash_days": "30"}).status_code
        == 302
    )
    agent.refresh_from_db()
    assert agent.trash_days == 30
    refused = admin_client.post(change_url(agent), {**change_data(agent), "trash_days": "400"})
    assert refused.status_code == 200 and "less than or equal to 365" in refused.content.decode()
    agent.refresh_from_db()
    assert agent.trash_days == 30


def test_a_schema_is_unique_per_connection_in_the_admin(admin_client, make_agent, settings):
    from studio.runtime_databases import RuntimeConnection

    settings.RUNTIME_CONNECTIONS = {
        **settings.RUNTIME_CONNECTIONS,
        "remote": RuntimeConnection("remote", "remote"),
    }
    first = make_agent(db_schema="ai")
    second = make_agent(db_schema="agent_other")
    # Another runtime database may hold its own "ai": the same name there is another agent.
    data = change_data(second, db_schema="ai", connection="remote")
    assert admin_client.post(change_url(second), data).status_code == 302
    second.refresh_from_db()
    assert (second.connection, second.db_schema) == ("remote", "ai")
    # On the same connection the clash is refused in words, and nothing is saved.
    clash = admin_client.post(change_url(second), {**data, "connection": "default"})
    html = clash.content.decode()
    assert clash.status_code == 200
    assert "Another agent already uses this schema on this runtime connection" in html
    second.refresh_from_db()
    assert (second.connection, second.db_schema) == ("remote", "ai")
    assert (first.connection, first.db_schema) == ("default", "ai")


def form_as_shown(html: str) -> dict[str, str]:
    """What a browser sends back from a change page: its text, number and hidden inputs, the
    boxes that are checked and the options that are selected."""
    data = {
        name: unescape(value)
        for name, value in re.findall(
            r'<input type="(?:text|number|hidden)" name="(\w+)" value="([^"]*)"', html
        )
    }
    for tag in re.findall(r'<input type="checkbox" name="\w+"[^>]*>', html):
        if "checked" in tag:
            data[re.search(r'name="(\w+)"', tag).group(1)] = "on"
    for name, body in re.findall(r'<select name="(\w+)"[^>]*>(.*?)</select>', html, re.S):
        selected = re.search(r'<option value="([^"]*)"[^>]*selected', body)
        data[name] = unescape(selected.group(1)) if selected else ""
    data.pop("csrfmiddlewaretoken", None)
    return data


def save_on_the_memory_tab(client: Client, agent: Agent, **switches: str) -> None:
    page = client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    shown = unescape(re.search(r'name="shown" value="([^"]*)"', page).group(1))
    data = memory_tab_data(shown=shown, **switches)
    response = client.post(reverse("agents:update_settings", args=[agent.slug]), data)
    assert response.status_code == 302


def test_a_stale_page_is_refused_and_keeps_what_was_typed(admin_client, editor_client, agent):
    page = admin_client.get(change_url(agent)).content.decode()
    # Meanwhile an operator turns session summaries on, on the Memory tab.
    save_on_the_memory_tab(editor_client, agent, session_summaries="on")
    typed = {**form_as_shown(page), "name": "Renamed", "num_history_runs": "7"}
    stale = admin_client.post(change_url(agent), typed)
    assert stale.status_code == 200
    html = stale.content.decode()
    assert (
        "The memory settings were changed elsewhere since this page was opened "
        "(now session summaries on): nothing was saved."
    ) in unescape(html)
    agent.refresh_from_db()
    settings = agent.memory_settings
    assert (agent.name, settings.num_history_runs, settings.session_summaries) == (
        agent.name,
        3,
        True,
    )
    assert agent.name != "Renamed"
    # The page again: what the person typed, on top of the operator's change.
    again = form_as_shown(html)
    assert (again["name"], again["num_history_runs"], again["session_summaries"]) == (
        "Renamed",
        "7",
        "on",
    )
    assert admin_client.post(change_url(agent), again).status_code == 302
    agent.refresh_from_db()
    settings = agent.memory_settings
    assert (agent.name, settings.num_history_runs, settings.session_summaries) == (
        "Renamed",
        7,
        True,
    )
    event = AuditEvent.objects.filter(actor__username="root").get()
    assert event.action == AuditEvent.Action.SETTINGS_CHANGED
    assert event.details["changed"] == {"num_history_runs": [3, 7]}


def test_a_save_from_the_admin_is_audited_like_one_from_the_memory_tab(admin_client, agent):
    page = admin_client.get(change_url(agent)).content.decode()
    data = {**form_as_shown(page), "user_memories_agentic": "on"}
    assert admin_client.post(change_url(agent), data).status_code == 302
    event = AuditEvent.objects.get()
    assert (event.action, event.actor.username, event.agent) == (
        AuditEvent.Action.SETTINGS_CHANGED,
        "root",
        agent,
    )
    assert event.details["changed"]["agentic_memory"] == [False, True]
    # Another field alone changes no setting: no settings event.
    again = form_as_shown(admin_client.get(change_url(agent)).content.decode())
    assert admin_client.post(change_url(agent), {**again, "token_budget": "900"}).status_code == 302
    agent.refresh_from_db()
    assert agent.token_budget == 900 and AuditEvent.objects.count() == 1


def test_a_page_that_does_not_say_what_it_showed_is_refused(admin_client, agent):
    data = change_data(agent, session_storage="on", session_summaries="on")
    del data["shown"]
    refused = admin_client.post(change_url(agent), data)
    assert refused.status_code == 200
    assert "This page did not say which memory settings it showed" in unescape(
        refused.content.decode()
    )
    agent.refresh_from_db()
    assert not agent.memory_settings.session_summaries
    again = form_as_shown(refused.content.decode())
    assert again["session_summaries"] == "on" and "user_memories_on" not in again
    assert admin_client.post(change_url(agent), again).status_code == 302
    agent.refresh_from_db()
    assert agent.memory_settings.session_summaries and not agent.memory_settings.memories_enabled


def test_a_page_showing_three_huge_stored_numbers_can_still_fix_them(admin_client, agent):
    with connection.cursor() as cursor:  # each comes back as a 1,000-digit integer
        cursor.execute(
            'UPDATE agents_agent SET agno_settings = agno_settings || \'{"num_history_runs": '
            '1e999, "max_tool_calls_from_history": 1e999, '
            '"compress_tool_results_threshold": 1e999}\' WHERE id = %s',
            [agent.pk],
        )
    page = form_as_shown(admin_client.get(change_url(agent)).content.decode())
    fixed = {
        **page,
        "num_history_runs": "3",
        "max_tool_calls_from_history": "0",
        "compress_tool_results_threshold": "0",
    }
    response = admin_client.post(change_url(agent), fixed)
    assert response.status_code == 302, response.content.decode()[:500]
    agent.refresh_from_db()
    assert agent.memory_settings.violations() == []
