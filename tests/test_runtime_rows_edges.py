"""Stored rows at the edges the first round missed: long and non-Latin ids at a page
boundary, memory_id and session_id "", topics long or stored as a bare string, stale deletes
without JavaScript, topic lists far past the limit, and JSON nested deeper than Python's json
reads. agno's PostgresDb writes every row and reads back what the dashboard changed."""

from __future__ import annotations

import base64
import json
import re
import time
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest
from agno.db.base import SessionType
from agno.db.schemas.memory import UserMemory
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from memories import flags, runtime
from memories.forms import EditMemoryForm
from memories.models import (
    TOO_DEEP_TO_SHOW,
    AuditEvent,
    PruneCandidate,
    PruneJob,
    SensitiveFlag,
    TrashedMemory,
    UserTokens,
)
from studio.database_urls import psycopg_connect
from tests.factories import (
    HTMX,
    agno_session_with_run,
    memory_url,
    run_queued_tasks,
    session_url,
    shown_version,
    stored_memories,
)

pytestmark = pytest.mark.django_db(transaction=True)

NOW = int(time.time())
# Past the old 400-character cursor: Cyrillic and emoji, each many bytes in a JSON cursor.
LONG_MEMORY_ID = "ключ-" + "я" * 300 + "-💡" * 20
LONG_USER_ID = "u24-" + "Юзер" * 250  # 1,004 characters, 2,000 bytes of UTF-8


def user_page(agent, user_id: str, **params: str) -> str:
    query = "".join(f"&{k}={quote(v, safe='')}" for k, v in params.items())
    return f"{reverse('memories:user', args=[agent.slug])}?user_id={quote(user_id, safe='')}{query}"


def next_page_href(html: str) -> str:
    links = re.findall(r'<a class="button small" href="([^"]+)"[^>]*>Next page', html)
    assert len(links) == 1, "no Next page link"
    return unescape(links[0])


def test_next_page_follows_a_long_non_latin_memory_id_at_the_boundary(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    # Newest first: the 25th row, the last of page one, carries the long id.
    for n in range(26):
        memory_id = LONG_MEMORY_ID if n == 24 else f"m{n:02}"
        agno.upsert_user_memory(
            UserMemory(
                memory_id=memory_id, memory=f"Fact {n:02}.", user_id="ann", updated_at=NOW - n
            )
        )
    first = editor_client.get(user_page(agent, "ann"))
    html = first.content.decode()
    assert first.status_code == 200 and "Fact 24." in html and "Fact 25." not in html
    href = next_page_href(html)
    assert len(href.split("after=")[1]) > 400  # the old cap: the cursor holds the id whole
    second = editor_client.get(href)
    assert second.status_code == 200, unescape(second.content.decode())[:400]
    page_two = second.content.decode()
    assert "Fact 25." in page_two and "Fact 24." not in page_two
    assert agno.get_user_memory(LONG_MEMORY_ID).memory == "Fact 24."


def test_next_page_of_the_users_list_follows_a_long_user_id(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    user_ids = [f"u{n:02}" for n in range(24)] + [LONG_USER_ID, "u25"]
    for user_id in user_ids:
        agno.upsert_user_memory(UserMemory(memory=f"Memory of {user_id[:3]}.", user_id=user_id))
    tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]))
    html = tab.content.decode()
    assert tab.status_code == 200 and quote(LONG_USER_ID, safe="") in html
    href = next_page_href(html)
    second = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]) + href)
    assert second.status_code == 200
    page_two = unescape(second.content.decode())
    assert "u25" in page_two and "u23" not in page_two
    opened = editor_client.get(user_page(agent, LONG_USER_ID))
    assert opened.status_code == 200 and "Memory of u24." in unescape(opened.content.decode())
    assert len(agno.get_user_memories(user_id=LONG_USER_ID)) == 1


def test_a_hand_made_deeply_nested_cursor_is_refused_in_words(editor_client, agent, agno_db_for):
    agno_db_for(agent).upsert_user_memory(UserMemory(memory="Likes tea.", user_id="ann"))
    deep = base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=")
    for cursor in (deep, runtime.encode_cursor("not", "an int")):
        response = editor_client.get(user_page(agent, "ann", after=cursor))
        assert response.status_code == 400
        assert "malformed or out of date" in response.content.decode()


