"""The cost panel (memories.cost_views) and the calculator behind it (memories.cost)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.memory_settings import MemorySettings
from memories import cost, tokens
from memories.models import AuditEvent
from tests.factories import HTMX, make_memory, table_row

INPUTS = {
    "conversations_per_month": "100000",
    "turns_per_conversation": "5",
    "price_per_million": "2.5",
    "extraction_tokens_per_call": "1000",
    "token_budget": "10",
}


def test_the_calculator_gives_the_figures_of_known_inputs():
    inputs = cost.CostInputs(
        conversations_per_month=100_000,
        turns_per_conversation=5,
        price_per_million=2.5,
        extraction_tokens_per_call=1_000,
    )
    manual = cost.monthly_cost(inputs, tokens_per_user=1_000, agentic=False)
    assert manual.memory_tokens == 500_000_000 and manual.memory_cost == pytest.approx(1_250.0)
    assert manual.extraction_calls == 0 and manual.total == pytest.approx(1_250.0)
    agentic = cost.monthly_cost(inputs, tokens_per_user=1_000, agentic=True)
    assert agentic.extraction_calls == 100_000  # one extra call per conversation
    assert agentic.extraction_tokens == 200_000_000
    assert agentic.total == pytest.approx(1_250.0 + 500.0)


def test_the_cost_panel_saves_inputs_and_budget(editor_client, make_agent):
    agent = make_agent(settings=MemorySettings(session_storage=True, agentic_memory=True))
    make_memory(agent, "ann", "Prefers concise answers.")
    counted = tokens.recount_user(agent, "ann")
    url = reverse("memories:cost", args=[agent.slug])
    response = editor_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert " tokens: 1 user</title>" in page  # ann's bar in the histogram
    assert "Extraction calls" in page
    heaviest = table_row(page, ">ann</a>")
    assert f'<td class="num">1</td><td class="num">{counted:,}</td>' in heaviest
    save_url = reverse("memories:save_cost", args=[agent.slug])
    saved = editor_client.post(save_url, INPUTS, **HTMX)
    assert saved.status_code == 200 and "100,000 extra calls" in saved.content.decode()
    agent.refresh_from_db()
    assert agent.token_budget == 10
    assert agent.cost_inputs == {
        "conversations_per_month": 100_000,
        "turns_per_conversation": 5,
        "price_per_million": 2.5,
        "extraction_tokens_per_call": 1_000,
    }
    assert AuditEvent.objects.get(action="cost.changed").details["token_budget"] == 10
    bad = editor_client.post(save_url, {**INPUTS, "turns_per_conversation": "0"}, **HTMX)
    assert bad.status_code == 422
    assert '<p class="field-error">' in bad.content.decode()
    agent.refresh_from_db()
    assert agent.cost_inputs["turns_per_conversation"] == 5  # nothing was saved
    assert AuditEvent.objects.filter(action="cost.changed").count() == 1
    tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]), {"sort": "over"})
    assert tab.status_code == 200
    assert "Over budget" in table_row(tab.content.decode(), ">ann<")


def test_a_viewer_reads_the_cost_panel_but_cannot_save(viewer_client, agent):
    response = viewer_client.get(reverse("memories:cost", args=[agent.slug]))
    assert response.status_code == 200
    assert '<fieldset disabled class="stack">' in response.content.decode()
    for data in (INPUTS, {"token_budget": "1"}):
        saved = viewer_client.post(reverse("memories:save_cost", args=[agent.slug]), data)
        assert saved.status_code == 403
    agent.refresh_from_db()
    assert agent.token_budget == 0 and not agent.cost_inputs
    assert not AuditEvent.objects.exists()


def test_agentic_modes_cost_sentence_says_calls_come_from_the_memory_tool(
    editor_client, make_agent
):
    agent = make_agent(settings=MemorySettings(session_storage=True, agentic_memory=True))
    tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    assert "each time it calls it agno makes one extra model call; none when it does not" in tab
    page = editor_client.get(reverse("memories:cost", args=[agent.slug])).content.decode()
    assert "each call of the agent's memory tool adds one model call" in page
