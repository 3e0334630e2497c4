"""Duplicates: the page per user and per agent (memories.duplicates_views), the grouping
(memories.duplicates) and the removal (actions.remove_duplicates)."""

from __future__ import annotations

import re
from html import unescape as html_unescape
from urllib.parse import urlencode
from uuid import uuid4

import pytest
from agno.db.schemas.memory import UserMemory
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from agents.models import Agent
from memories import duplicates, runtime
from memories.context_cost import count_tokens
from memories.models import AuditEvent, TrashedMemory
from memories.runtime import duplicates as runtime_duplicates
from memories.runtime.access import in_agent_schema
from tests.factories import make_memories, make_memory, memory_texts, run_queued_tasks, user_page

NEAR_A = "Likes green tea in the morning with a little honey."
NEAR_B = "Likes green tea in the mornings with a little honey!"


@pytest.fixture(autouse=True)
def trigrams(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")


def page_url(agent: Agent, **params: str) -> str:
    return f"{reverse('memories:duplicates', args=[agent.slug])}?{urlencode(params)}"


def searched(client, agent: Agent, **params: str):
    """The Duplicates page of a scope after its search ran: an Editor starts it, a worker
    runs it, and the page shows what the worker stored."""
    started = client.post(reverse("memories:search_duplicates", args=[agent.slug]), params)
    assert started.status_code == 302
    run_queued_tasks()
    return client.get(page_url(agent, **params))


def aged(agent: Agent, user_id: str, text: str, age: int, topics=()) -> str:
    """A memory last changed `age` seconds before the others: the older loses."""
    [memory] = make_memories(
        agent, user_id, 1, text=text, updated_at=1_700_000_000 - age, topics=list(topics) or None
    )
    return memory.memory_id


def similarity(a: str, b: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
        schema = cursor.fetchone()[0]
        cursor.execute(f'SELECT "{schema}".similarity(%s, %s)', [a, b])
        return cursor.fetchone()[0]


def checked_ids(html: str) -> set[str]:
    return set(re.findall(r'name="remove" value="([^"]+)" checked', html))


def test_a_users_repeats_are_grouped_with_the_newest_kept(editor_client, agent):
    old = aged(agent, "ann", "Likes green tea.", 300)
    new = aged(agent, "ann", "  likes GREEN tea!! ", 100)
    near_old = aged(agent, "ann", NEAR_A, 200)
    near_new = aged(agent, "ann", NEAR_B, 50)
    aged(agent, "ann", "Lives in Porto.", 10)
    aged(agent, "bob", "Likes green tea.", 10)  # another user's: never ann's repeat
    response = searched(editor_client, agent, user_id="ann")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<table class="data-table duplicate-group">') == 2
    assert html.count('<span class="badge">Exact repeats</span>') == 1
    assert html.count('<span class="badge warning">Near repeats</span>') == 1
    assert checked_ids(html) == {old, near_old}  # all but the newest of each group
    assert f'value="{new}" >' in html or f'value="{new}"> ' in html
    saved = count_tokens("\n- Likes green tea.") + count_tokens(f"\n- {NEAR_A}")
    assert f"saves about <strong>{saved} tokens</strong>" in html
    assert "Lives in Porto." not in html
    assert near_new in html


def test_exact_repeats_ignore_case_spaces_and_punctuation(agent):
    first = make_memory(agent, "ann", "Likes green tea.").memory_id
    second = make_memory(agent, "ann", "  likes GREEN,   tea!! ").memory_id
    make_memory(agent, "ann", "Likes green teas.")
    [group] = duplicates.find_duplicates(agent, user_id="ann", near=False).groups
    assert group.kind == "exact"
    assert {m.memory_id for m in group.members} == {first, second}


def test_the_threshold_decides_what_is_near(agent):
    make_memory(agent, "ann", NEAR_A)
    make_memory(agent, "ann", NEAR_B)
    alike = similarity(NEAR_A, NEAR_B)
    assert 0.5 < alike < 0.95
    above = duplicates.find_duplicates(agent, user_id="ann", threshold=round(alike + 0.04, 2))
    below = duplicates.find_duplicates(agent, user_id="ann", threshold=round(alike - 0.04, 2))
    assert above.groups == []
    [group] = below.groups
    assert group.kind == "near" and group.similarity == pytest.approx(alike, abs=1e-4)
    exact_only = duplicates.find_duplicates(agent, user_id="ann", threshold=0.3, near=False)
    assert exact_only.groups == []


def test_the_agent_page_groups_each_users_repeats_apart(editor_client, agent):
    make_memories(agent, "ann", 3, text="Same thing.")
    make_memories(agent, "bob", 2, text="Same thing.")
    make_memory(agent, "cat", "Same thing.")
    response = searched(editor_client, agent)
    html = response.content.decode()
    assert response.status_code == 200 and "Repeated memories of every user" in html
    assert html.count("duplicate-group") == 2
    assert len(checked_ids(html)) == 2 + 1
    memory_tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]))
    assert reverse("memories:duplicates", args=[agent.slug]) in memory_tab.content.decode()


