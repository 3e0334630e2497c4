"""Sensitive data in sight: badges on a user's rows, a count per user in the users list, the
agent-wide list masking what matched (an Editor reveals it), and the Memory tab's "Recently
remembered" feed, which answers 204 when nothing is new. agno writes every row."""

from __future__ import annotations

import time
from html import unescape

import pytest
from agno.db.schemas.memory import UserMemory
from django.urls import reverse

from memories import flags
from memories.models import SensitiveFlag
from memories.sensitive import masked
from tests.factories import memory_url, shown_version, user_page

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}
SECRET = "My password is Tulip-2024!"


@pytest.fixture
def agno(agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="p1", memory=SECRET, user_id="ann"))
    agno.upsert_user_memory(UserMemory(memory_id="t1", memory="Likes tea.", user_id="ann"))
    agno.upsert_user_memory(UserMemory(memory_id="b1", memory="Likes coffee.", user_id="bob"))
    flags.scan_next_batch(agent)
    return agno


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return unescape(response.content.decode())


def test_a_flagged_row_carries_its_badge_on_the_user_page(viewer_client, agent, agno):
    html = page(viewer_client, user_page(agent, "ann"))
    rows = [row.split("</tr>")[0] for row in html.split('class="memory-row"')[1:]]
    flagged = [row for row in rows if SECRET in row]
    plain = [row for row in rows if "Likes tea." in row]
    assert len(flagged) == 1 and len(plain) == 1
    assert 'class="badge danger">Password' in flagged[0]
    assert "badge danger" not in plain[0]


def test_a_flagged_row_keeps_its_badge_after_a_save_a_cancel_and_a_refused_delete(
    editor_client, agent, agno
):
    """The row fragments htmx swaps in carry the badges the list showed: an inline edit that
    keeps the secret, its Cancel, and a delete refused as stale."""
    version = shown_version(agent, "p1")
    cancel = editor_client.get(memory_url(agent, "p1", user_id="ann"), **HTMX)
    assert 'class="badge danger">Password' in cancel.content.decode()
    saved = editor_client.post(
        memory_url(agent, "p1", "edit", user_id="ann"),
        {"user_id": "ann", "text": SECRET + " (rotated)", "topics": [], "version": version},
        **HTMX,
    )
    assert saved.status_code == 200
    assert 'class="badge danger">Password' in saved.content.decode()
    refused = editor_client.post(
        memory_url(agent, "p1", "delete", user_id="ann"),
        {"user_id": "ann", "version": version},  # the version before the save: stale
        **HTMX,
    )
    assert refused.status_code == 409
    assert 'class="badge danger">Password' in refused.content.decode()
    assert agno.get_user_memory("p1").memory == SECRET + " (rotated)"  # the refusal kept it
    assert SensitiveFlag.objects.get(agent=agent, memory_id="p1").kinds == ["password"]
    cleaned = editor_client.post(
        memory_url(agent, "p1", "edit", user_id="ann"),
        {
            "user_id": "ann",
            "text": "Rotated, nothing kept.",
            "topics": [],
            "version": shown_version(agent, "p1"),
        },
        **HTMX,
    )
    assert "badge danger" not in cleaned.content.decode()  # the edit took the secret out
    assert not SensitiveFlag.objects.filter(agent=agent, memory_id="p1").exists()
    plain = editor_client.get(memory_url(agent, "t1", user_id="ann"), **HTMX)
    assert "badge danger" not in plain.content.decode()


def test_a_flag_of_a_kind_the_studio_no_longer_knows_shows_as_stored(editor_client, agent, agno):
    """A stored flag whose kind no detector names any more (renamed, removed) is still shown,
    under its stored name, on the user page, the row fragment and the sensitive list."""
    SensitiveFlag.objects.filter(agent=agent, memory_id="p1").update(kinds=["legacy_kind"])
    for url, extra in (
        (user_page(agent, "ann"), {}),
        (memory_url(agent, "p1", user_id="ann"), HTMX),
        (reverse("memories:sensitive", args=[agent.slug]), {}),
    ):
        response = editor_client.get(url, **extra)
        assert response.status_code == 200, url
        assert '<span class="badge danger">legacy_kind</span>' in response.content.decode(), url


def test_the_users_list_counts_flagged_memories_per_user(viewer_client, agent, agno):
    html = page(viewer_client, reverse("agents:memory_tab", args=[agent.slug]))
    assert "1 sensitive" in html
    ann_link = reverse("memories:user", args=[agent.slug]) + "?user_id=ann&sensitive=1"
    assert f'href="{ann_link}"' in html
    assert html.count(" sensitive</a>") == 1  # bob has none


