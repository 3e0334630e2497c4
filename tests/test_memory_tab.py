"""The Memory tab: toggles saved through htmx or a plain form, and the users of the agent."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.urls import reverse

from agents.memory_settings import MemorySettings
from agents.models import Agent
from memories import runtime
from memories.models import AuditEvent
from memories.runtime.memories import insert_memory
from memories.users import agent_users
from tests.factories import make_person, memory_tab_data, table_row

HTMX = {"HTTP_HX_REQUEST": "true"}


def settings_url(agent: Agent) -> str:
    return reverse("agents:update_settings", args=[agent.slug])


def test_it_shows_the_settings_and_users(editor_client, agent):
    insert_memory(agent, "ann@example.com", text="x", topics=[])
    response = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="settings-panel"' in html and 'hx-trigger="change"' in html
    assert (
        "Session storage" in html and "Agentic managed" in html and "Tool-call compression" in html
    )
    assert "off is recommended in production" in html
    assert "ann@example.com" in html


def test_agentic_mode_turns_manual_mode_off_via_htmx(editor_client, agent):
    response = editor_client.post(
        settings_url(agent), memory_tab_data(user_memories_agentic="on"), **HTMX
    )
    assert response.status_code == 200
    assert 'id="settings-panel"' in response.content.decode()
    assert "<html" not in response.content.decode()  # the partial, not the page
    toast = json.loads(response["HX-Trigger"])["toast"]
    assert toast["message"].startswith("Settings saved.")
    agent.refresh_from_db()
    assert agent.agno_settings["agentic_memory"] is True
    assert agent.agno_settings["user_memories"] is False
    event = AuditEvent.objects.get()
    assert event.action == "settings.changed" and event.actor.username == "edna"
    assert event.details["changed"]["agentic_memory"] == [False, True]


def test_switching_back_to_manual_works_as_a_plain_form(editor_client, agent):
    editor_client.post(settings_url(agent), memory_tab_data(user_memories_agentic="on"))
    response = editor_client.post(settings_url(agent), memory_tab_data())
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.memory_settings.mode == "manual"
    assert agent.agno_settings["agentic_memory"] is False


def _shown(client, agent) -> str:
    """The settings the Memory tab's panel says it showed (its hidden `shown`)."""
    html = client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    return unescape(re.search(r'name="shown" value="([^"]*)"', html).group(1))


def test_two_stale_pages_changing_different_switches_keep_both(editor_client, editor, agent):
    other = editor_client.__class__()
    other.force_login(editor)
    mine, theirs = _shown(editor_client, agent), _shown(other, agent)  # both pages at S0
    first = editor_client.post(
        settings_url(agent), memory_tab_data(session_summaries="on", shown=mine), **HTMX
    )
    assert first.status_code == 200
    # The other page still shows summaries off; it turns agent memories on.
    second = other.post(
        settings_url(agent), memory_tab_data(agent_memories="on", shown=theirs), **HTMX
    )
    assert second.status_code == 200
    assert "changed elsewhere" in json.loads(second["HX-Trigger"])["toast"]["message"]
    agent.refresh_from_db()
    assert agent.agno_settings["session_summaries"] is True  # not undone by the stale page
    assert agent.agno_settings["agent_memories"] is True
    last = AuditEvent.objects.filter(action="settings.changed").order_by("pk").last()
    assert last.details["changed"] == {"agent_memories": [False, True]}
    # The panel sent back shows both: its `shown` is the merged state.
    panel = second.content.decode()
    assert json.loads(unescape(re.search(r'name="shown" value="([^"]*)"', panel).group(1)))[
        "session_summaries"
    ]


def test_a_made_up_shown_value_is_read_as_an_older_page(editor_client, agent):
    for shown in ("[" * 1_000, '{"user_memories": "yes"}', '{"nope": 1}', "null", "{"):
        response = editor_client.post(
            settings_url(agent), memory_tab_data(session_summaries="on", shown=shown), **HTMX
        )
        assert response.status_code == 200, shown
        agent.refresh_from_db()
        assert agent.agno_settings["session_summaries"] is True  # the whole panel applies


def test_session_storage_off_turns_memories_off_and_the_page_says_why(editor_client, agent):
    insert_memory(agent, "ann", text="Kept.", topics=[])
    response = editor_client.post(
        settings_url(agent), memory_tab_data(session_storage=None), **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "they need session storage" in html
    assert "they need session storage" in json.loads(response["HX-Trigger"])["toast"]["message"]
    agent.refresh_from_db()
    assert agent.memory_settings.mode == "off" and not agent.memory_settings.session_storage
    assert [m.text for m in runtime.user_memories(agent, "ann").items] == ["Kept."]


def test_a_memory_mode_needs_session_storage_so_it_is_turned_on(editor_client, make_agent):
    agent = make_agent(settings=MemorySettings())
    editor_client.post(settings_url(agent), memory_tab_data(session_storage=None), **HTMX)
    agent.refresh_from_db()
    assert agent.memory_settings.session_storage and agent.memory_settings.mode == "manual"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_history_runs", "0"),
        ("num_history_runs", "abc"),
        ("max_tool_calls_from_history", "-1"),
        ("compress_tool_results_threshold", "1000"),
        ("num_history_runs", ""),
    ],
)
def test_bad_numbers_are_refused_with_a_message_and_nothing_changes(
    editor_client, agent, field, value
):
    before = dict(agent.agno_settings)
    response = editor_client.post(settings_url(agent), memory_tab_data(**{field: value}), **HTMX)
    assert response.status_code == 422
    assert "whole number" in response.content.decode()
    agent.refresh_from_db()
    assert agent.agno_settings == before
    assert not AuditEvent.objects.exists()


