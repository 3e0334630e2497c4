"""The user page (memories.views.user_memories): one user's memories, filters, pages."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from memories import runtime
from memories.models import AuditEvent, SensitiveFlag
from tests.factories import (
    HTMX,
    make_memories,
    make_memory,
    make_person,
    memory_texts,
    table_row,
    user_page,
)


def test_it_shows_a_users_memories_with_topics_input_and_times(editor_client, agent):
    make_person("ann@example.com", first_name="Ann", timezone="Asia/Tokyo")
    memory = make_memory(
        agent,
        "ann@example.com",
        "Prefers concise answers.",
        ["style", "prefs"],
        input_text="Keep it short.",
    )
    response = editor_client.get(user_page(agent, "ann@example.com"))
    assert response.status_code == 200
    row = table_row(response.content.decode(), f'data-memory-id="{memory.memory_id}"')
    assert "Prefers concise answers." in row
    assert '<span class="chip">style</span><span class="chip">prefs</span>' in row
    assert "<summary>Input</summary><p>Keep it short.</p>" in row
    # The exact time is shown in the user's own zone (the header only names the zone).
    tokyo = datetime.fromtimestamp(memory.created_at, tz=ZoneInfo("Asia/Tokyo"))
    assert f'title="{tokyo:%Y-%m-%d %H:%M:%S} Asia/Tokyo"' in row
    assert memory_texts(agent, "ann@example.com") == ["Prefers concise answers."]
    assert not AuditEvent.objects.exists()  # reading records nothing


def test_htmx_filtering_returns_only_the_list(editor_client, agent):
    make_memory(agent, "ann", "Renewal is in November.", ["billing"])
    make_memory(agent, "ann", "Likes tea.", ["drinks"])
    response = editor_client.get(
        user_page(agent, "ann", topic="billing"), HTTP_HX_TARGET="memory-list", **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="memory-list">') and "<html" not in html
    assert "Renewal is in November." in html and "Likes tea." not in html
    searched = editor_client.get(
        user_page(agent, "ann", q="TEA"), HTTP_HX_TARGET="memory-list", **HTMX
    )
    assert searched.status_code == 200
    assert "Likes tea." in searched.content.decode() and "Renewal" not in searched.content.decode()
    assert memory_texts(agent, "ann") == ["Likes tea.", "Renewal is in November."]


def test_it_sorts_by_created_and_pages_with_a_cursor(editor_client, agent):
    make_memories(
        agent,
        "ann",
        30,
        text="Fact {n:02d}",
        created_at=lambda n: 1_000 + n,
        updated_at=lambda n: 5_000 - n,
    )
    response = editor_client.get(user_page(agent, "ann", sort="created"))
    assert response.status_code == 200
    oldest = response.content.decode()
    assert re.findall(r">(Fact \d\d)</a>", oldest) == [f"Fact {n:02d}" for n in range(25)]
    assert "Next page" in oldest
    newest = runtime.user_memories(agent, "ann", sort="-created")
    second = editor_client.get(user_page(agent, "ann", sort="-created", after=newest.next_cursor))
    assert second.status_code == 200
    assert re.findall(r">(Fact \d\d)</a>", second.content.decode()) == [
        "Fact 04",
        "Fact 03",
        "Fact 02",
        "Fact 01",
        "Fact 00",
    ]
    assert "Next page" not in second.content.decode()
    assert len(memory_texts(agent, "ann")) == 30


def test_an_unknown_user_is_404(editor_client, agent):
    response = editor_client.get(user_page(agent, "nobody"))
    assert response.status_code == 404
    assert "No memories, sessions or registration for user_id “nobody”" in (
        response.content.decode()
    )
    with runtime.in_agent_schema(agent) as tables:
        assert not tables.any  # looking created nothing in the runtime's schema


def test_a_broken_cursor_is_400(editor_client, agent):
    make_memory(agent, "ann", "x")
    response = editor_client.get(user_page(agent, "ann", after="%%%"))
    assert response.status_code == 400
    assert "malformed" in response.content.decode()
    assert memory_texts(agent, "ann") == ["x"]


def test_a_link_without_a_user_id_is_400(editor_client, agent):
    response = editor_client.get(reverse("memories:user", args=[agent.slug]))
    assert response.status_code == 400
    assert "the link is missing its user_id" in response.content.decode()
    with runtime.in_agent_schema(agent) as tables:
        assert not tables.any


def test_a_viewer_sees_no_write_controls(viewer_client, editor_client, agent):
    make_memory(agent, "ann", "Stays.")
    edit_url = reverse("memories:edit", args=[agent.slug])  # rows add ?user_id=…&memory_id=…
    delete_url = reverse("memories:delete", args=[agent.slug])
    controls = [edit_url, delete_url, "Delete selected", "Add a memory"]
    editors = editor_client.get(user_page(agent, "ann")).content.decode()
    assert all(control in editors for control in controls)  # what the viewer must not see
    response = viewer_client.get(user_page(agent, "ann"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Stays." in page
    assert [control for control in controls if control in page] == []
    assert memory_texts(agent, "ann") == ["Stays."]


def test_the_sensitive_filter_shows_only_flagged_memories(editor_client, agent):
    secret = make_memory(agent, "ann", "Her password is Tulip-2024!")
    make_memory(agent, "ann", "Renewal is in November.")
    response = editor_client.get(user_page(agent, "ann", sensitive="1"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Renewal is in November." not in html
    row = table_row(html, "Tulip-2024!")
    assert '<span class="badge danger">Password</span>' in row
    # The filter scans the user on the spot and keeps what it found.
    flag = SensitiveFlag.objects.get(agent=agent)
    assert (flag.memory_id, flag.user_id, flag.kinds) == (secret.memory_id, "ann", ["password"])


@pytest.mark.django_db(transaction=True)
def test_a_page_runs_the_same_queries_for_10_or_1000_memories(
    editor_client, agent, django_assert_max_num_queries
):
    # Transactional, so the count is what production runs (no test savepoints around it).
    make_person("ann@example.com", timezone="Europe/Berlin")
    counts, made = [], 0
    for total in (10, 1000):
        make_memories(
            agent,
            "ann@example.com",
            total - made,
            text="Fact {n}",
            topics=lambda n: ["a", f"t{n % 7}"],
        )
        made = total
        with django_assert_max_num_queries(9), CaptureQueriesContext(connection) as queries:
            response = editor_client.get(user_page(agent, "ann@example.com"))
        assert response.status_code == 200
        assert response.content.decode().count('class="memory-row"') == min(
            total, runtime.PAGE_SIZE
        )
        assert runtime.user_summary(agent, "ann@example.com").memory_count == total
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # session, user with permissions, agent, schema switch, memories with the summary,
    # flags, person; plus the BEGIN and COMMIT of the runtime transaction.
    assert counts[1] <= 9


def test_a_row_shows_feedback_agent_and_team_and_a_bare_string_topic(
    editor_client, agent, agno_db_for
):
    from agno.db.schemas.memory import UserMemory

    agno = agno_db_for(agent)
    # agno accepts topics as a bare string and stores it as one JSON string.
    agno.upsert_user_memory(
        UserMemory(
            memory_id="m1",
            memory="Flies to Lisbon in May.",
            user_id="ann",
            topics="travel",
            feedback="Operator: confirmed by phone",
            agent_id="travel-agent",
            team_id="concierge",
        )
    )
    agno.upsert_user_memory(UserMemory(memory_id="m2", memory="Plain.", user_id="ann"))
    assert agno.get_user_memory("m1").topics == "travel"
    response = editor_client.get(user_page(agent, "ann"))
    assert response.status_code == 200
    html = response.content.decode()
    row = table_row(html, 'data-memory-id="m1"')
    assert '<span class="chip">travel</span>' in row and "no topics" not in row
    assert "<summary>Details</summary>" in row
    for label, value in (
        ("Feedback", "Operator: confirmed by phone"),
        ("agent_id", "travel-agent"),
        ("team_id", "concierge"),
    ):
        assert f'<p><span class="muted small">{label}</span> {value}</p>' in row
    plain = table_row(html, 'data-memory-id="m2"')
    assert "<summary>Details</summary>" not in plain and "no topics" in plain
