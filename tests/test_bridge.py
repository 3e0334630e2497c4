"""The Memory tab reaches running agents: a token-guarded endpoint, real agno Agent kwargs."""

from __future__ import annotations

import re

import pytest
from agno.agent import Agent as AgnoAgent
from agno.db.postgres import PostgresDb
from django.urls import reverse

from agents.agno_bridge import agno_agent_kwargs
from agents.memory_settings import MemorySettings
from memories.models import AuditEvent
from tests.factories import sqlalchemy_url


def token_in(response) -> str:
    """The new token, read off the page the way a person would copy it."""
    match = re.search(r'<code class="token">(ms_[A-Za-z0-9_-]+)</code>', response.content.decode())
    assert match, "the new token is shown"
    return match.group(1)


MODES = {
    "off": MemorySettings(session_storage=True, num_history_runs=4),
    "manual": MemorySettings(
        session_storage=True, user_memories=True, max_tool_calls_from_history=2
    ),
    "agentic": MemorySettings(
        session_storage=True,
        agentic_memory=True,
        session_summaries=True,
        compress_tool_results_threshold=4,
    ),
    "nothing stored": MemorySettings(),
}


@pytest.mark.parametrize("mode", MODES)
def test_a_real_agno_agent_is_built_from_each_mode(db, make_agent, mode):
    settings = MODES[mode]
    agent = make_agent(settings=settings)
    url = sqlalchemy_url()
    kwargs = agno_agent_kwargs(agent.agno_settings, db_schema=agent.db_schema, db_url=url)
    built = AgnoAgent(**kwargs)
    if settings.session_storage:
        assert isinstance(built.db, PostgresDb) and built.db.db_schema == agent.db_schema
        built.db.db_engine.dispose()
    else:
        assert built.db is None
    assert built.add_history_to_context is settings.session_storage
    assert built.num_history_runs == settings.num_history_runs
    assert built.max_tool_calls_from_history == (settings.max_tool_calls_from_history or None)
    assert built.enable_agentic_memory is (mode == "agentic")
    assert built.add_memories_to_context is (mode in ("manual", "agentic"))
    assert built.update_memory_on_run is False  # manual: the agent reads, your code writes
    assert built.enable_session_summaries is settings.session_summaries
    assert built.compress_tool_results is (settings.compress_tool_results_threshold > 0)
    if built.compress_tool_results:
        assert built.compression_manager.compress_tool_results_limit == 4


def test_the_endpoint_needs_the_agents_token(client, editor_client, agent):
    url = reverse("agents:settings_api", args=[agent.slug])
    assert client.get(url).status_code == 401
    response = editor_client.post(
        reverse("agents:bridge_rotate", args=[agent.slug]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    token = token_in(response)
    assert client.get(url, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert (
        client.get(
            reverse("agents:settings_api", args=["nope"]), HTTP_AUTHORIZATION=f"Bearer {token}"
        ).status_code
        == 401
    )
    ok = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ok.status_code == 200 and "no-store" in ok["Cache-Control"]
    assert client.head(url, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert client.head(url).status_code == 401
    payload = ok.json()
    assert payload["db_schema"] == agent.db_schema
    assert payload["agno_settings"]["user_memories"] is True
    assert payload["agent_kwargs"]["add_memories_to_context"] is True
    assert payload["agent_kwargs"]["enable_agentic_memory"] is False
    agent.refresh_from_db()
    assert token not in agent.bridge_token_hash  # only a hash is stored
    assert AuditEvent.objects.get().action == "bridge.token_rotated"


def test_rotating_retires_the_old_token_and_viewers_cannot(
    client, editor_client, viewer_client, agent
):
    rotate = reverse("agents:bridge_rotate", args=[agent.slug])
    old = token_in(editor_client.post(rotate, HTTP_HX_REQUEST="true"))
    new = token_in(editor_client.post(rotate))
    url = reverse("agents:settings_api", args=[agent.slug])
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {old}").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {new}").status_code == 200
    assert viewer_client.post(rotate).status_code == 403
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {new}").status_code == 200


def test_settings_with_no_agno_counterpart_are_named_not_guessed(client, editor_client, make_agent):
    agent = make_agent(
        settings=MemorySettings(session_storage=True, user_memories=True, agent_memories=True)
    )
    token = token_in(editor_client.post(reverse("agents:bridge_rotate", args=[agent.slug])))
    payload = client.get(
        reverse("agents:settings_api", args=[agent.slug]), HTTP_AUTHORIZATION=f"Bearer {token}"
    ).json()
    assert "agent_memories" in payload["unsupported"]
    assert "learning" not in payload["agent_kwargs"]
    tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    assert "no org-wide memory switch" in tab


def test_the_page_showing_a_new_token_is_never_cached(editor_client, agent):
    rotate = reverse("agents:bridge_rotate", args=[agent.slug])
    for response in (
        editor_client.post(rotate, HTTP_HX_REQUEST="true"),
        editor_client.post(rotate),
    ):
        assert response.status_code == 200 and token_in(response)
        assert "no-store" in response["Cache-Control"]
    tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]))
    assert not re.search(r'class="token"', tab.content.decode())  # the tab never shows one


def test_an_agent_built_from_the_api_writes_the_tables_it_renamed(
    client, editor_client, make_agent, transactional_db
):
    from agno.db.schemas.memory import UserMemory

    from memories import runtime

    agent = make_agent(memory_table="bot_memories", session_table="bot_chats")
    token = token_in(editor_client.post(reverse("agents:bridge_rotate", args=[agent.slug])))
    payload = client.get(
        reverse("agents:settings_api", args=[agent.slug]), HTTP_AUTHORIZATION=f"Bearer {token}"
    ).json()
    assert payload["tables"] == {"memory_table": "bot_memories", "session_table": "bot_chats"}
    kwargs = agno_agent_kwargs(
        payload["agno_settings"],
        db_schema=payload["db_schema"],
        db_url=sqlalchemy_url(),
        tables=payload["tables"],
    )
    built = AgnoAgent(**kwargs)
    try:
        assert (built.db.memory_table_name, built.db.session_table_name) == (
            "bot_memories",
            "bot_chats",
        )
        written = built.db.upsert_user_memory(UserMemory(memory="Renamed.", user_id="ann"))
    finally:
        built.db.db_engine.dispose()
    # The dashboard reads it where the agent is registered to keep it.
    assert runtime.get_memory(agent, "ann", written.memory_id).text == "Renamed."
