"""Memories the runtime stored with user_id NULL or "": entries of their own in the users list,
opened, searched, exported, deleted and forgotten like anyone's, each saying why such memories
reach nobody. agno writes the rows and reads back what the dashboard changed."""

from __future__ import annotations

import json
from html import unescape

import pytest
from agno.db.schemas.memory import UserMemory
from django.urls import reverse

from memories.models import AuditEvent
from tests.factories import memory_url, shown_version, user_page

pytestmark = pytest.mark.django_db(transaction=True)

NO_USER = "?no_user_id=1"


def no_user_page(agent, **params) -> str:
    query = "".join(f"&{k}={v}" for k, v in params.items())
    return reverse("memories:user", args=[agent.slug]) + NO_USER + query


@pytest.fixture
def agno(agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="n1", memory="Orphan: likes jazz.", user_id=None))
    agno.upsert_user_memory(UserMemory(memory_id="n2", memory="Orphan: hates rain.", user_id=None))
    agno.upsert_user_memory(UserMemory(memory_id="e1", memory="Blank: owns a cat.", user_id=""))
    agno.upsert_user_memory(UserMemory(memory_id="a1", memory="Ann's own.", user_id="ann"))
    return agno


def owners(agno) -> dict[str, str | None]:
    return {m.memory_id: m.user_id for m in agno.get_user_memories()}


def test_null_and_empty_user_ids_are_entries_that_say_why_they_reach_nobody(
    editor_client, agent, agno
):
    assert owners(agno)["n1"] is None and owners(agno)["e1"] == ""
    html = unescape(
        editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    )
    assert ">no user_id</a>" in html and ">empty user_id</a>" in html
    assert "agno loads a person's memories by their user_id" in html
    assert "agno reads an empty user_id as “default”" in html
    null_link = reverse("memories:user", args=[agent.slug]) + NO_USER
    assert f'href="{null_link}"' in html


def test_the_null_user_page_shows_searches_and_exports_only_its_memories(
    editor_client, agent, agno
):
    page = editor_client.get(no_user_page(agent))
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert "Orphan: likes jazz." in html and "Orphan: hates rain." in html
    assert "Ann's own." not in html and "Blank: owns a cat." not in html
    assert "no conversation ever reads these" in html
    assert 'name="text"' not in html  # nothing may be added where nobody would read it
    found = unescape(editor_client.get(no_user_page(agent, q="jazz")).content.decode())
    assert "Orphan: likes jazz." in found and "hates rain" not in found
    export = editor_client.get(reverse("memories:export", args=[agent.slug]) + NO_USER)
    header, *rows = [
        json.loads(line) for line in b"".join(export.streaming_content).split(b"\n") if line
    ]
    assert header["format"] == "memory-studio/memories"
    assert sorted(r["memory_id"] for r in rows) == ["n1", "n2"]
    assert {r["user_id"] for r in rows} == {None}
    sessions = editor_client.get(reverse("memories:sessions", args=[agent.slug]) + NO_USER)
    assert sessions.status_code == 200


def test_the_empty_user_id_page_opens_with_its_memory(editor_client, agent, agno):
    page = editor_client.get(reverse("memories:user", args=[agent.slug]) + "?user_id=")
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert "Blank: owns a cat." in html and "Orphan" not in html
    assert "reach no one's conversation" in html


def test_a_null_user_memory_is_deleted_one_and_in_bulk(editor_client, agent, agno):
    shown = {"no_user_id": "1", "version": shown_version(agent, "n1", user_id=None)}
    one = editor_client.post(memory_url(agent, "n1", "delete"), shown)
    assert one.status_code in (200, 302)
    assert "n1" not in owners(agno)
    event = AuditEvent.objects.get(action="memory.deleted")
    assert event.user_id == "" and event.details.get("user_id_null") is True
    bulk = editor_client.post(
        reverse("memories:bulk_delete", args=[agent.slug]),
        {"no_user_id": "1", "memory_ids": ["n2"], "confirmed": "1"},
    )
    assert bulk.status_code == 302
    assert sorted(owners(agno)) == ["a1", "e1"]


def test_a_memory_of_another_user_is_not_deleted_through_the_null_user(editor_client, agent, agno):
    theirs = shown_version(agent, "a1", user_id="ann")
    response = editor_client.post(
        memory_url(agent, "a1", "delete"), {"no_user_id": "1", "version": theirs}
    )
    assert response.status_code == 404
    assert "a1" in owners(agno)


def test_the_null_user_is_forgotten_by_typing_its_name(editor_client, agent, agno):
    url = reverse("memories:forget")
    preview = editor_client.get(url + NO_USER + f"&agent={agent.slug}")
    assert preview.status_code == 200
    assert "no user_id" in unescape(preview.content.decode())
    wrong = editor_client.post(url, {"no_user_id": "1", "agent": agent.slug, "confirmation": ""})
    assert wrong.status_code == 422 and sorted(owners(agno)) == ["a1", "e1", "n1", "n2"]
    done = editor_client.post(
        url, {"no_user_id": "1", "agent": agent.slug, "confirmation": "no user_id"}
    )
    assert done.status_code == 302
    assert sorted(owners(agno)) == ["a1", "e1"]  # "" and ann are other users


def test_nothing_can_be_added_without_a_user_id(editor_client, agent, agno):
    for who in ({"no_user_id": "1"}, {"user_id": ""}):
        response = editor_client.post(
            reverse("memories:add", args=[agent.slug]), {**who, "text": "Lost.", "topics": ""}
        )
        assert response.status_code == 400
        assert "would reach nobody" in unescape(response.content.decode())
    assert sorted(owners(agno)) == ["a1", "e1", "n1", "n2"]


def test_a_link_naming_no_user_at_all_is_refused(editor_client, agent):
    response = editor_client.get(reverse("memories:user", args=[agent.slug]))
    assert response.status_code == 400
    assert user_page(agent, "ann").endswith("user_id=ann")