def test_an_empty_memory_id_is_shown_edited_scanned_and_deleted(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory_id="", memory="My password is Tulip-2024!", user_id="ann")
    )
    assert agno.get_user_memory("").memory_id == ""  # agno keeps "" as given
    page = editor_client.get(user_page(agent, "ann")).content.decode()
    assert "Tulip-2024" in page and '&amp;memory_id="' in page  # the row links carry ""
    state = flags.scan_next_batch(agent)
    assert state.scanned == 1 and SensitiveFlag.objects.get(agent=agent).memory_id == ""
    row = editor_client.get(memory_url(agent, "", user_id="ann"), **HTMX)
    assert row.status_code == 200 and "Tulip-2024" in row.content.decode()
    opened = editor_client.get(memory_url(agent, "", "edit", user_id="ann"), **HTMX)
    assert opened.status_code == 200
    edited = editor_client.post(
        memory_url(agent, "", "edit"),
        {"user_id": "ann", "text": "Prefers tea.", "version": shown_version(agent, "")},
        **HTMX,
    )
    assert edited.status_code == 200 and agno.get_user_memory("").memory == "Prefers tea."
    assert not SensitiveFlag.objects.filter(agent=agent).exists()
    deleted = editor_client.post(
        memory_url(agent, "", "delete"),
        {"user_id": "ann", "version": shown_version(agent, "")},
        **HTMX,
    )
    assert deleted.status_code == 200 and agno.get_user_memory("") is None
    assert AuditEvent.objects.get(action="memory.deleted").memory_id == ""


def test_a_missing_memory_id_is_still_refused_in_words(editor_client, agent, agno_db_for):
    agno_db_for(agent).upsert_user_memory(UserMemory(memory="Likes tea.", user_id="ann"))
    url = reverse("memories:edit", args=[agent.slug]) + "?user_id=ann"
    response = editor_client.get(url)
    assert response.status_code == 400 and "missing its memory_id" in response.content.decode()


