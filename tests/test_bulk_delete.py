"""Deleting the selected memories of one user (memories.views.bulk_delete): all or none."""

from __future__ import annotations

import json

from django.urls import reverse

from memories.models import AuditEvent, UserTokens
from tests.factories import (
    HTMX,
    make_memories,
    make_memory,
    memory_texts,
    run_queued_tasks,
    user_page,
)


def test_bulk_delete_confirms_the_count_without_javascript(editor_client, agent):
    ids = [memory.memory_id for memory in make_memories(agent, "ann", 3, text="Fact {n}")]
    url = reverse("memories:bulk_delete", args=[agent.slug])
    confirm = editor_client.post(url, {"user_id": "ann", "memory_ids": ids[:2]})
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Delete 2 memories of" in html
    assert "<li>Fact 0</li>" in html and "<li>Fact 1</li>" in html and "Fact 2" not in html
    assert len(memory_texts(agent, "ann")) == 3  # nothing yet
    assert not AuditEvent.objects.exists()
    done = editor_client.post(url, {"user_id": "ann", "memory_ids": ids[:2], "confirmed": "1"})
    assert done.status_code == 302 and done["Location"] == user_page(agent, "ann")
    assert "2 memories deleted." in editor_client.get(done["Location"]).content.decode()
    assert memory_texts(agent, "ann") == ["Fact 2"]
    event = AuditEvent.objects.get(action="memories.bulk_deleted")
    assert event.details["count"] == 2 and sorted(event.details["memory_ids"]) == sorted(ids[:2])


def test_bulk_delete_via_htmx_returns_the_refreshed_list(editor_client, agent):
    ids = [memory.memory_id for memory in make_memories(agent, "ann", 3, text="Fact {n}")]
    response = editor_client.post(
        reverse("memories:bulk_delete", args=[agent.slug]),
        {
            "user_id": "ann",
            "memory_ids": ids[1:],
            "confirmed": "1",
            "q": "",
            "topic": "",
            "sort": "-updated",
        },
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="memory-list">')
    assert "Fact 0" in html and "Fact 1" not in html and "Fact 2" not in html
    assert '<span class="stat-value">1</span><span class="stat-label">memories</span>' in html
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "2 memories deleted."
    assert memory_texts(agent, "ann") == ["Fact 0"]
    assert AuditEvent.objects.get(action="memories.bulk_deleted").details["count"] == 2
    run_queued_tasks()  # the worker recounts the user, off the request
    assert (
        UserTokens.objects.get(agent=agent, user_id="ann").memories == 1
    )  # recounted by the worker


def test_a_bulk_delete_naming_another_users_memory_is_refused_whole(editor_client, make_agent):
    agent, other_agent = make_agent(), make_agent()
    mine = make_memory(agent, "ann", "Mine.")
    bobs = make_memory(agent, "bob", "Bob's.")
    elsewhere = make_memory(other_agent, "ann", "Other agent.")
    url = reverse("memories:bulk_delete", args=[agent.slug])
    for foreign in (bobs, elsewhere):
        response = editor_client.post(
            url,
            {"user_id": "ann", "memory_ids": [mine.memory_id, foreign.memory_id], "confirmed": "1"},
            **HTMX,
        )
        assert response.status_code == 400
        assert "Nothing was deleted" in response["HX-Trigger"]
    assert memory_texts(agent, "ann") == ["Mine."] and memory_texts(agent, "bob") == ["Bob's."]
    assert memory_texts(other_agent, "ann") == ["Other agent."]
    assert not AuditEvent.objects.exists()
