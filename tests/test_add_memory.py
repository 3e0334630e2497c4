"""Adding a memory on the user page (memories.views.add_memory), with htmx or a plain form."""

from __future__ import annotations

import json
import random
import re
import string
from urllib.parse import quote

import pytest
from django.urls import clear_script_prefix, reverse, set_script_prefix

from memories import runtime
from memories.models import AuditEvent, UserTokens
from tests.factories import (
    HTMX,
    make_memory,
    make_person,
    make_staff,
    memory_texts,
    memory_url,
    run_queued_tasks,
    user_page,
)

ODD_USER_IDS = ["a/b", "50%", "x y", "ü@example.com", "a+b&c=d?#", " padded "]


@pytest.mark.parametrize("user_id", ODD_USER_IDS)
def test_any_user_id_survives_the_round_trip(editor_client, agent, user_id):
    response = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {"user_id": user_id, "text": "Round trip.", "topics": ""},
    )
    assert response.status_code == 302
    assert memory_texts(agent, user_id) == ["Round trip."]
    assert AuditEvent.objects.get(action="memory.added").user_id == user_id
    page = editor_client.get(response["Location"])
    assert page.status_code == 200 and "Round trip." in page.content.decode()
    # The users list links to the same user.
    users_html = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    link = reverse("memories:user", args=[agent.slug]) + "?user_id=" + quote(user_id, safe="")
    assert link in users_html
    assert "Round trip." in editor_client.get(link).content.decode()
    memory = runtime.user_memories(agent, user_id).items[0]
    edited = editor_client.post(
        memory_url(agent, memory.memory_id, "edit"),
        {
            "user_id": user_id,
            "text": "Edited.",
            "topics": "a",
            "version": memory.version,
        },
    )
    assert edited.status_code == 302
    assert memory_texts(agent, user_id) == ["Edited."]
    assert AuditEvent.objects.get(action="memory.edited").user_id == user_id


def test_adding_via_htmx_returns_the_list_with_the_new_memory(editor_client, agent):
    make_memory(agent, "ann", "Existing.")
    response = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {
            "user_id": "ann",
            "text": "  Renewal is in November.  ",
            "topics": ["billing", "renewal", "billing"],
            "input": "",
        },
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="memory-list">')
    assert "Renewal is in November." in html
    assert 'id="user-summary" class="stats" hx-swap-oob="true"' in html
    assert '<span class="stat-value">2</span><span class="stat-label">memories</span>' in html
    # The list is the one a first visit shows, and so are the filters and the address bar.
    filters = html.split('<form id="filters"')[1].split("</form>")[0]
    assert 'hx-swap-oob="true"' in filters and 'name="q" value=""' in filters
    assert response["HX-Replace-Url"] == user_page(agent, "ann")
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Memory added."
    memory = runtime.user_memories(agent, "ann", search="Renewal").items[0]
    assert memory.text == "Renewal is in November."
    assert memory.topics == ["billing", "renewal"]
    assert memory.input is None
    event = AuditEvent.objects.get(action="memory.added")
    assert event.memory_id == memory.memory_id and event.user_id == "ann"
    run_queued_tasks()  # the worker recounts the user, off the request
    assert (
        UserTokens.objects.get(agent=agent, user_id="ann").memories == 2
    )  # recounted by the worker


def _add_from(client, agent, shown: str, user_id: str = "ann", text: str = "Renewal is in May."):
    """An htmx add sent from the page at `shown` (a path on this site, or a whole address), as
    a browser reports it."""
    return client.post(
        reverse("memories:add", args=[agent.slug]),
        {"user_id": user_id, "text": text, "topics": ["billing"]},
        HTTP_HX_CURRENT_URL=shown if shown.startswith("http") else "http://testserver" + shown,
        **HTMX,
    )