def test_an_empty_session_id_lists_opens_and_deletes(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno_session_with_run(agno, "", "ann", NOW, "Book me a flight to Oslo.")
    assert agno.get_session("", session_type=SessionType.AGENT).session_id == ""
    listed = editor_client.get(reverse("memories:sessions", args=[agent.slug]) + "?user_id=ann")
    assert listed.status_code == 200 and '?session_id="' in listed.content.decode()
    opened = editor_client.get(session_url(agent, ""))
    assert opened.status_code == 200 and "Book me a flight to Oslo." in opened.content.decode()
    deleted = editor_client.post(session_url(agent, "", "delete_session"), **HTMX)
    assert (
        deleted.status_code == 200 and agno.get_session("", session_type=SessionType.AGENT) is None
    )


def test_a_stale_delete_without_javascript_shows_the_new_text_and_delete_anyway(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Likes tea.", user_id="ann"))
    shown = shown_version(agent, "m1")
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Likes coffee now.", user_id="ann"))
    url = memory_url(agent, "m1", "delete")
    refused = editor_client.post(url, {"user_id": "ann", "version": shown})
    html = unescape(refused.content.decode())
    assert refused.status_code == 409 and "Likes coffee now." in html
    assert "Not deleted: this memory changed" in html
    current = shown_version(agent, "m1")
    form = re.search(r'<form method="post" action="([^"]*/delete/[^"]*)".*?</form>', html, re.S)
    assert form and "Delete anyway" in form.group(0)
    assert f'name="version" value="{current}"' in form.group(0)
    assert agno.get_user_memory("m1").memory == "Likes coffee now."
    again = editor_client.post(form.group(1), {"user_id": "ann", "version": current})
    assert again.status_code == 302 and agno.get_user_memory("m1") is None


def test_a_delete_without_a_version_is_refused_in_words(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Likes tea.", user_id="ann"))
    page = editor_client.get(user_page(agent, "ann")).content.decode()
    delete_form = re.search(r'<form method="post" action="[^"]*/delete/.*?</form>', page, re.S)
    assert f'name="version" value="{shown_version(agent, "m1")}"' in delete_form.group(0)
    for headers in ({}, HTMX):
        refused = editor_client.post(
            memory_url(agent, "m1", "delete"), {"user_id": "ann"}, **headers
        )
        assert refused.status_code == 400
        assert "did not say which version" in unescape(refused.content.decode())
    assert agno.get_user_memory("m1").memory == "Likes tea."
    assert not AuditEvent.objects.filter(action="memory.deleted").exists()


def _open_edit(editor_client, agent, memory_id: str) -> dict[str, str]:
    html = editor_client.get(memory_url(agent, memory_id, "edit", user_id="ann"), **HTMX)
    found = dict(
        re.findall(
            r'name="(version|text_shown|topics_shown)" value="([^"]*)"', html.content.decode()
        )
    )
    return {k: unescape(v) for k, v in found.items()}


def test_twenty_thousand_topics_are_refused_with_a_message(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Short.", user_id="ann"))
    memory = runtime.get_memory(agent, "ann", "m1")
    typed = [f"t{n}" for n in range(20_000)]
    # The form itself (as a script would drive it): refused in words, in linear time.
    form = EditMemoryForm(
        {**EditMemoryForm.for_memory(memory).initial, "text": "Short.", "topics": typed}
    )
    assert not form.is_valid()
    assert form.errors["topics"] == ["At most 20 topics per memory; this has 20000."]
    # Through the page: Django refuses that many fields before the view, still in words.
    hidden = _open_edit(editor_client, agent, "m1")
    data = {"user_id": "ann", "text": "Short.", "topics": typed, **hidden}
    for headers in ({}, HTMX):
        refused = editor_client.post(memory_url(agent, "m1", "edit"), data, **headers)
        assert refused.status_code == 400
        assert "the form sent more than 1,000 fields" in unescape(refused.content.decode())
    added = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {"user_id": "ann", "text": "New.", "topics": typed[:900]},
    )
    assert added.status_code == 422 and "At most 20 topics per memory" in added.content.decode()
    assert [m.memory for m in agno.get_user_memories(user_id="ann")] == ["Short."]
    assert agno.get_user_memory("m1").topics is None


def test_topic_keys_from_the_client_do_not_raise_the_topic_limit(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    many = [f"s{n}" for n in range(30)]
    agno.upsert_user_memory(UserMemory(memory_id="big", memory="Many.", user_id="ann", topics=many))
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Few.", user_id="ann", topics=["a"]))
    typed = [f"n{n}" for n in range(30)]
    url = memory_url(agent, "m1", "edit")
    # Thirty copies of a key the page showed: unsigned, so they count for nothing.
    mine = _open_edit(editor_client, agent, "m1")
    key = mine["topics_shown"].split()[0]
    forged = {**mine, "topics_shown": " ".join([key] * 30)}
    refused = editor_client.post(url, {"user_id": "ann", "text": "Few.", "topics": typed, **forged})
    assert refused.status_code == 422
    assert "At most 20 topics per memory; this has 30." in refused.content.decode()
    # The signed keys of another memory, with this memory's version: they do not verify.
    theirs = _open_edit(editor_client, agent, "big")
    borrowed = {**mine, "topics_shown": theirs["topics_shown"]}
    refused = editor_client.post(
        url, {"user_id": "ann", "text": "Few.", "topics": typed, **borrowed}
    )
    assert refused.status_code == 422
    # ...and with that memory's version too, the edit is stale: nothing is written.
    stale = editor_client.post(url, {"user_id": "ann", "text": "Few.", "topics": typed, **theirs})
    assert stale.status_code == 409
    assert agno.get_user_memory("m1").topics == ["a"]
    # The memory that stored thirty may keep thirty, renamed.
    renamed = [*many[:-1], "renamed"]
    saved = editor_client.post(
        memory_url(agent, "big", "edit"),
        {"user_id": "ann", "text": "Many.", "topics": renamed, **theirs},
    )
    assert saved.status_code == 302 and agno.get_user_memory("big").topics == renamed


def test_a_text_edit_keeps_a_stored_empty_topic(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    stored = ["", "home", ""]
    agno.upsert_user_memory(
        UserMemory(memory_id="m1", memory="Lives here.", user_id="ann", topics=stored)
    )
    hidden = _open_edit(editor_client, agent, "m1")
    data = {"user_id": "ann", "text": "Lives there.", "topics": ["home", ""], **hidden}
    saved = editor_client.post(memory_url(agent, "m1", "edit"), data)
    assert saved.status_code == 302
    back = agno.get_user_memory("m1")
    assert back.memory == "Lives there." and back.topics == stored
    hidden = _open_edit(editor_client, agent, "m1")
    data = {"user_id": "ann", "text": "Lives there.", "topics": ["home", "work", ""], **hidden}
    assert editor_client.post(memory_url(agent, "m1", "edit"), data).status_code == 302
    assert agno.get_user_memory("m1").topics == ["", "home", "", "work"]


LONG_TOPIC = "Topic " + "ü" * 100


def test_long_and_bare_string_topics_are_options_matches_and_prunable(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory_id="l1", memory="Long one.", user_id="ann", topics=[LONG_TOPIC])
    )
    agno.upsert_user_memory(
        UserMemory(memory_id="b1", memory="Bare one.", user_id="ann", topics="travel")
    )
    agno.upsert_user_memory(
        UserMemory(memory_id="a1", memory="Array one.", user_id="ann", topics=["travel", "x"])
    )
    agno.upsert_user_memory(
        UserMemory(memory_id="o1", memory="Other one.", user_id="ann", topics=["x"])
    )
    options = editor_client.get(
        reverse("memories:topics", args=[agent.slug]) + "?user_id=ann", **HTMX
    )
    listed = unescape(options.content.decode())
    assert options.status_code == 200 and f">{LONG_TOPIC}<" in listed and ">travel<" in listed
    for topic, shown in ((LONG_TOPIC, ["Long one."]), ("travel", ["Array one.", "Bare one."])):
        page = editor_client.get(user_page(agent, "ann", topic=topic))
        html = unescape(page.content.decode())
        assert page.status_code == 200, html[:300]
        found = sorted(
            t for t in ("Long one.", "Bare one.", "Array one.", "Other one.") if t in html
        )
        assert found == shown
    for topic, ids in ((LONG_TOPIC, {"l1"}), ("travel", {"a1", "b1"})):
        PruneCandidate.objects.all().delete()
        preview = editor_client.post(
            reverse("memories:preview_prune", args=[agent.slug]), {"topic": topic}
        )
        assert preview.status_code == 302
        assert set(PruneCandidate.objects.values_list("memory_id", flat=True)) == ids
    assert {m.memory_id for m in agno.get_user_memories(user_id="ann")} == {"l1", "b1", "a1", "o1"}


def export_rows(response) -> list[dict]:
    lines = b"".join(response.streaming_content).split(b"\n")
    header, *rows = [json.loads(line) for line in lines if line]
    assert header["format"] == "memory-studio/memories"
    return rows


@pytest.mark.parametrize(
    "user_id",
    ["ü/" + "x%" * 320, ""],  # 642 characters with "/" and "%", and the empty user_id
    ids=["642-chars", "empty"],
)
def test_a_long_or_empty_user_id_opens_lists_exports_deletes_and_is_forgotten(
    editor_client, agent, agno_db_for, user_id
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="k1", memory="Keeps bees.", user_id=user_id))
    agno.upsert_user_memory(UserMemory(memory_id="k2", memory="Hates wasps.", user_id=user_id))
    agno.upsert_user_memory(UserMemory(memory_id="a1", memory="Ann's own.", user_id="ann"))
    agno_session_with_run(agno, "s1", user_id, NOW, "Where are my bees?")
    query = "?user_id=" + quote(user_id, safe="")
    page = editor_client.get(reverse("memories:user", args=[agent.slug]) + query)
    html = unescape(page.content.decode())
    assert page.status_code == 200 and "Keeps bees." in html and "Ann's own." not in html
    sessions = editor_client.get(reverse("memories:sessions", args=[agent.slug]) + query)
    assert sessions.status_code == 200 and "s1" in sessions.content.decode()
    export = editor_client.get(reverse("memories:export", args=[agent.slug]) + query)
    rows = export_rows(export)
    assert sorted(r["memory_id"] for r in rows) == ["k1", "k2"]
    assert {r["user_id"] for r in rows} == {user_id}
    deleted = editor_client.post(
        memory_url(agent, "k1", "delete"),
        {"user_id": user_id, "version": shown_version(agent, "k1", user_id)},
    )
    assert deleted.status_code == 302 and agno.get_user_memory("k1") is None
    forget = reverse("memories:forget")
    phrase = "empty user_id" if user_id == "" else user_id
    done = editor_client.post(
        forget, {"user_id": user_id, "agent": agent.slug, "confirmation": phrase}
    )
    assert done.status_code == 302
    assert [m.memory_id for m in agno.get_user_memories()] == ["a1"]
    assert agno.get_session("s1", session_type=SessionType.AGENT) is None


def test_a_stored_empty_text_is_kept_by_an_edit_of_the_topics(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="e1", memory="", user_id="ann", topics=["keep"]))
    hidden = _open_edit(editor_client, agent, "e1")
    data = {"user_id": "ann", "text": "", "topics": ["keep", "more"], **hidden}
    saved = editor_client.post(memory_url(agent, "e1", "edit"), data)
    assert saved.status_code == 302
    back = agno.get_user_memory("e1")
    assert back.memory == "" and back.topics == ["keep", "more"]
    # A text shown and then emptied is what a person typed: refused.
    agno.upsert_user_memory(UserMemory(memory_id="e2", memory="Full.", user_id="ann"))
    hidden = _open_edit(editor_client, agent, "e2")
    refused = editor_client.post(
        memory_url(agent, "e2", "edit"), {"user_id": "ann", "text": "", **hidden}
    )
    assert refused.status_code == 422 and "cannot be empty" in refused.content.decode()
    assert agno.get_user_memory("e2").memory == "Full."


def test_a_padded_or_empty_stored_topic_is_pruned_exactly_and_not_an_option(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory_id="p1", memory="Padded.", user_id="ann", topics=["  padded  ", ""])
    )
    agno.upsert_user_memory(
        UserMemory(memory_id="p2", memory="Plain.", user_id="ann", topics=["padded"])
    )
    preview = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]), {"topic": "  padded  "}
    )
    assert preview.status_code == 302
    assert set(PruneCandidate.objects.values_list("memory_id", flat=True)) == {"p1"}
    options = editor_client.get(
        reverse("memories:topics", args=[agent.slug]) + "?user_id=ann", **HTMX
    ).content.decode()
    # "" is "All topics" already: a stored empty topic is no second, blank choice.
    assert options.count('value=""') == 1 and 'value="  padded  "' in options


