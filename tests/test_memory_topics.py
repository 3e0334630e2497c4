"""The topic filter's options (memories.views.memory_topics), loaded when the filter is used."""

from __future__ import annotations

import re

from django.urls import reverse

from memories import runtime
from memories.models import AuditEvent
from tests.factories import HTMX, make_memory, user_page


def topic_options(html: str) -> list[str]:
    select = re.search(r'<select name="topic".*?</select>', html, re.S)
    return re.findall(r'<option value="([^"]*)"', select.group() if select else html)


def test_topics_load_on_demand_and_keep_the_chosen_one(editor_client, agent):
    make_memory(agent, "ann", "a", ["billing", "style"])
    make_memory(agent, "ann", "b", ["billing"])
    make_memory(agent, "bob", "c", ["secret-bob-topic"])
    page = editor_client.get(user_page(agent, "ann", topic="style"))
    assert page.status_code == 200
    html = page.content.decode()
    # Before the list is loaded the filter holds only the chosen topic.
    assert '<option value="style" selected>style</option>' in html
    assert topic_options(html) == ["", "style"]
    options = editor_client.get(
        reverse("memories:topics", args=[agent.slug]), {"user_id": "ann", "topic": "style"}, **HTMX
    )
    assert options.status_code == 200
    html = options.content.decode()
    assert topic_options(html) == ["", "billing", "style"]
    assert re.search(r'<option value="billing"\s*>billing</option>', html)
    assert '<option value="style" selected>style</option>' in html
    assert "secret-bob-topic" not in html
    assert runtime.memory_topics(agent, "ann") == ["billing", "style"]
    assert not AuditEvent.objects.exists()
