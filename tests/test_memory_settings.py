"""The Memory tab's rules live on the model: whoever saves, the invariants hold."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection

from agents.memory_settings import MemorySettings, apply_changes, merge_changes
from agents.models import Agent
from memories import actions
from memories.models import AuditEvent

MANUAL = MemorySettings(session_storage=True, user_memories=True)
AGENTIC = MemorySettings(session_storage=True, agentic_memory=True)


def test_defaults_are_all_off():
    settings = MemorySettings.from_json({})
    assert settings.mode == "off"
    assert not settings.session_storage and not settings.agent_memories


def test_unknown_keys_are_kept_when_saving():
    merged = MANUAL.to_json({"model": "gpt-4o", "user_memories": False})
    assert merged["model"] == "gpt-4o" and merged["user_memories"] is True


def test_agentic_mode_turns_manual_mode_off():
    result, notes = apply_changes(
        MANUAL, MemorySettings(session_storage=True, user_memories=True, agentic_memory=True)
    )
    assert result.mode == "agentic" and not result.user_memories
    assert notes == ["Manual mode was turned off: agentic memory replaces it."]


def test_manual_mode_turns_agentic_mode_off():
    result, _ = apply_changes(
        AGENTIC, MemorySettings(session_storage=True, user_memories=True, agentic_memory=True)
    )
    assert result.mode == "manual" and not result.agentic_memory


def test_turning_session_storage_off_turns_the_memory_mode_off_and_says_so():
    result, notes = apply_changes(
        AGENTIC, MemorySettings(session_storage=False, agentic_memory=True)
    )
    assert result.mode == "off" and not result.session_storage
    assert "need session storage" in notes[0] and "No memory was deleted" in notes[0]


def test_turning_a_mode_on_without_session_storage_turns_storage_on():
    result, notes = apply_changes(MemorySettings(), MemorySettings(user_memories=True))
    assert result.session_storage and result.mode == "manual"
    assert notes == ["Session storage was turned on too: user memories need it."]


def test_a_stale_page_turning_memories_off_turns_off_the_mode_someone_else_chose():
    shown = MemorySettings(session_storage=True, user_memories=True)  # manual, on the page
    current = replace(shown, user_memories=False, agentic_memory=True)  # meanwhile: agentic
    requested = replace(shown, user_memories=False)  # the person turns memories off
    merged = merge_changes(current, shown, requested)
    assert merged.mode == "off" and merged.session_storage
    # A change to another switch leaves the mode as it is now.
    summaries = merge_changes(current, shown, replace(shown, session_summaries=True))
    assert summaries.mode == "agentic" and summaries.session_summaries


def test_agentic_agent_memories_need_agent_memories():
    result, _ = apply_changes(MemorySettings(), MemorySettings(agentic_agent_memories=True))
    assert result.agent_memories and result.agentic_agent_memories
    on = MemorySettings(agent_memories=True, agentic_agent_memories=True)
    result, _ = apply_changes(on, MemorySettings(agentic_agent_memories=True))
    assert not result.agent_memories and not result.agentic_agent_memories


@pytest.mark.parametrize(
    "bad",
    [
        MemorySettings(session_storage=True, user_memories=True, agentic_memory=True),
        MemorySettings(user_memories=True),
        MemorySettings(agentic_memory=True),
        MemorySettings(num_history_runs=0),
        MemorySettings(max_tool_calls_from_history=-1),
    ],
)
def test_the_model_refuses_to_save_a_broken_combination(db, bad):
    agent = Agent(name="A", slug="a", db_schema="agent_a", agno_settings=bad.to_json())
    with pytest.raises(ValidationError):
        agent.save()
    assert not Agent.objects.filter(slug="a").exists()


def test_the_database_refuses_both_modes_even_past_the_model(db):
    agent = Agent.objects.create(
        name="A", slug="a", db_schema="agent_a", agno_settings=MANUAL.to_json()
    )
    with pytest.raises(IntegrityError), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE agents_agent SET agno_settings = agno_settings || %s::jsonb WHERE id = %s",
            ['{"agentic_memory": true}', agent.pk],
        )


@pytest.mark.parametrize(
    "name", ["Agent", "1abc", "a-b", "public", "pg_temp", 'x"; drop', "a" * 64, ""]
)
def test_schema_names_are_validated(db, name):
    with pytest.raises(ValidationError):
        Agent(name="A", slug="a", db_schema=name).save()


def test_admin_refuses_a_schema_name_with_sql_in_it_and_says_why(db):
    from django.contrib.auth.models import User
    from django.test import Client

    admin = User.objects.create_superuser("root", "root@example.com", "x" * 16)
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/agents/agent/add/",
        {
            "name": "Evil",
            "slug": "evil",
            "db_schema": "x; DROP SCHEMA public",
            "user_id_kind": "email",
            "agno_settings": "{}",
        },
    )
    assert response.status_code == 200
    assert "A schema name starts with a lowercase letter" in response.content.decode()
    assert not Agent.objects.exists()


@pytest.mark.parametrize("stored", ["false", "False", " 0 ", "off", "", 0, 2, None, [], {}])
def test_only_a_true_value_turns_a_switch_on(stored):
    assert MemorySettings.from_json({"session_storage": stored}).session_storage is False


@pytest.mark.parametrize("stored", [True, 1, "true", "on"])
def test_true_values_turn_a_switch_on(stored):
    assert MemorySettings.from_json({"session_storage": stored}).session_storage is True


def test_an_infinite_or_nan_number_reads_as_the_default():
    for stored in (float("inf"), float("-inf"), float("nan"), "1e999", "x"):
        assert MemorySettings.from_json({"num_history_runs": stored}).num_history_runs == 3


def test_the_settings_action_refuses_a_stale_page_when_asked(agent):
    stored = agent.memory_settings
    shown = MemorySettings(session_storage=True)  # memories were off on that page
    with pytest.raises(actions.StaleSettings) as stale:
        actions.change_settings(
            actor=None, agent=agent, requested=shown, shown=shown, refuse_stale=True
        )
    assert stale.value.current == stored
    assert "(now user memories on)" in stale.value.message
    agent.refresh_from_db()
    assert agent.memory_settings == stored and not AuditEvent.objects.exists()


def test_a_save_writes_settings_stored_in_another_form_as_plain_json(agent):
    # Running agents read agno_settings as stored: "false" would be true to most of them.
    odd = {**agent.agno_settings, "session_summaries": "false", "agent_memories": 0}
    del odd["num_history_runs"]
    Agent.objects.filter(pk=agent.pk).update(agno_settings=odd)
    agent.refresh_from_db()
    change = actions.change_settings(actor=None, agent=agent, requested=agent.memory_settings)
    assert change.message == "Nothing changed."
    agent.refresh_from_db()
    assert agent.agno_settings == MANUAL.to_json()
    event = AuditEvent.objects.get()
    assert event.details == {
        "changed": {},
        "rewritten": ["agent_memories", "num_history_runs", "session_summaries"],
    }