def test_adding_a_topic_keeps_stored_topics_that_are_not_text_as_stored(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    # agno's UserMemory does not check its topics: numbers, null and objects get stored too.
    stored = [1, None, {"x": 1}, ["y"], "text", "1"]
    agno.upsert_user_memory(UserMemory(memory_id="n1", memory="Odd.", user_id="ann", topics=stored))
    hidden = _open_edit(editor_client, agent, "n1")
    shown = ["1", "None", "{'x': 1}", "['y']", "text", "1"]  # the number, then the text
    data = {"user_id": "ann", "text": "Odd.", "topics": [*shown, "new", ""], **hidden}
    saved = editor_client.post(memory_url(agent, "n1", "edit"), data)
    assert saved.status_code == 302
    assert agno.get_user_memory("n1").topics == [*stored, "new"]


def test_a_lone_object_stored_as_topics_is_shown_and_kept_by_an_added_topic(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory_id="d1", memory="Dict.", user_id="ann", topics={"a": 1})
    )
    page = editor_client.get(user_page(agent, "ann")).content.decode()
    assert "{&#x27;a&#x27;: 1}" in page  # shown, not hidden
    hidden = _open_edit(editor_client, agent, "d1")
    data = {"user_id": "ann", "text": "Dict.", "topics": ["{'a': 1}", "new"], **hidden}
    assert editor_client.post(memory_url(agent, "d1", "edit"), data).status_code == 302
    assert agno.get_user_memory("d1").topics == [{"a": 1}, "new"]