def test_a_viewer_cannot_toggle(viewer_client, agent):
    response = viewer_client.post(
        settings_url(agent), memory_tab_data(user_memories_agentic="on"), **HTMX
    )
    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.memory_settings.mode == "manual"
    page = viewer_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    assert "<fieldset disabled>" in page


def test_toggles_need_the_csrf_token(csrf_client, agent):
    response = csrf_client.post(
        settings_url(agent), memory_tab_data(user_memories_agentic="on"), **HTMX
    )
    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.memory_settings.mode == "manual"


def test_an_unknown_agent_is_404(editor_client):
    assert editor_client.get(reverse("agents:memory_tab", args=["nope"])).status_code == 404


def test_users_are_the_union_of_registered_and_runtime_ids(editor_client, agent):
    make_person("ann@example.com", first_name="Ann", last_name="Lee")
    make_person("dana@example.com", external_id="u_9")
    insert_memory(agent, "ann@example.com", text="x", topics=[])
    insert_memory(agent, "ann.lee@example.com", text="x", topics=[])
    insert_memory(agent, "u_9", text="x", topics=[])
    rows = {row.user_id: row for row in agent_users(agent).items}
    assert set(rows) == {"ann@example.com", "ann.lee@example.com", "dana@example.com", "u_9"}
    assert rows["ann@example.com"].registered.first_name == "Ann"
    assert (
        rows["ann.lee@example.com"].is_unregistered
        and not rows["ann.lee@example.com"].other_kind_match
    )
    assert rows["dana@example.com"].memory_count == 0
    # This agent keys by email, so Dana's id reaches nobody: named as the wrong key.
    assert rows["u_9"].other_kind_match.email == "dana@example.com"
    response = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    # The explanation under the table names both badges on every page: look at the rows.
    assert "will not reach the person you expect" in html
    unregistered = '<span class="badge warning" title="No registered user has this email or id">'
    assert unregistered in table_row(html, ">ann.lee@example.com</a>")
    assert ">Wrong key</span>" in table_row(html, ">u_9</a>")
    assert "Unregistered" not in table_row(html, ">ann@example.com</a>")
    assert "Wrong key" not in table_row(html, ">ann.lee@example.com</a>")


def test_users_search_by_prefix_returns_the_partial_for_htmx(editor_client, agent):
    for user_id in ["ann@example.com", "bob@example.com"]:
        insert_memory(agent, user_id, text="x", topics=[])
    url = reverse("agents:memory_tab", args=[agent.slug])
    response = editor_client.get(url, {"q": "bo"}, HTTP_HX_TARGET="users", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="users">')
    assert "bob@example.com" in html and "ann@example.com" not in html


def test_users_pages_follow_the_cursor_and_refuse_a_broken_one(editor_client, agent):
    for n in range(30):
        insert_memory(agent, f"user{n:02d}@example.com", text="x", topics=[])
    url = reverse("agents:memory_tab", args=[agent.slug])
    first = agent_users(agent)
    assert len(first.items) == 25 and first.next_cursor
    response = editor_client.get(url, {"after": first.next_cursor})
    assert "user29@example.com" in response.content.decode()
    assert "user00@example.com" not in response.content.decode()
    bad = editor_client.get(url, {"after": "not-a-cursor"})
    assert bad.status_code == 400
    assert "malformed or out of date" in bad.content.decode()


def test_small_pages_walk_every_user_once_in_order(agent, agno_db_for):
    """The loose index scan over memories and sessions: heavy users, users with sessions only
    and users in both, met once each, in user_id order, whatever the page size."""
    from agno.session import AgentSession

    agno = agno_db_for(agent)
    expected = set()
    for n in range(9):
        user_id = f"u{n}@example.com"
        if n % 3 != 2:  # memories for most; a heavy one among them
            for _ in range(40 if n == 1 else 2):
                insert_memory(agent, user_id, text="x", topics=[])
        if n % 3 != 0:  # sessions for others: some both, some sessions only
            session = AgentSession(session_id=f"s{n}", agent_id="a", user_id=user_id, created_at=n)
            agno.upsert_session(session)
        expected.add(user_id)
    for limit in (1, 2, 4, 25):
        seen, after = [], None
        while True:
            page = agent_users(agent, after=after, limit=limit)
            seen += [row.user_id for row in page.items]
            if not page.next_cursor:
                break
            after = page.next_cursor
        assert seen == sorted(expected), limit