def test_the_sensitive_list_masks_what_matched_and_an_editor_reveals_it(
    viewer_client, editor_client, agent, agno
):
    assert masked(SECRET) == "My password is Tul••••"
    url = reverse("memories:sensitive", args=[agent.slug])
    viewer_html = page(viewer_client, url)
    assert "My password is Tul••••" in viewer_html and "Tulip-2024!" not in viewer_html
    editor_html = page(editor_client, url)
    assert "My password is Tul••••" in editor_html
    assert "<summary>Reveal</summary>" in editor_html and SECRET in editor_html


def test_recently_remembered_shows_the_newest_and_answers_204_when_nothing_is_new(
    viewer_client, agent, agno
):
    url = reverse("agents:recent", args=[agent.slug])
    first = viewer_client.get(url, **HTMX)
    html = unescape(first.content.decode())
    assert first.status_code == 200
    assert "My password is Tul••••" in html and "Likes coffee." in html
    assert 'title="password"' in html  # the flagged one is marked
    assert reverse("memories:user", args=[agent.slug]) + "?user_id=bob" in html
    seen = html.split("seen=", 1)[1].split('"', 1)[0]
    unchanged = viewer_client.get(f"{url}?seen={seen}", **HTMX)
    assert unchanged.status_code == 204 and unchanged.content == b""
    agno.upsert_user_memory(
        # An hour ahead of the others: the newest (2**40 read as seconds would be, but it is
        # milliseconds, year 2004, and sorts as such).
        UserMemory(
            memory_id="n1",
            memory="Just moved to Oslo.",
            user_id="cat",
            updated_at=int(time.time()) + 3600,
        )
    )
    changed = viewer_client.get(f"{url}?seen={seen}", **HTMX)
    assert changed.status_code == 200 and "Just moved to Oslo." in changed.content.decode()
    tab = page(viewer_client, reverse("agents:memory_tab", args=[agent.slug]))
    assert "Recently remembered" in tab and f'hx-get="{url}"' in tab


def test_recently_remembered_masks_flagged_memories_and_only_an_editor_reveals_them(
    viewer_client, editor_client, agent, agno
):
    url = reverse("agents:recent", args=[agent.slug])
    tab = reverse("agents:memory_tab", args=[agent.slug])
    # The feed as htmx polls it, as the no-JS link opens it, and the tab around it.
    for response in (
        viewer_client.get(url, **HTMX),
        viewer_client.get(url),
        viewer_client.get(tab),
        viewer_client.get(tab, **HTMX),
    ):
        assert response.status_code == 200
        assert "Tulip-2024!" not in unescape(response.content.decode())
    viewer_feed = unescape(viewer_client.get(url, **HTMX).content.decode())
    assert "My password is Tul••••" in viewer_feed and "Reveal" not in viewer_feed
    assert "Likes tea." in viewer_feed  # unflagged memories are shown whole
    editor_feed = unescape(editor_client.get(url, **HTMX).content.decode())
    assert "My password is Tul••••" in editor_feed
    assert editor_feed.count("<summary>Reveal</summary>") == 1 and SECRET in editor_feed


def test_a_flagged_memory_the_detectors_no_longer_match_is_hidden_whole(viewer_client, agent, agno):
    # A flag from an earlier scan whose match today's detectors do not find again.
    SensitiveFlag.objects.create(
        agent=agent, memory_id="t1", user_id="ann", kinds=["api_key"], memory_changed_at=0
    )
    feed = unescape(
        viewer_client.get(reverse("agents:recent", args=[agent.slug]), **HTMX).content.decode()
    )
    assert "Likes tea." not in feed and "••••" in feed


def test_a_rechecked_flag_keeps_its_place_on_the_sensitive_list(agent, agno_db_for):
    agno = agno_db_for(agent)
    now = int(time.time())
    for n in range(4):  # f0 newest ... f3 oldest
        agno.upsert_user_memory(
            UserMemory(memory_id=f"f{n}", memory=f"{SECRET} ({n})", user_id="ann")
        )
    from memories import runtime

    with runtime.in_agent_schema(agent) as tables, tables.cursor() as cursor:
        for n in range(4):
            cursor.execute(
                tables.sql("UPDATE {memories} SET updated_at = %s WHERE memory_id = %s"),
                [now - 100 * n, f"f{n}"],
            )
    flags.scan_next_batch(agent)
    with runtime.in_agent_schema(agent) as tables, tables.cursor() as cursor:
        # f2 changes and is still sensitive (now a card); f1 is gone.
        cursor.execute(
            tables.sql(
                "UPDATE {memories} SET memory = %s::jsonb, updated_at = %s WHERE memory_id = 'f2'"
            ),
            ['"Card 4111 1111 1111 1111"', now + 50],
        )
        cursor.execute(tables.sql("DELETE FROM {memories} WHERE memory_id = 'f1'"))
    shown = flags.flagged_page(agent, None)
    assert [memory.memory_id for _, memory in shown.rows] == ["f0", "f2", "f3"]
    assert shown.counts == flags.sensitive_counts(agent) == {"password": 2, "card": 1}
