"""The rules pages show, decided in Python once: templates only display their answers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.memory_settings import MemorySettings
from memories.runtime.memories import insert_memory


@pytest.mark.parametrize(
    ("settings", "label"),
    [
        (MemorySettings(session_storage=True, agentic_memory=True), "Agentic"),
        (MemorySettings(session_storage=True, user_memories=True), "Manual"),
        (MemorySettings(session_storage=True), "Off"),
        (MemorySettings(), "Off"),
    ],
)
def test_the_mode_label_names_the_mode(settings, label):
    assert settings.mode_label == label


def test_every_page_shows_the_same_mode_label(editor_client, make_agent):
    agent = make_agent(settings=MemorySettings(session_storage=True, agentic_memory=True))
    insert_memory(agent, "ann@example.com", text="Prefers tea.", topics=[])
    user_page = reverse("memories:user", args=[agent.slug])
    pages = {
        "list": editor_client.get(reverse("agents:list")),
        "tab": editor_client.get(reverse("agents:memory_tab", args=[agent.slug])),
        "user": editor_client.get(user_page, {"user_id": "ann@example.com"}),
    }
    html = {name: page.content.decode() for name, page in pages.items()}
    assert all(page.status_code == 200 for page in pages.values())
    assert '<span class="mode mode-agentic">Agentic</span>' in html["list"]
    assert '<span class="mode mode-agentic">Agentic</span>' in html["tab"]
    assert '<span class="stat-value">Agentic</span>' in html["user"]