# Past what json.loads reads on a page's stack (it gives up near 870 levels there), within
# what agno's own json.dumps writes from a test's shallow one (about 940).
DEEP_LEVELS = 900


def nested(levels: int = DEEP_LEVELS) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def stored_columns(agent, memory_id: str) -> tuple:
    """(memory, topics IS NULL, topics) of one memory as Postgres prints them."""
    row = next(row for row in stored_memories(agent.db_schema) if row[0] == memory_id)
    return row[1], row[2], row[3]


def write_deep_memories(agno) -> None:
    """d1's text, d2's second topic and all of d3's topics nest DEEP_LEVELS deep."""
    agno.upsert_user_memory(
        UserMemory(memory_id="d1", memory=nested(), user_id="ann", topics=["deep"])
    )
    agno.upsert_user_memory(
        UserMemory(memory_id="d2", memory="Likes tea.", user_id="ann", topics=["travel", nested()])
    )
    agno.upsert_user_memory(
        UserMemory(memory_id="d3", memory="Hikes.", user_id="ann", topics=nested())
    )


def test_memories_nested_past_what_json_reads_are_shown_on_every_page(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    write_deep_memories(agno)
    page = editor_client.get(user_page(agent, "ann"))
    html = unescape(page.content.decode())
    assert page.status_code == 200
    assert html.count(TOO_DEEP_TO_SHOW) >= 3  # d1's text, d2's topic, d3's topic
    assert "Likes tea." in html and "travel" in html and "Hikes." in html
    for memory_id in ("d1", "d2", "d3"):
        for action in ("row", "edit"):
            shown = editor_client.get(memory_url(agent, memory_id, action, user_id="ann"), **HTMX)
            assert shown.status_code == 200, (memory_id, action)
            assert TOO_DEEP_TO_SHOW in unescape(shown.content.decode()), (memory_id, action)
    slug = agent.slug
    for url in (
        reverse("agents:memory_tab", args=[slug]),
        reverse("agents:recent", args=[slug]),
        reverse("memories:search", args=[slug]) + "?q=x",
        reverse("memories:context", args=[slug]) + "?user_id=ann",
        reverse("memories:move_preview", args=[slug]) + "?user_id=ann&to=bob",
    ):
        response = editor_client.get(url, **HTMX)
        assert response.status_code in (200, 204), url
    assert flags.scan_next_batch(agent).scanned == 3

    # The export holds each value exactly as stored, however deep.
    lines = b"".join(
        editor_client.get(reverse("memories:export", args=[slug]) + "?user_id=ann")
    ).decode()
    assert f'"memory": {stored_columns(agent, "d1")[0]}' in lines
    assert f'"topics": {stored_columns(agent, "d3")[2]}' in lines
    assert len(lines.splitlines()) == 4  # the header and three rows

    call_command("count_tokens", agent=slug)
    assert UserTokens.objects.get(agent=agent, user_id="ann").memories == 3
    assert {m.memory_id for m in agno.get_user_memories(user_id="ann")} == {"d1", "d2", "d3"}


def _save_edit(editor_client, agent, memory_id: str, text: str, topics: list[str]) -> int:
    """Open a memory's edit form and send it back with this text and these topics."""
    data = {"user_id": "ann", "text": text, "topics": topics}
    data.update(_open_edit(editor_client, agent, memory_id))
    return editor_client.post(memory_url(agent, memory_id, "edit"), data).status_code


def test_an_edit_beside_json_too_deep_to_read_changes_only_what_was_typed(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    write_deep_memories(agno)
    before = {memory_id: stored_columns(agent, memory_id) for memory_id in ("d1", "d2", "d3")}
    # d2: the text typed, the topics sent back as shown; then a topic added beside the deep one.
    shown = ["travel", TOO_DEEP_TO_SHOW]
    assert _save_edit(editor_client, agent, "d2", "Likes green tea.", shown) == 302
    assert agno.get_user_memory("d2").memory == "Likes green tea."
    assert stored_columns(agent, "d2")[1:] == before["d2"][1:]  # topics untouched
    assert _save_edit(editor_client, agent, "d2", "Likes green tea.", [*shown, "new"]) == 302
    assert stored_columns(agent, "d2")[2] == before["d2"][2][:-1] + ', "new"]'
    # d1: a deep text left as shown is kept; only its topics change.
    assert _save_edit(editor_client, agent, "d1", TOO_DEEP_TO_SHOW, ["deep", "more"]) == 302
    assert stored_columns(agent, "d1")[0] == before["d1"][0]
    assert agno.get_user_memory("d1").topics == ["deep", "more"]
    # d3: topics that are one deep list gain a second topic, not a wrapper around the first.
    assert _save_edit(editor_client, agent, "d3", "Hikes.", [TOO_DEEP_TO_SHOW, "new"]) == 302
    assert stored_columns(agent, "d3")[2] == before["d3"][2][:-1] + ', "new"]'
    assert agno.get_user_memory("d3").topics == [nested(DEEP_LEVELS - 1), "new"]

    run_queued_tasks()  # the recounts the edits queued
    assert UserTokens.objects.get(agent=agent, user_id="ann").memories == 3


def test_json_too_deep_to_read_goes_to_the_trash_and_back_exactly(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    write_deep_memories(agno)
    before = stored_memories(agent.db_schema)
    shown = {"user_id": "ann", "version": shown_version(agent, "d1")}
    deleted = editor_client.post(memory_url(agent, "d1", "delete"), shown)
    assert deleted.status_code == 302 and agno.get_user_memory("d1") is None
    bulk = reverse("memories:bulk_delete", args=[agent.slug])
    chosen = {"user_id": "ann", "memory_ids": ["d2", "d3"], "confirmed": "1"}
    assert editor_client.post(bulk, chosen).status_code == 302
    assert stored_memories(agent.db_schema) == []
    trash = editor_client.get(reverse("memories:trash", args=[agent.slug]))
    html = unescape(trash.content.decode())
    assert trash.status_code == 200 and html.count(TOO_DEEP_TO_SHOW) >= 3 and "Likes tea." in html

    entries = list(TrashedMemory.objects.values_list("pk", flat=True))
    restore = reverse("memories:restore_trash", args=[agent.slug])
    assert editor_client.post(restore, {"trashed": entries}).status_code == 302
    assert stored_memories(agent.db_schema) == before  # every column as it was stored
    assert agno.get_user_memory("d2").topics[0] == "travel"

    # A prune's deletes keep the row whole too.
    preview = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]), {"topic": "travel"}
    )
    job = PruneJob.objects.get(agent=agent)
    assert preview.status_code == 302 and job.planned == 1
    batch = reverse("memories:prune_batch", args=[agent.slug, job.pk])
    while "Done:" not in editor_client.post(batch, **HTMX).content.decode():
        pass
    assert agno.get_user_memory("d2") is None
    entry = TrashedMemory.objects.get(memory_id="d2")
    assert editor_client.post(restore, {"trashed": [entry.pk]}).status_code == 302
    assert stored_memories(agent.db_schema) == before


