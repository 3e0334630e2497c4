"""Deleting one memory from the user page (memories.views.delete_memory)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from memories import runtime
from memories.models import AuditEvent, UserTokens
from tests.factories import (
    HTMX,
    make_memory,
    make_person,
    memory_texts,
    memory_url,
    run_queued_tasks,
    shown_version,
    user_page,
)


def test_delete_by_click_removes_the_row_and_updates_the_count(editor_client, agent):
    keep = make_memory(agent, "ann", "Keep.")
    gone = make_memory(agent, "ann", "Secret password hunter2.")
    url = memory_url(agent, gone.memory_id, "delete")
    shown = {"user_id": "ann", "version": gone.version}
    response = editor_client.post(url, shown, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<tr" not in html  # the row's place is emptied
    assert 'id="user-summary" class="stats" hx-swap-oob="true"' in html
    assert '<span class="stat-value">1</span><span class="stat-label">memories</span>' in html
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Memory deleted."
    assert memory_texts(agent, "ann") == ["Keep."]
    event = AuditEvent.objects.get(action="memory.deleted")
    assert event.memory_id == gone.memory_id and event.user_id == "ann"
    assert "hunter2" not in json.dumps(event.details)
    run_queued_tasks()  # the worker recounts the user, off the request
    assert (
        UserTokens.objects.get(agent=agent, user_id="ann").memories == 1
    )  # recounted by the worker
    again = editor_client.post(url, shown, **HTMX)
    assert again.status_code == 404
    assert memory_texts(agent, "ann") == ["Keep."]
    assert runtime.get_memory(agent, "ann", keep.memory_id).text == "Keep."


def test_the_summary_after_a_delete_keeps_the_users_time_zone(editor_client, agent):
    make_person("ann@example.com", timezone="Asia/Tokyo")
    gone = make_memory(agent, "ann@example.com", "Gone.")
    kept = make_memory(agent, "ann@example.com", "Kept.")
    response = editor_client.post(
        memory_url(agent, gone.memory_id, "delete"),
        {"user_id": "ann@example.com", "version": gone.version},
        **HTMX,
    )
    assert response.status_code == 200
    # The page shows the last update in the user's own zone; the swapped-in count must too.
    tokyo = datetime.fromtimestamp(kept.updated_at, tz=ZoneInfo("Asia/Tokyo"))
    assert f'title="{tokyo:%Y-%m-%d %H:%M:%S} Asia/Tokyo"' in response.content.decode()
    assert memory_texts(agent, "ann@example.com") == ["Kept."]


def test_a_viewer_cannot_delete_a_memory(viewer_client, agent):
    memory = make_memory(agent, "ann", "Stays.")
    response = viewer_client.post(
        memory_url(agent, memory.memory_id, "delete"),
        {"user_id": "ann", "version": memory.version},
    )
    assert response.status_code == 403
    assert memory_texts(agent, "ann") == ["Stays."]
    assert not AuditEvent.objects.exists()


def test_deleting_needs_the_csrf_token(csrf_client, agent):
    memory = make_memory(agent, "ann", "Stays.")
    response = csrf_client.post(
        memory_url(agent, memory.memory_id, "delete"),
        {"user_id": "ann", "version": memory.version},
        **HTMX,
    )
    assert response.status_code == 403
    assert memory_texts(agent, "ann") == ["Stays."]
    assert not AuditEvent.objects.exists()


def test_a_plain_delete_redirects_back_to_the_users_page(editor_client, agent):
    memory = make_memory(agent, "a/b", "Gone.")
    make_memory(agent, "a/b", "Stays.")
    response = editor_client.post(
        memory_url(agent, memory.memory_id, "delete"),
        {"user_id": "a/b", "version": memory.version},
    )
    assert response.status_code == 302 and response["Location"] == user_page(agent, "a/b")
    assert memory_texts(agent, "a/b") == ["Stays."]
    assert AuditEvent.objects.get(action="memory.deleted").memory_id == memory.memory_id
    follow = editor_client.get(response["Location"])
    assert "Memory deleted." in follow.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_memory_deleted_in_the_dashboard_is_gone_for_agno(agent, agno_db_for, editor):
    from agno.db.schemas.memory import UserMemory
    from django.test import Client

    client = Client()
    client.force_login(editor)
    agno = agno_db_for(agent)
    kept = agno.upsert_user_memory(UserMemory(memory="Keep.", user_id="ann"))
    gone = agno.upsert_user_memory(UserMemory(memory="Card 4111 1111 1111 1111.", user_id="ann"))
    shown = {"user_id": "ann", "version": shown_version(agent, gone.memory_id)}
    response = client.post(memory_url(agent, gone.memory_id, "delete"), shown, **HTMX)
    assert response.status_code == 200
    assert '<span class="stat-value">1</span><span class="stat-label">memories</span>' in (
        response.content.decode()
    )
    assert [m.memory_id for m in agno.get_user_memories(user_id="ann")] == [kept.memory_id]
    assert AuditEvent.objects.get(action="memory.deleted").memory_id == gone.memory_id


@pytest.mark.django_db(transaction=True)
def test_a_memory_the_agent_rewrote_is_shown_again_before_it_is_deleted(
    editor_client, agent, agno_db_for
):
    from agno.db.schemas.memory import UserMemory

    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Likes tea.", user_id="ann"))
    shown = runtime.get_memory(agent, "ann", "m1").version
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Likes coffee now.", user_id="ann"))
    url = memory_url(agent, "m1", "delete")
    refused = editor_client.post(url, {"user_id": "ann", "version": shown}, **HTMX)
    html = refused.content.decode()
    assert refused.status_code == 409 and "Likes coffee now." in html and "Delete anyway" in html
    assert agno.get_user_memory("m1").memory == "Likes coffee now."
    assert not AuditEvent.objects.filter(action="memory.deleted").exists()
    current = runtime.get_memory(agent, "ann", "m1").version
    assert f'name="version" value="{current}"' in html  # "Delete anyway" is one click
    again = editor_client.post(url, {"user_id": "ann", "version": current}, **HTMX)
    assert again.status_code == 200 and agno.get_user_memory("m1") is None
