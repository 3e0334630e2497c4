"""Editing a memory (memories.views.edit_memory) and the row its Cancel puts back
(memories.views.memory_row): inline with htmx, a page of its own without JavaScript."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memories import actions, runtime
from memories.models import AuditEvent, UserTokens
from tests.factories import HTMX, make_memory, memory_texts, memory_url, run_queued_tasks, user_page


def test_inline_edit_returns_the_form_then_the_saved_row(editor_client, agent):
    memory = make_memory(agent, "ann", "Likes tea.", ["drinks"])
    edit_url = memory_url(agent, memory.memory_id, "edit")
    opened = editor_client.get(edit_url + "&user_id=ann", **HTMX)
    assert opened.status_code == 200
    form = opened.content.decode()
    assert form.lstrip().startswith('<tr class="memory-row editing"')
    assert "Likes tea.</textarea>" in form and 'value="drinks"' in form
    assert f'name="version" value="{memory.version}"' in form
    assert "Esc cancels" in form
    cancel = editor_client.get(memory_url(agent, memory.memory_id, user_id="ann"), **HTMX)
    assert cancel.status_code == 200
    assert cancel.content.decode().lstrip().startswith('<tr class="memory-row" data-memory-id=')
    assert "Likes tea." in cancel.content.decode() and "<textarea" not in cancel.content.decode()
    assert memory_texts(agent, "ann") == ["Likes tea."]  # opening and cancelling change nothing
    saved = editor_client.post(
        edit_url,
        {
            "user_id": "ann",
            "text": "Likes green tea.",
            "topics": ["drinks", "tea"],
            "version": memory.version,
        },
        **HTMX,
    )
    assert saved.status_code == 200
    assert (
        "Likes green tea." in saved.content.decode() and "<textarea" not in saved.content.decode()
    )
    assert json.loads(saved["HX-Trigger"])["toast"]["message"] == "Memory saved."
    after = runtime.get_memory(agent, "ann", memory.memory_id)
    assert after.text == "Likes green tea." and after.topics == ["drinks", "tea"]
    assert after.created_at == memory.created_at and after.updated_at >= memory.updated_at
    event = AuditEvent.objects.get(action="memory.edited")
    assert event.memory_id == memory.memory_id and event.user_id == "ann"
    assert "tea" not in json.dumps(event.details)


def test_without_javascript_edit_is_a_page_of_its_own(editor_client, agent):
    memory = make_memory(agent, "ann", "Likes tea.")
    page = editor_client.get(memory_url(agent, memory.memory_id, "edit", user_id="ann"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" in html and "<h1>Edit memory</h1>" in html
    assert "Likes tea.</textarea>" in html
    assert memory_texts(agent, "ann") == ["Likes tea."]
    assert not AuditEvent.objects.exists()


def texts_and_edits(agent) -> tuple[list[str], int]:
    return memory_texts(agent, "ann"), AuditEvent.objects.filter(action="memory.edited").count()


def test_a_stale_edit_is_refused_and_the_current_text_shown(editor_client, agent):
    memory = make_memory(agent, "ann", "Likes tea.")
    shown_version = memory.version
    # Someone else (the agent, another operator) changes it meanwhile.
    actions.edit_memory(
        actor=None,
        agent=agent,
        user_id="ann",
        memory_id=memory.memory_id,
        text="Likes coffee now.",
        topics=[],
        version=shown_version,
    )
    response = editor_client.post(
        memory_url(agent, memory.memory_id, "edit"),
        {"user_id": "ann", "text": "Likes green tea.", "topics": "", "version": shown_version},
        **HTMX,
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "changed since you opened it" in html
    assert '<blockquote class="current-text">Likes coffee now.</blockquote>' in html
    assert "Likes green tea.</textarea>" in html  # what the person typed is kept
    current = runtime.get_memory(agent, "ann", memory.memory_id)
    assert f'name="version" value="{current.version}"' in html  # saving again is possible
    assert texts_and_edits(agent) == (["Likes coffee now."], 1)
    plain = editor_client.post(
        memory_url(agent, memory.memory_id, "edit"),
        {"user_id": "ann", "text": "Again.", "topics": "", "version": shown_version},
    )
    assert plain.status_code == 409
    assert "changed since you opened it" in plain.content.decode()
    assert texts_and_edits(agent) == (["Likes coffee now."], 1)


def test_editing_another_users_memory_is_404(editor_client, agent):
    memory = make_memory(agent, "bob", "Bob's.")
    response = editor_client.post(
        memory_url(agent, memory.memory_id, "edit"),
        {"user_id": "ann", "text": "Hijacked.", "version": memory.version},
    )
    assert response.status_code == 404
    assert "belongs to another user" in response.content.decode()
    assert memory_texts(agent, "bob") == ["Bob's."]
    assert not AuditEvent.objects.exists()


def test_cancel_without_htmx_goes_to_the_users_page(editor_client, agent):
    memory = make_memory(agent, "a/b", "Stays.")
    row = editor_client.get(memory_url(agent, memory.memory_id, user_id="a/b"))
    assert row.status_code == 302 and row["Location"] == user_page(agent, "a/b")
    assert memory_texts(agent, "a/b") == ["Stays."]


@pytest.mark.django_db(transaction=True)
def test_an_inline_edit_switches_to_the_agents_schema_once(editor_client, agent):
    memory = make_memory(agent, "ann", "Likes tea.")
    with CaptureQueriesContext(connection) as queries:
        saved = editor_client.post(
            memory_url(agent, memory.memory_id, "edit"),
            {"user_id": "ann", "text": "Likes green tea.", "topics": "", "version": memory.version},
            **HTMX,
        )
    assert saved.status_code == 200
    into_agent = f"set_config('search_path', '\"{agent.db_schema}\"'"
    switches = [q["sql"] for q in queries.captured_queries if into_agent in q["sql"]]
    assert len(switches) == 1  # the row is read and written in one go; the recount is queued
    run_queued_tasks()  # the worker recounts the user, off the request
    assert UserTokens.objects.get(agent=agent, user_id="ann").memories == 1