def test_sessions_holding_json_too_deep_to_read_list_open_and_delete(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    agno_session_with_run(agno, "s1", "ann", NOW, "Book me a flight to Oslo.")
    deep = json.dumps(nested())
    # agno's session API copies values level by level and stops near 475 here, so the deep
    # values go in as its PostgresDb stores them, jsonb, by SQL.
    with psycopg_connect(connection.settings_dict) as conn:
        schema = agent.db_schema
        conn.execute(
            f'UPDATE "{schema}".agno_sessions SET metadata = %s::jsonb, summary = %s::jsonb, '
            "session_data = %s::jsonb",
            [deep, f'{{"summary": "Talked about Oslo.", "topics": {deep}}}', deep],
        )
        conn.execute(
            f'UPDATE "{schema}".agno_runs SET run_data = jsonb_set(jsonb_set(run_data, '
            "'{input}', %s::jsonb), '{messages}', (run_data -> 'messages') || %s::jsonb)",
            [f'{{"input_content": {deep}}}', f'[{{"role": "tool", "content": {deep}}}]'],
        )
    listed = editor_client.get(reverse("memories:sessions", args=[agent.slug]) + "?user_id=ann")
    assert listed.status_code == 200 and "Talked about Oslo." in listed.content.decode()
    opened = editor_client.get(session_url(agent, "s1"))
    html = unescape(opened.content.decode())
    assert opened.status_code == 200 and "Book me a flight to Oslo." in html
    assert TOO_DEEP_TO_SHOW in html  # the tool message, in place
    deleted = editor_client.post(session_url(agent, "s1", "delete_session"), **HTMX)
    assert deleted.status_code == 200
    assert agno.get_session("s1", session_type=SessionType.AGENT) is None