def test_an_add_from_the_first_page_puts_the_new_row_on_top_of_the_rows_shown(editor_client, agent):
    make_memory(agent, "ann", "Existing.")
    response = _add_from(editor_client, agent, user_page(agent, "ann"))
    assert response.status_code == 200
    assert response["HX-Reswap"] == "none"  # every part is out of band
    assert "HX-Replace-Url" not in response  # the address already names this list
    html = response.content.decode()
    memory = runtime.user_memories(agent, "ann", search="Renewal").items[0]
    # The row goes on top of the rows shown, exactly as the list and the row URL show it.
    row = editor_client.get(memory_url(agent, memory.memory_id, user_id="ann"), **HTMX)
    unmasked = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')  # masked afresh each time
    shown_row = unmasked.sub("", row.content.decode().strip())
    on_top = '<template><tbody hx-swap-oob="afterbegin:#memory-rows">'
    assert unmasked.sub("", html).split(on_top)[1].startswith(shown_row + "</tbody></template>")
    assert 'id="memory-list"' not in html and "Existing." not in html
    assert '<span class="stat-value">2</span><span class="stat-label">memories</span>' in html
    assert 'id="add-form"' in html and html.count('hx-swap-oob="true"') == 3  # + empty state
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Memory added."
    assert AuditEvent.objects.get(action="memory.added").memory_id == memory.memory_id


@pytest.mark.parametrize(
    "shown",
    [
        {"q": "Exist"},
        {"topic": "billing"},
        {"sensitive": "1"},
        {"sort": "created"},
        {"after": "not-a-cursor"},
        {"sort": "no-such-sort"},
    ],
)
def test_an_add_from_a_filtered_or_later_page_resets_the_list(editor_client, agent, shown):
    make_memory(agent, "ann", "Existing.")
    response = _add_from(editor_client, agent, user_page(agent, "ann", **shown))
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Reswap" not in response
    assert html.lstrip().startswith('<div id="memory-list">')
    assert "Existing." in html and "Renewal is in May." in html
    assert response["HX-Replace-Url"] == user_page(agent, "ann")


@pytest.mark.parametrize(
    "shown",
    [
        "/agents/other/user/?user_id=ann",
        "/agents/{slug}/user/?user_id=ann&user_id=bob",
        "/agents/{slug}/user/?user_id=bob",
        "/agents/{slug}/user/",
        "/agents/{slug}/",
        "/no/such/page/",
        "http://elsewhere.example/agents/{slug}/user/?user_id=ann",
    ],
)
def test_an_add_from_any_other_address_resets_the_list(editor_client, agent, shown):
    make_memory(agent, "ann", "Existing.")
    response = _add_from(editor_client, agent, shown.format(slug=agent.slug))
    assert response.status_code == 200 and "HX-Reswap" not in response
    assert response.content.decode().lstrip().startswith('<div id="memory-list">')


def test_the_first_memory_of_a_user_clears_the_empty_list(editor_client, agent):
    make_person("new@example.com")
    make_memory(agent, "ann", "Someone else's.")
    shown = user_page(agent, "new@example.com")
    assert 'id="empty-memories" class="empty-state"' in editor_client.get(shown).content.decode()
    response = _add_from(editor_client, agent, shown, "new@example.com")
    html = response.content.decode()
    assert response["HX-Reswap"] == "none"
    assert '<div id="empty-memories" hx-swap-oob="true"></div>' in html
    assert memory_texts(agent, "new@example.com") == ["Renewal is in May."]


def test_a_memory_stamped_later_than_now_keeps_the_top_and_the_list_is_reset(editor_client, agent):
    """A runtime whose clock runs ahead (or one writing milliseconds) sorts above the new
    memory: the list is read again rather than shown in an order a reload would not show."""
    for user_id, stamp in (("in-seconds", 4_102_444_800), ("in-ms", 4_102_444_800_000)):
        make_memory(agent, user_id, f"Stamped {stamp}.")
        with runtime.in_agent_schema(agent) as tables:
            tables.Memory.objects.filter(user_id=user_id).update(updated_at=stamp)
        response = _add_from(editor_client, agent, user_page(agent, user_id), user_id)
        html = response.content.decode()
        assert "HX-Reswap" not in response and html.lstrip().startswith('<div id="memory-list">')
        assert html.index(f"Stamped {stamp}.") < html.index("Renewal is in May.")


