"""Searching memory text across every user of an agent
(memories.import_export_views.search_memories)."""

from __future__ import annotations

from django.urls import reverse

from memories.models import AuditEvent
from tests.factories import HTMX, make_memory, memory_texts


def test_search_finds_memories_of_every_user(editor_client, agent):
    make_memory(agent, "ann", "Renewal is in November.")
    make_memory(agent, "bob", "Renewal is in May.")
    make_memory(agent, "bob", "Likes tea.")
    url = reverse("memories:search", args=[agent.slug])
    response = editor_client.get(url, {"q": "renewal"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Renewal is in November." in html and "Renewal is in May." in html
    assert "tea" not in html
    partial = editor_client.get(url, {"q": "TEA"}, HTTP_HX_TARGET="search-results", **HTMX)
    assert partial.status_code == 200
    html = partial.content.decode()
    assert html.lstrip().startswith('<div id="search-results">') and "Likes tea." in html
    assert "Renewal" not in html
    assert memory_texts(agent, "bob") == ["Likes tea.", "Renewal is in May."]
    assert not AuditEvent.objects.exists()


def test_a_broken_search_cursor_is_400(editor_client, agent):
    make_memory(agent, "ann", "x")
    response = editor_client.get(
        reverse("memories:search", args=[agent.slug]), {"q": "x", "after": "???"}
    )
    assert response.status_code == 400
    assert "malformed" in response.content.decode()
    assert memory_texts(agent, "ann") == ["x"]
