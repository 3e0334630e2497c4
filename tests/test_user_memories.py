"""One user's memories: list, filters, add, inline edit, delete by click, bulk delete."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from memories import actions, runtime
from memories.models import AuditEvent, Memory
from memories.runtime.memories import insert_memory
from tests.factories import make_person

HTMX = {"HTTP_HX_REQUEST": "true"}
ODD_USER_IDS = ["a/b", "50%", "x y", "ü@example.com", "a+b&c=d?#", " padded "]


def user_page(agent, user_id: str, **params) -> str:
    return (
        reverse("memories:user", args=[agent.slug])
        + "?"
        + "&".join(
            f"{k}={quote(str(v), safe='')}" for k, v in {"user_id": user_id, **params}.items()
        )
    )


def add(agent, user_id: str, text: str, topics=()):
    return insert_memory(agent, user_id, text=text, topics=list(topics))[0]


def texts(agent, user_id: str) -> list[str]:
    return sorted(m.text for m in runtime.user_memories(agent, user_id, limit=200).items)


def test_it_shows_a_users_memories_with_topics_input_and_times(editor_client, agent):
    make_person("ann@example.com", first_name="Ann", timezone="Asia/Tokyo")
    memory, _ = insert_memory(
        agent,
        "ann@example.com",
        text="Prefers concise answers.",
        topics=["style", "prefs"],
        input_text="Keep it short.",
    )
    response = editor_client.get(user_page(agent, "ann@example.com"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Prefers concise answers." in html
    assert '<span class="chip">style</span>' in html
    assert "<summary>Input</summary><p>Keep it short.</p>" in html
    assert "Asia/Tokyo" in html  # exact times shown in the user's own zone
    assert f'data-memory-id="{memory.memory_id}"' in html


def test_htmx_filtering_returns_only_the_list(editor_client, agent):
    add(agent, "ann", "Renewal is in November.", ["billing"])
    add(agent, "ann", "Likes tea.", ["drinks"])
    response = editor_client.get(
        user_page(agent, "ann", topic="billing"), HTTP_HX_TARGET="memory-list", **HTMX
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="memory-list">')
    assert "Renewal is in November." in html and "Likes tea." not in html
    searched = editor_client.get(
        user_page(agent, "ann", q="TEA"), HTTP_HX_TARGET="memory-list", **HTMX
    )
    assert "Likes tea." in searched.content.decode() and "Renewal" not in searched.content.decode()


def test_sort_by_created_and_pagination(editor_client, agent):
    for n in range(30):
        memory = add(agent, "ann", f"Fact {n:02d}")
        with runtime.reach(agent):
            Memory.objects.filter(memory_id=memory.memory_id).update(
                created_at=1_000 + n, updated_at=5_000 - n
            )
    oldest = editor_client.get(user_page(agent, "ann", sort="created")).content.decode()
    assert oldest.index("Fact 00") < oldest.index("Fact 01")
    assert "Fact 29" not in oldest and "Next page" in oldest
    newest = runtime.user_memories(agent, "ann", sort="-created")
    second = editor_client.get(user_page(agent, "ann", sort="-created", after=newest.next_cursor))
    assert "Fact 04" in second.content.decode() and "Fact 29" not in second.content.decode()


def test_an_unknown_user_is_404_and_a_broken_cursor_400(editor_client, agent):
    assert editor_client.get(user_page(agent, "nobody")).status_code == 404
    add(agent, "ann", "x")
    response = editor_client.get(user_page(agent, "ann", after="%%%"))
    assert response.status_code == 400
    assert "malformed" in response.content.decode()
    missing = editor_client.get(reverse("memories:user", args=[agent.slug]))
    assert missing.status_code == 400


@pytest.mark.parametrize("user_id", ODD_USER_IDS)
def test_any_user_id_survives_the_round_trip(editor_client, agent, user_id):
    response = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {"user_id": user_id, "text": "Round trip.", "topics": ""},
    )
    assert response.status_code == 302
    assert texts(agent, user_id) == ["Round trip."]
    page = editor_client.get(response["Location"])
    assert page.status_code == 200 and "Round trip." in page.content.decode()
    # The users list links to the same user.
    users_html = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    link = reverse("memories:user", args=[agent.slug]) + "?user_id=" + quote(user_id, safe="")
    assert link in users_html
    assert "Round trip." in editor_client.get(link).content.decode()
    memory = runtime.user_memories(agent, user_id).items[0]
    edited = editor_client.post(
        reverse("memories:edit", args=[agent.slug, memory.memory_id]),
        {
            "user_id": user_id,
            "text": "Edited.",
            "topics": "a",
            "version": memory.version,
        },
    )
    assert edited.status_code == 302
    assert texts(agent, user_id) == ["Edited."]


def test_adding_via_htmx_returns_the_list_with_the_new_memory(editor_client, agent):
    add(agent, "ann", "Existing.")
    response = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {
            "user_id": "ann",
            "text": "  Renewal is in November.  ",
            "topics": "billing, renewal, billing",
            "input": "",
        },
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="memory-list">')
    assert "Renewal is in November." in html
    assert 'id="user-summary" class="stats" hx-swap-oob="true"' in html
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Memory added."
    memory = runtime.user_memories(agent, "ann", search="Renewal").items[0]
    assert memory.text == "Renewal is in November."
    assert memory.topics == ["billing", "renewal"]
    assert memory.input is None
    event = AuditEvent.objects.get(action="memory.added")
    assert event.memory_id == memory.memory_id and event.user_id == "ann"


def test_adding_the_first_memory_of_an_agent_that_never_ran_creates_its_tables(
    editor_client, agent
):
    make_person("new@example.com")
    page = editor_client.get(user_page(agent, "new@example.com")).content.decode()
    assert "has not run yet" in page
    response = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {"user_id": "new@example.com", "text": "Seeded."},
    )
    assert response.status_code == 302
    assert texts(agent, "new@example.com") == ["Seeded."]
    assert AuditEvent.objects.filter(action="runtime.tables_created").count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": ""}, "cannot be empty"),
        ({"text": "   \n\t "}, "cannot be empty"),
        ({"text": "x" * 10_001}, "at most 10,000 characters"),
        ({"text": "ok", "topics": ",".join(f"t{n}" for n in range(21))}, "At most 20 topics"),
        ({"text": "ok", "topics": "fine, " + "y" * 65}, "each is at most 64 letters"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_written(
    editor_client, agent, data, message
):
    add(agent, "ann", "Existing.")
    url = reverse("memories:add", args=[agent.slug])
    htmx = editor_client.post(url, {"user_id": "ann", **data}, **HTMX)
    assert htmx.status_code == 422
    assert message in htmx.content.decode()
    assert htmx["HX-Retarget"] == "#add-form"
    plain = editor_client.post(url, {"user_id": "ann", **data})
    assert plain.status_code == 422 and message in plain.content.decode()
    assert texts(agent, "ann") == ["Existing."]
    assert not AuditEvent.objects.filter(action="memory.added").exists()


def test_inline_edit_returns_the_form_then_the_saved_row(editor_client, agent):
    memory = add(agent, "ann", "Likes tea.", ["drinks"])
    edit_url = reverse("memories:edit", args=[agent.slug, memory.memory_id])
    form = editor_client.get(edit_url, {"user_id": "ann"}, **HTMX).content.decode()
    assert form.lstrip().startswith('<tr class="memory-row editing"')
    assert "Likes tea.</textarea>" in form and 'value="drinks"' in form
    assert "Esc cancels" in form
    cancel = editor_client.get(
        reverse("memories:row", args=[agent.slug, memory.memory_id]), {"user_id": "ann"}, **HTMX
    )
    assert "Likes tea." in cancel.content.decode() and "<textarea" not in cancel.content.decode()
    version = memory.version
    saved = editor_client.post(
        edit_url,
        {"user_id": "ann", "text": "Likes green tea.", "topics": "drinks, tea", "version": version},
        **HTMX,
    )
    assert saved.status_code == 200
    assert (
        "Likes green tea." in saved.content.decode() and "<textarea" not in saved.content.decode()
    )
    after = runtime.get_memory(agent, "ann", memory.memory_id)
    assert after.text == "Likes green tea." and after.topics == ["drinks", "tea"]
    assert after.created_at == memory.created_at and after.updated_at >= memory.updated_at
    event = AuditEvent.objects.get(action="memory.edited")
    assert "tea" not in json.dumps(event.details)


def test_without_javascript_edit_is_a_page_of_its_own(editor_client, agent):
    memory = add(agent, "ann", "Likes tea.")
    page = editor_client.get(
        reverse("memories:edit", args=[agent.slug, memory.memory_id]), {"user_id": "ann"}
    )
    assert (
        page.status_code == 200
        and "<html" in page.content.decode()
        and "Edit memory" in page.content.decode()
    )


def test_a_stale_edit_is_refused_and_the_current_text_shown(editor_client, agent):
    memory = add(agent, "ann", "Likes tea.")
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
        reverse("memories:edit", args=[agent.slug, memory.memory_id]),
        {"user_id": "ann", "text": "Likes green tea.", "topics": "", "version": shown_version},
        **HTMX,
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "changed since you opened it" in html
    assert '<blockquote class="current-text">Likes coffee now.</blockquote>' in html
    assert "Likes green tea.</textarea>" in html  # what the person typed is kept
    assert texts(agent, "ann") == ["Likes coffee now."]
    plain = editor_client.post(
        reverse("memories:edit", args=[agent.slug, memory.memory_id]),
        {"user_id": "ann", "text": "Again.", "topics": "", "version": shown_version},
    )
    assert plain.status_code == 409 and texts(agent, "ann") == ["Likes coffee now."]


def test_editing_another_users_memory_is_404(editor_client, agent):
    memory = add(agent, "bob", "Bob's.")
    response = editor_client.post(
        reverse("memories:edit", args=[agent.slug, memory.memory_id]),
        {"user_id": "ann", "text": "Hijacked.", "version": memory.version},
    )
    assert response.status_code == 404
    assert texts(agent, "bob") == ["Bob's."]


def test_delete_by_click_removes_the_row_and_updates_the_count(editor_client, agent):
    keep, gone = add(agent, "ann", "Keep."), add(agent, "ann", "Secret password hunter2.")
    response = editor_client.post(
        reverse("memories:delete", args=[agent.slug, gone.memory_id]), {"user_id": "ann"}, **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<tr" not in html  # the row's place is emptied
    assert 'hx-swap-oob="true"' in html and '<span class="stat-value">1</span>' in html
    assert texts(agent, "ann") == ["Keep."]
    event = AuditEvent.objects.get(action="memory.deleted")
    assert event.memory_id == gone.memory_id
    assert "hunter2" not in json.dumps(event.details)
    again = editor_client.post(
        reverse("memories:delete", args=[agent.slug, gone.memory_id]), {"user_id": "ann"}, **HTMX
    )
    assert again.status_code == 404
    assert keep.memory_id


def test_a_viewer_sees_no_controls_and_cannot_delete(viewer_client, agent):
    memory = add(agent, "ann", "Stays.")
    page = viewer_client.get(user_page(agent, "ann")).content.decode()
    assert "Stays." in page
    edit_url = reverse("memories:edit", args=[agent.slug, memory.memory_id])
    delete_url = reverse("memories:delete", args=[agent.slug, memory.memory_id])
    assert edit_url not in page and delete_url not in page
    assert "Delete selected" not in page and "Add a memory" not in page
    response = viewer_client.post(
        reverse("memories:delete", args=[agent.slug, memory.memory_id]), {"user_id": "ann"}
    )
    assert response.status_code == 403
    assert texts(agent, "ann") == ["Stays."]


def test_deleting_needs_the_csrf_token(csrf_client, agent):
    memory = add(agent, "ann", "Stays.")
    response = csrf_client.post(
        reverse("memories:delete", args=[agent.slug, memory.memory_id]), {"user_id": "ann"}, **HTMX
    )
    assert response.status_code == 403
    assert texts(agent, "ann") == ["Stays."]


def test_bulk_delete_confirms_the_count_without_javascript(editor_client, agent):
    ids = [add(agent, "ann", f"Fact {n}").memory_id for n in range(3)]
    url = reverse("memories:bulk_delete", args=[agent.slug])
    confirm = editor_client.post(url, {"user_id": "ann", "memory_ids": ids[:2]})
    assert confirm.status_code == 200
    assert "Delete 2 memories of" in confirm.content.decode()
    assert len(texts(agent, "ann")) == 3
    done = editor_client.post(url, {"user_id": "ann", "memory_ids": ids[:2], "confirmed": "1"})
    assert done.status_code == 302
    assert texts(agent, "ann") == ["Fact 2"]
    event = AuditEvent.objects.get(action="memories.bulk_deleted")
    assert event.details["count"] == 2


def test_bulk_delete_via_htmx_returns_the_refreshed_list(editor_client, agent):
    ids = [add(agent, "ann", f"Fact {n}").memory_id for n in range(3)]
    response = editor_client.post(
        reverse("memories:bulk_delete", args=[agent.slug]),
        {
            "user_id": "ann",
            "memory_ids": ids[1:],
            "confirmed": "1",
            "q": "",
            "topic": "",
            "sort": "-updated",
        },
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Fact 0" in html and "Fact 1" not in html and "Fact 2" not in html
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "2 memories deleted."


def test_a_bulk_delete_naming_another_users_memory_is_refused_whole(editor_client, make_agent):
    agent, other_agent = make_agent(), make_agent()
    mine = add(agent, "ann", "Mine.")
    bobs = add(agent, "bob", "Bob's.")
    elsewhere = add(other_agent, "ann", "Other agent.")
    url = reverse("memories:bulk_delete", args=[agent.slug])
    for foreign in (bobs, elsewhere):
        response = editor_client.post(
            url,
            {"user_id": "ann", "memory_ids": [mine.memory_id, foreign.memory_id], "confirmed": "1"},
            **HTMX,
        )
        assert response.status_code == 400
        assert "Nothing was deleted" in response["HX-Trigger"]
    assert texts(agent, "ann") == ["Mine."] and texts(agent, "bob") == ["Bob's."]
    assert texts(other_agent, "ann") == ["Other agent."]
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_page_runs_the_same_queries_for_10_or_1000_memories(
    editor_client, agent, django_assert_max_num_queries
):
    # Transactional, so the count is what production runs (no test savepoints around it).
    make_person("ann@example.com", timezone="Europe/Berlin")
    now = int(time.time())
    with runtime.reach(agent):
        add(agent, "seed", "create tables")
    counts = []
    for total in (10, 1000):
        with runtime.reach(agent):
            Memory.objects.filter(user_id="ann@example.com").delete()
            Memory.objects.bulk_create(
                Memory(
                    memory_id=f"m-{total}-{n}",
                    memory=f"Fact {n}",
                    topics=["a", f"t{n % 7}"],
                    user_id="ann@example.com",
                    created_at=now - n,
                    updated_at=now - n,
                )
                for n in range(total)
            )
        with django_assert_max_num_queries(10), CaptureQueriesContext(connection) as queries:
            response = editor_client.get(user_page(agent, "ann@example.com"))
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # session, user, agent, permissions, schema switch, memories, summary, person;
    # plus the BEGIN and COMMIT of the runtime transaction, which Django counts too.
    assert counts[1] <= 10


@pytest.mark.django_db(transaction=True)
def test_a_memory_deleted_in_the_dashboard_is_gone_for_agno(agent, agno_db_for, editor):
    from agno.db.schemas.memory import UserMemory
    from django.test import Client

    client = Client()
    client.force_login(editor)
    agno = agno_db_for(agent)
    kept = agno.upsert_user_memory(UserMemory(memory="Keep.", user_id="ann"))
    gone = agno.upsert_user_memory(UserMemory(memory="Card 4111 1111 1111 1111.", user_id="ann"))
    response = client.post(
        reverse("memories:delete", args=[agent.slug, gone.memory_id]), {"user_id": "ann"}, **HTMX
    )
    assert response.status_code == 200
    assert [m.memory_id for m in agno.get_user_memories(user_id="ann")] == [kept.memory_id]


def test_plain_delete_redirects_back_and_cancel_without_htmx_goes_to_the_page(editor_client, agent):
    memory = add(agent, "a/b", "Gone.")
    add(agent, "a/b", "Stays.")
    response = editor_client.post(
        reverse("memories:delete", args=[agent.slug, memory.memory_id]), {"user_id": "a/b"}
    )
    assert response.status_code == 302 and response["Location"] == user_page(agent, "a/b")
    assert texts(agent, "a/b") == ["Stays."]
    follow = editor_client.get(response["Location"])
    assert "Memory deleted." in follow.content.decode()
    other = runtime.user_memories(agent, "a/b").items[0]
    row = editor_client.get(
        reverse("memories:row", args=[agent.slug, other.memory_id]), {"user_id": "a/b"}
    )
    assert row.status_code == 302


def test_search_across_every_user_of_an_agent(editor_client, agent):
    add(agent, "ann", "Renewal is in November.")
    add(agent, "bob", "Renewal is in May.")
    add(agent, "bob", "Likes tea.")
    url = reverse("memories:search", args=[agent.slug])
    html = editor_client.get(url, {"q": "renewal"}).content.decode()
    assert "Renewal is in November." in html and "Renewal is in May." in html and "tea" not in html
    partial = editor_client.get(
        url, {"q": "TEA"}, HTTP_HX_TARGET="search-results", **HTMX
    ).content.decode()
    assert partial.lstrip().startswith('<div id="search-results">') and "Likes tea." in partial
    assert editor_client.get(url, {"q": "x", "after": "???"}).status_code == 400


def test_topics_load_on_demand_and_keep_the_chosen_one(editor_client, agent):
    add(agent, "ann", "a", ["billing", "style"])
    add(agent, "ann", "b", ["billing"])
    add(agent, "bob", "c", ["secret-bob-topic"])
    page = editor_client.get(user_page(agent, "ann", topic="style")).content.decode()
    assert '<option value="style" selected>style</option>' in page  # before the list is loaded
    options = editor_client.get(
        reverse("memories:topics", args=[agent.slug]), {"user_id": "ann", "topic": "style"}, **HTMX
    )
    html = options.content.decode()
    assert (
        '<option value="billing" >billing</option>' in html.replace("  ", " ") or "billing" in html
    )
    assert '<option value="style" selected>style</option>' in html
    assert "secret-bob-topic" not in html


def test_relative_times_read_like_a_person_would_say_them():
    from memories.templatetags.studio import relative

    assert [
        relative(s)
        for s in (5, 90, 7200, 86_400 * 3, 86_400 * 20, 86_400 * 70, 86_400 * 800, -7200)
    ] == [
        "just now",
        "1 minute ago",
        "2 hours ago",
        "3 days ago",
        "2 weeks ago",
        "2 months ago",
        "2 years ago",
        "in 2 hours",
    ]