@pytest.mark.parametrize(
    "address",
    [
        "http://[/agents/x/user/?user_id=ann",  # urlsplit refuses it
        "http://testserver/agents/{slug}/user/?user_id=ann" + "&x" * 1001,  # too many fields
        "http://testserver/agents/{slug}/user/?user_id=ann&pad=" + "p" * 9000,
        "http://testserver/agents/{slug}/user/?user_id=%FF%FE",
        "http://testserver/agents/{slug}/user/?user_id=ann%00",
        "not an address at all",
    ],
)
def test_an_address_that_cannot_be_read_still_adds_once_and_answers_the_list(
    editor_client, agent, address
):
    make_memory(agent, "ann", "Existing.")
    response = _add_from(editor_client, agent, address.format(slug=agent.slug))
    assert response.status_code == 200 and "HX-Reswap" not in response
    assert response.content.decode().lstrip().startswith('<div id="memory-list">')
    assert sorted(memory_texts(agent, "ann")) == ["Existing.", "Renewal is in May."]


def test_a_site_served_under_a_path_still_puts_the_row_on_top(editor_client, agent):
    make_memory(agent, "ann", "Existing.")
    add_url = reverse("memories:add", args=[agent.slug])  # the path behind the prefix
    set_script_prefix("/studio/")  # as WSGIHandler sets it from SCRIPT_NAME
    try:
        response = editor_client.post(
            add_url,
            {"user_id": "ann", "text": "Renewal is in May.", "topics": ""},
            HTTP_HX_CURRENT_URL="http://testserver" + user_page(agent, "ann"),
            **HTMX,
        )
    finally:
        clear_script_prefix()
    assert response["HX-Reswap"] == "none"
    assert "/studio/agents/" in response.content.decode()  # the row's links keep the prefix


@pytest.mark.django_db(transaction=True)
def test_the_row_put_on_top_is_what_agno_reads(make_agent, agno_db_for, client):
    from agno.db.schemas.memory import UserMemory

    agent = make_agent()
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory="Written by agno.", user_id="ann", topics=["x"]))
    client.force_login(make_staff("editor-prepend", "Editor"))
    response = _add_from(client, agent, user_page(agent, "ann"), text="Added on top.")
    assert response["HX-Reswap"] == "none"
    stored = {m.memory: m for m in agno.get_user_memories(user_id="ann")}
    assert set(stored) == {"Written by agno.", "Added on top."}
    added = stored["Added on top."]
    assert f'data-memory-id="{added.memory_id}"' in response.content.decode()
    assert added.topics == ["billing"]