def test_removal_goes_through_delete_and_agno_reads_the_merged_topics(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    for memory_id, text, topics, changed in (
        ("keep", "Has a dog named Rex.", ["pets"], 1_700_000_300),
        ("old1", "has a dog named rex", ["dogs"], 1_700_000_200),
        ("old2", "Has a dog, named Rex!", ["pets", "rex"], 1_700_000_100),
        ("other", "Lives in Porto.", None, 1_700_000_000),
    ):
        agno.upsert_user_memory(
            UserMemory(
                memory_id=memory_id,
                memory=text,
                user_id="ann",
                topics=topics,
                created_at=changed,
                updated_at=changed,
            )
        )
    response = editor_client.post(
        reverse("memories:remove_duplicates", args=[agent.slug]),
        {"user_id": "ann", "remove": ["old1", "old2"], "merge_topics": "1"},
    )
    assert response.status_code == 302
    assert response["Location"] == page_url(agent, threshold="0.8", user_id="ann")
    left = {m.memory_id: m for m in agno.get_user_memories(user_id="ann")}
    assert set(left) == {"keep", "other"}
    assert left["keep"].topics == ["pets", "dogs", "rex"]
    deleted = AuditEvent.objects.get(action=AuditEvent.Action.MEMORIES_BULK_DELETED)
    assert sorted(deleted.details["memory_ids"]) == ["old1", "old2"]
    event = AuditEvent.objects.get(action=AuditEvent.Action.DUPLICATES_REMOVED)
    assert event.details == {"removed": 2, "groups": 1, "users": 1, "topics_merged": True}
    assert event.user_id == "ann"
    # The removed repeats wait in the trash, restorable, marked as duplicates.
    trashed = TrashedMemory.objects.filter(agent=agent).order_by("memory_id")
    assert [(t.memory_id, t.reason) for t in trashed] == [
        ("old1", TrashedMemory.Reason.DUPLICATE),
        ("old2", TrashedMemory.Reason.DUPLICATE),
    ]


def test_topics_stay_as_they_are_unless_merging_is_asked(editor_client, agent):
    keep = aged(agent, "ann", "Same.", 0, topics=["a"])
    old = aged(agent, "ann", "same", 10, topics=["b"])
    response = editor_client.post(
        reverse("memories:remove_duplicates", args=[agent.slug]), {"user_id": "ann", "remove": old}
    )
    assert response.status_code == 302
    [kept] = runtime.user_memories(agent, "ann").items
    assert (kept.memory_id, kept.topics) == (keep, ["a"])


def test_bad_requests_are_refused_and_remove_nothing(editor_client, agent):
    keep = aged(agent, "ann", "Same.", 0)
    old = aged(agent, "ann", "same", 10)
    lone = aged(agent, "ann", "Lives in Porto.", 20)
    remove_url = reverse("memories:remove_duplicates", args=[agent.slug])
    cases = [
        ({"user_id": "ann"}, 400, "Choose at least one repeat to remove."),
        ({"user_id": "ann", "remove": [keep, old]}, 409, "keep at least one of each group"),
        ({"user_id": "ann", "remove": lone}, 409, "no longer repeats"),
        ({"user_id": "ann", "remove": old, "threshold": "x"}, 400, "between 0.3 and 1"),
        ({"user_id": "ann", "remove": old, "threshold": "0.1"}, 400, "at least 0.3"),
        ({"user_id": "ann", "remove": old, "threshold": "nan"}, 400, "between 0.3 and 1"),
        ({"user_id": "a\x00", "remove": old}, 400, "U+0000"),
    ]
    for data, status, message in cases:
        response = editor_client.post(remove_url, data)
        assert response.status_code == status, data
        assert message in response.content.decode(), data
    assert editor_client.get(page_url(agent, threshold="2")).status_code == 400
    assert memory_texts(agent, "ann") == ["Lives in Porto.", "Same.", "same"]
    assert not AuditEvent.objects.filter(action__startswith="duplicates").exists()


def test_a_viewer_sees_the_groups_but_cannot_remove(viewer_client, editor_client, agent):
    aged(agent, "ann", "Same.", 0)
    old = aged(agent, "ann", "same", 10)
    searched(editor_client, agent, user_id="ann")
    page = viewer_client.get(page_url(agent, user_id="ann"))
    assert page.status_code == 200 and "<fieldset disabled" in page.content.decode()
    response = viewer_client.post(
        reverse("memories:remove_duplicates", args=[agent.slug]), {"user_id": "ann", "remove": old}
    )
    assert response.status_code == 403
    assert len(memory_texts(agent, "ann")) == 2


def test_without_pg_trgm_exact_repeats_show_with_a_clear_message(editor_client, agent):
    make_memories(agent, "ann", 2, text="Same thing.")
    with connection.cursor() as cursor:
        # Inside the test's transaction: rolled back with it, for every other test.
        cursor.execute("DROP EXTENSION pg_trgm CASCADE")
    response = searched(editor_client, agent, user_id="ann")
    html = response.content.decode()
    assert response.status_code == 200
    assert "pg_trgm extension" in html and "manage.py runtime_indexes" in html
    assert html.count("duplicate-group") == 1


def test_the_user_page_links_its_duplicates(editor_client, agent):
    make_memory(agent, "ann/x", "Fact.")
    html = editor_client.get(user_page(agent, "ann/x")).content.decode()
    assert reverse("memories:duplicates", args=[agent.slug]) + "?user_id=ann%2Fx" in html


def test_removed_repeats_are_undone_from_the_message_without_javascript(
    editor_client, agent, agno_db_for
):
    keep = aged(agent, "ann", "Has a dog named Rex.", 0)
    old = aged(agent, "ann", "has a dog named rex", 100)
    response = editor_client.post(
        reverse("memories:remove_duplicates", args=[agent.slug]),
        {"user_id": "ann", "remove": [old]},
        follow=True,
    )
    html = response.content.decode()
    assert "Removed 1 repeated memories" in html
    form = html.split('class="flash-undo"', 1)[1].split("</form>", 1)[0]
    assert f'action="{reverse("memories:restore_trash", args=[agent.slug])}"' in html
    trashed = re.findall(r'name="trashed" value="(\d+)"', form)
    assert trashed == [str(TrashedMemory.objects.get(memory_id=old).pk)]
    after = html_unescape(re.search(r'name="next" value="([^"]*)"', form).group(1))
    assert after == page_url(agent, threshold="0.8", user_id="ann")
    back = editor_client.post(
        reverse("memories:restore_trash", args=[agent.slug]), {"trashed": trashed, "next": after}
    )
    assert back.status_code == 302 and back["Location"] == after
    agno = agno_db_for(agent)
    assert sorted(m.memory_id for m in agno.get_user_memories(user_id="ann")) == sorted([keep, old])
    assert not TrashedMemory.objects.exists()


def test_the_agent_wide_look_finds_near_repeats_through_the_trigram_index(agent):
    make_memory(agent, "ann", NEAR_A)
    make_memory(agent, "ann", NEAR_B)
    make_memory(agent, "bob", NEAR_A)  # alike, but another user's: never grouped with ann's
    make_memory(agent, "cat", NEAR_B)
    # Enough other memories, none alike, that a lookup by memory_id order would read
    # thousands of rows where the trigram index reads a handful.
    for n in range(8):
        make_memories(agent, f"user{n}", 500, memory=lambda n: f"{uuid4().hex} {uuid4().hex}")
    call_command("runtime_indexes", "--agent", agent.slug)
    alike = similarity(NEAR_A, NEAR_B)
    below = duplicates.find_duplicates(
        agent, user_id=None, all_users=True, threshold=round(alike - 0.04, 2)
    )
    [group] = below.groups  # one: ann's pair, not bob's and cat's, nor dan's
    assert group.kind == "near" and group.similarity == pytest.approx(alike, abs=1e-4)
    assert {m.user_id for m in group.members} == {"ann"} and len(group.members) == 2
    above = duplicates.find_duplicates(
        agent, user_id=None, all_users=True, threshold=round(alike + 0.04, 2)
    )
    assert above.groups == []
    # The lookup each memory makes is served by the index runtime_indexes built.
    with in_agent_schema(agent) as tables, tables.cursor() as cursor:
        cursor.execute(tables.sql("ANALYZE {memories}"))
        trgm = runtime_duplicates._trigram_schema(cursor)
        cursor.execute("SELECT set_config('pg_trgm.similarity_threshold', %s, true)", [str(alike)])
        sql = runtime_duplicates._near_sql(trgm, "TRUE", by_index=True)
        cursor.execute("EXPLAIN " + tables.sql(sql), {"u": None, "n": 1000, "threshold": alike})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "idx_ms_memories_text_trgm" in plan


def test_a_user_with_many_memories_is_searched_through_the_index_with_the_same_answer(
    agent, monkeypatch
):
    from memories.runtime import duplicates as runtime_duplicates

    make_memory(agent, "ann", NEAR_A)
    make_memory(agent, "ann", NEAR_B)
    make_memory(agent, "bob", NEAR_A)  # alike, but another user's
    make_memories(agent, "ann", 6, memory=lambda n: f"{uuid4().hex} {uuid4().hex}")
    call_command("runtime_indexes", "--agent", agent.slug)
    threshold = round(similarity(NEAR_A, NEAR_B) - 0.04, 2)
    pairwise = runtime_duplicates.near_pairs(agent, "ann", all_users=False, threshold=threshold)
    monkeypatch.setattr(runtime_duplicates, "PAIRWISE_LIMIT", 5)  # ann's 8 are "many"
    by_index = runtime_duplicates.near_pairs(agent, "ann", all_users=False, threshold=threshold)
    assert len(pairwise) == 1 and by_index == pairwise