def test_adding_the_first_memory_of_an_agent_that_never_ran_creates_its_tables(
    editor_client, agent
):
    make_person("new@example.com")
    page = editor_client.get(user_page(agent, "new@example.com")).content.decode()
    assert "has not run yet" in page
    with runtime.in_agent_schema(agent) as tables:
        assert not tables.any
    response = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {"user_id": "new@example.com", "text": "Seeded."},
    )
    assert response.status_code == 302
    assert response["Location"] == user_page(agent, "new@example.com")
    followed = editor_client.get(response["Location"]).content.decode()
    assert "Memory added. The agent&#x27;s runtime tables were created for it." in followed
    with runtime.in_agent_schema(agent) as tables:
        assert tables.memories and tables.sessions and tables.runs
    assert memory_texts(agent, "new@example.com") == ["Seeded."]
    assert AuditEvent.objects.filter(action="runtime.tables_created").count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": ""}, "cannot be empty"),
        ({"text": "   \n\t "}, "cannot be empty"),
        ({"text": "x" * 10_001}, "at most 10,000 characters"),
        ({"text": "ok", "topics": [f"t{n}" for n in range(21)]}, "At most 20 topics"),
        ({"text": "ok", "topics": ["fine", "y" * 65]}, "each is at most 64 letters"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_written(
    editor_client, agent, data, message
):
    make_memory(agent, "ann", "Existing.")
    url = reverse("memories:add", args=[agent.slug])
    # The message is the field's error, not the hint that always sits under the form.
    field_error = re.compile(r'<p class="field-error">[^<]*' + re.escape(message))
    htmx = editor_client.post(url, {"user_id": "ann", **data}, **HTMX)
    assert htmx.status_code == 422
    assert field_error.search(htmx.content.decode())
    assert htmx["HX-Retarget"] == "#add-form"
    toast = json.loads(htmx["HX-Trigger"])["toast"]
    assert toast["level"] == "error" and message in toast["message"]
    plain = editor_client.post(url, {"user_id": "ann", **data})
    assert plain.status_code == 422 and field_error.search(plain.content.decode())
    assert memory_texts(agent, "ann") == ["Existing."]
    assert not AuditEvent.objects.filter(action="memory.added").exists()


def test_a_refused_plain_add_keeps_the_users_memories_on_the_page(editor_client, agent):
    make_memory(agent, "ann", "Existing.")
    response = editor_client.post(reverse("memories:add", args=[agent.slug]), {"user_id": "ann"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "cannot be empty" in html
    assert "Existing." in html and "No memories for this user yet." not in html
    assert memory_texts(agent, "ann") == ["Existing."]


def test_topics_arrive_one_per_box_with_commas_kept_and_blanks_ignored(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    response = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {
            "user_id": "ann",
            "text": "Lives in Manhattan.",
            "topics": ["New York, NY", "", "  home  ", "   ", "home", "a\x00b"],
        },
    )
    assert response.status_code == 302
    (stored,) = agno.get_user_memories(user_id="ann")
    assert stored.memory == "Lives in Manhattan."
    assert stored.topics == ["New York, NY", "home", "ab"]


def test_the_add_form_has_one_box_per_topic_and_an_empty_one_without_javascript(
    editor_client, agent
):
    refused = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {"user_id": "ann", "text": "", "topics": ["New York, NY", "billing"]},
    )
    assert refused.status_code == 422
    form = re.search(r'<form id="add-form".*?</form>', refused.content.decode(), re.S).group()
    boxes = re.findall(r'<input type="text" name="topics" value="([^"]*)"', form)
    assert boxes == ["New York, NY", "billing", ""]  # what was typed, kept, plus a new box
    assert "data-add-topic" in form and "data-remove-topic" in form
    assert memory_texts(agent, "ann") == []


def test_a_typed_user_id_too_long_for_the_runtimes_index_is_refused_in_words(editor_client, agent):
    make_memory(agent, "ann", "Existing.")
    # Random letters do not compress: 3,000 of them are past a btree entry's ~2,700 bytes.
    long_id = "".join(random.Random(3).choices(string.ascii_letters + string.digits, k=3_000))
    url = reverse("memories:add", args=[agent.slug])
    for headers in (HTMX, {}):
        response = editor_client.post(url, {"user_id": long_id, "text": "Fact."}, **headers)
        assert response.status_code == 400
        told = response.content.decode()
        if headers:
            told = json.loads(response["HX-Trigger"])["toast"]["message"]
        assert "too long for Postgres to index" in told and "Shorten it" in told
    moved = editor_client.post(
        reverse("memories:move_user", args=[agent.slug]), {"user_id": "ann", "to": long_id}
    )
    assert moved.status_code == 400 and "too long for Postgres" in moved.content.decode()
    assert memory_texts(agent, long_id) == [] and memory_texts(agent, "ann") == ["Existing."]
    assert not AuditEvent.objects.filter(action__in=["memory.added", "memories.moved"]).exists()
