"""The trash (memories.trash_views, the trash actions): deletes keep the whole row for the
agent's trash_days; Undo and the Trash page put it back exactly, and agno reads it again."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from html import unescape

import pytest
from agno.db.schemas.memory import UserMemory
from django.urls import reverse
from django.utils import timezone

from memories import actions, jobs, pruning
from memories.models import AuditEvent, Job, SensitiveFlag, TrashedMemory
from tests.factories import (
    HTMX,
    memory_url,
    run_queued_tasks,
    set_memory_columns,
    shown_version,
    stored_memories,
)

pytestmark = pytest.mark.django_db(transaction=True)


def seed(agno, user_id: str = "ann") -> list[str]:
    """Three memories written by agno: one with topics, one with JSON null topics and every
    optional column, one whose topics another writer left SQL NULL."""
    agno.upsert_user_memory(
        UserMemory(memory_id="m1", memory="Likes tea.", user_id=user_id, topics=["food"])
    )
    agno.upsert_user_memory(
        UserMemory(
            memory_id="m2",
            memory="Lives in Porto.",
            user_id=user_id,
            input="I moved to Porto",
            feedback="good",
            agent_id="support-bot",
            team_id="team-1",
            created_at=1_000,
            updated_at=2_000,
        )
    )
    agno.upsert_user_memory(UserMemory(memory_id="m3", memory="Owns a cat.", user_id=user_id))
    return ["m1", "m2", "m3"]


def test_a_deleted_memory_is_undone_exactly_and_agno_reads_it(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    seed(agno)
    before = stored_memories(agent.db_schema)
    shown = {"user_id": "ann", "version": shown_version(agent, "m2")}
    response = editor_client.post(memory_url(agent, "m2", "delete"), shown, **HTMX)
    assert response.status_code == 200
    toast = json.loads(response["HX-Trigger"])["toast"]
    entry = TrashedMemory.objects.get(memory_id="m2")
    assert toast["undo"] == {
        "url": reverse("memories:restore_trash", args=[agent.slug]),
        "trashed": [entry.pk],
    }
    assert (entry.user_id, entry.reason, entry.actor_name) == ("ann", "deleted", "edna")
    assert timedelta(days=6, hours=23) < entry.expires_at - timezone.now() <= timedelta(days=7)
    assert agno.get_user_memory("m2") is None

    back = editor_client.post(
        reverse("memories:restore_trash", args=[agent.slug]),
        {"trashed": toast["undo"]["trashed"], "next": "/agents/"},
    )
    assert back.status_code == 302 and back["Location"] == "/agents/"
    assert stored_memories(agent.db_schema) == before  # every column, times included
    memory = agno.get_user_memory("m2")
    assert (memory.memory, memory.input, memory.feedback, memory.updated_at) == (
        "Lives in Porto.",
        "I moved to Porto",
        "good",
        2_000,
    )
    assert not TrashedMemory.objects.exists()
    assert AuditEvent.objects.filter(action="trash.restored", user_id="ann").count() == 1


def test_a_bulk_delete_restores_sql_null_and_json_null_topics_as_they_were(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    ids = seed(agno)
    set_memory_columns(agent.db_schema, "m3", topics="NULL")
    before = stored_memories(agent.db_schema)
    assert [row[2] for row in before] == [False, False, True]  # topics IS NULL, m3 only
    url = reverse("memories:bulk_delete", args=[agent.slug])
    done = editor_client.post(url, {"user_id": "ann", "memory_ids": ids, "confirmed": "1"}, **HTMX)
    undo = json.loads(done["HX-Trigger"])["toast"]["undo"]
    assert len(undo["trashed"]) == 3 and stored_memories(agent.db_schema) == []
    assert "topics" not in TrashedMemory.objects.get(memory_id="m3").row
    assert TrashedMemory.objects.get(memory_id="m2").row["topics"] is None  # JSON null, kept

    restored = editor_client.post(
        reverse("memories:restore_trash", args=[agent.slug]), {"trashed": undo["trashed"]}
    )
    assert restored.status_code == 302
    assert restored["Location"] == reverse("memories:trash", args=[agent.slug])
    assert stored_memories(agent.db_schema) == before
    assert sorted(m.memory_id for m in agno.get_user_memories(user_id="ann")) == ids


def test_a_single_delete_restores_sql_null_and_json_null_topics_as_they_were(
    editor_client, agent, agno_db_for
):
    """One row's delete (plain SQL, not the bulk path) keeps the two kinds of empty topics
    apart in the trash, and its Undo puts each back as stored."""
    agno = agno_db_for(agent)
    seed(agno)
    set_memory_columns(agent.db_schema, "m3", topics="NULL")
    before = stored_memories(agent.db_schema)
    undone = []
    for memory_id in ("m2", "m3"):  # m2: JSON null topics; m3: SQL NULL
        shown = {"user_id": "ann", "version": shown_version(agent, memory_id)}
        done = editor_client.post(memory_url(agent, memory_id, "delete"), shown, **HTMX)
        assert done.status_code == 200
        undone += json.loads(done["HX-Trigger"])["toast"]["undo"]["trashed"]
        assert agno.get_user_memory(memory_id) is None
    assert "topics" not in TrashedMemory.objects.get(memory_id="m3").row
    assert TrashedMemory.objects.get(memory_id="m2").row["topics"] is None
    restored = editor_client.post(
        reverse("memories:restore_trash", args=[agent.slug]), {"trashed": undone}
    )
    assert restored.status_code == 302
    assert stored_memories(agent.db_schema) == before  # topics IS NULL again for m3 only


def test_a_restore_whose_id_exists_again_says_so_and_changes_nothing(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    seed(agno)
    actions.delete_memories(actor=None, agent=agent, user_id="ann", memory_ids=["m1", "m3"])
    agno.upsert_user_memory(UserMemory(memory_id="m3", memory="A new m3.", user_id="bob"))
    before = stored_memories(agent.db_schema)
    trashed = list(TrashedMemory.objects.order_by("memory_id").values_list("pk", flat=True))
    response = editor_client.post(
        reverse("memories:restore_trash", args=[agent.slug]), {"trashed": trashed}, **HTMX
    )
    assert response.status_code == 409
    message = json.loads(response["HX-Trigger"])["toast"]["message"]
    assert "Nothing was restored" in message and "m3" in message
    assert stored_memories(agent.db_schema) == before  # m1 not restored either
    assert agno.get_user_memory("m3").memory == "A new m3."
    assert TrashedMemory.objects.count() == 2


def test_the_trash_page_lists_restores_one_and_deletes_for_good(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    seed(agno)
    actions.delete_memories(actor=None, agent=agent, user_id="ann", memory_ids=["m1", "m2"])
    page = editor_client.get(reverse("memories:trash", args=[agent.slug]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Likes tea." in html and "Lives in Porto." in html and "2 memories in the trash" in html
    m1, m2 = (TrashedMemory.objects.get(memory_id=i).pk for i in ("m1", "m2"))
    one = editor_client.post(
        reverse("memories:restore_trash", args=[agent.slug]), {"trashed": [m1]}, **HTMX
    )
    assert one.status_code == 200 and "Likes tea." not in one.content.decode()
    assert agno.get_user_memory("m1").memory == "Likes tea."
    gone = editor_client.post(
        reverse("memories:purge_trash", args=[agent.slug]), {"trashed": [m2]}, **HTMX
    )
    assert gone.status_code == 200
    assert json.loads(gone["HX-Trigger"])["toast"]["message"] == "1 memory deleted for good."
    assert not TrashedMemory.objects.exists() and agno.get_user_memory("m2") is None
    event = AuditEvent.objects.get(action="trash.purged")
    assert event.details == {"count": 1, "memory_ids": ["m2"]}


def test_a_viewer_sees_the_trash_but_cannot_restore(viewer_client, agent, agno_db_for):
    seed(agno_db_for(agent))
    actions.delete_memory(actor=None, agent=agent, user_id="ann", memory_id="m1")
    page = viewer_client.get(reverse("memories:trash", args=[agent.slug]))
    assert page.status_code == 200 and "Likes tea." in page.content.decode()
    assert "Restore selected" not in page.content.decode()
    entry = TrashedMemory.objects.get()
    refused = viewer_client.post(
        reverse("memories:restore_trash", args=[agent.slug]), {"trashed": [entry.pk]}
    )
    assert refused.status_code == 403 and TrashedMemory.objects.filter(pk=entry.pk).exists()


def test_bad_selections_get_a_clear_answer_and_change_nothing(
    editor_client, make_agent, agno_db_for
):
    agent, other = make_agent(slug="support"), make_agent(slug="sales")
    seed(agno_db_for(other))
    actions.delete_memory(actor=None, agent=other, user_id="ann", memory_id="m1")
    theirs = TrashedMemory.objects.get().pk
    url = reverse("memories:restore_trash", args=[agent.slug])
    for data, status, words in (
        ({}, 400, "Select at least one trashed memory."),
        ({"trashed": ["abc"]}, 400, "named by their number"),
        ({"trashed": ["99999999999999999999"]}, 400, "named by their number"),
        ({"trashed": [str(theirs)]}, 409, "no longer in the trash"),
    ):
        response = editor_client.post(url, data, **HTMX)
        assert response.status_code == status, data
        assert words in json.loads(response["HX-Trigger"])["toast"]["message"]
    for after in ("x", "%C2%B2", "9" * 5_000, "0", "-1", str(2**63)):  # "²" passes isdigit()
        bad_page = editor_client.get(
            reverse("memories:trash", args=[agent.slug]) + f"?after={after}"
        )
        assert bad_page.status_code == 400 and b"malformed" in bad_page.content, after
    assert (
        TrashedMemory.objects.get().pk == theirs
        and agno_db_for(other).get_user_memory("m1") is None
    )


def test_an_undo_never_redirects_to_another_site(editor_client, agent, agno_db_for):
    seed(agno_db_for(agent))
    actions.delete_memory(actor=None, agent=agent, user_id="ann", memory_id="m1")
    response = editor_client.post(
        reverse("memories:restore_trash", args=[agent.slug]),
        {"trashed": [TrashedMemory.objects.get().pk], "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("memories:trash", args=[agent.slug])


def test_a_prune_puts_what_it_deletes_in_the_trash(agent, agno_db_for):
    agno = agno_db_for(agent)
    seed(agno)
    prune = pruning.preview_prune(agent, pruning.PruneCriteria(user_id="ann", keep_newest=1), None)
    actions.run_prune_batch(actor=None, job=prune)
    left = [m.memory_id for m in agno.get_user_memories(user_id="ann")]
    trashed = TrashedMemory.objects.filter(reason="pruned")
    assert len(left) == 1 and sorted(t.memory_id for t in trashed) == sorted(
        {"m1", "m2", "m3"} - set(left)
    )
    actions.restore_from_trash(actor=None, agent=agent, trashed_ids=[t.pk for t in trashed])
    assert len(agno.get_user_memories(user_id="ann")) == 3


def test_deleting_a_flagged_memory_is_permanent_and_purges_that_users_trash(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    seed(agno)
    agno.upsert_user_memory(
        UserMemory(memory_id="s1", memory="my password is Tulip-2024!", user_id="ann")
    )
    agno.upsert_user_memory(UserMemory(memory_id="b1", memory="Bob likes jazz.", user_id="bob"))
    actions.delete_memory(actor=None, agent=agent, user_id="ann", memory_id="m1")
    actions.delete_memory(actor=None, agent=agent, user_id="bob", memory_id="b1")
    actions.scan_sensitive_batch(agent=agent, batch=100)
    assert SensitiveFlag.objects.filter(memory_id="s1").exists()
    page = editor_client.get(reverse("memories:sensitive", args=[agent.slug])).content.decode()
    assert "Delete for good" in page and "skips the trash" in page
    response = editor_client.post(
        reverse("memories:delete_flagged", args=[agent.slug]), {"memory_ids": ["s1"]}, **HTMX
    )
    assert response.status_code == 200 and agno.get_user_memory("s1") is None
    assert list(TrashedMemory.objects.values_list("memory_id", flat=True)) == ["b1"]  # bob's stays
    assert AuditEvent.objects.get(action="sensitive.deleted").details["trash_purged"] == 1


def test_an_agent_without_a_trash_deletes_for_good(editor_client, make_agent, agno_db_for):
    agent = make_agent(trash_days=0)
    seed(agno_db_for(agent))
    shown = {"user_id": "ann", "version": shown_version(agent, "m1")}
    response = editor_client.post(memory_url(agent, "m1", "delete"), shown, **HTMX)
    assert response.status_code == 200
    assert "undo" not in json.loads(response["HX-Trigger"])["toast"]
    assert not TrashedMemory.objects.exists() and agno_db_for(agent).get_user_memory("m1") is None


def test_the_trash_empties_itself_on_schedule(agent, agno_db_for, settings):
    settings.TRASH_EMPTY_MINUTES = 0.02  # every 1.2 s
    seed(agno_db_for(agent))
    actions.delete_memories(actor=None, agent=agent, user_id="ann", memory_ids=["m1", "m2"])
    TrashedMemory.objects.filter(memory_id="m1").update(expires_at=timezone.now())
    first = jobs.ensure_trash_emptying()
    assert jobs.ensure_trash_emptying() is None  # one at a time
    run_queued_tasks()  # the deletes' recounts, then the first pass
    first.refresh_from_db()
    assert (first.state, first.result) == ("done", {"deleted": 1})
    assert list(TrashedMemory.objects.values_list("memory_id", flat=True)) == ["m2"]
    [following] = Job.objects.filter(kind="trash_emptying", state="queued")
    assert timedelta(0) < following.run_after - first.finished_at <= timedelta(seconds=1.3)
    TrashedMemory.objects.update(expires_at=timezone.now())
    time.sleep(1.3)
    run_queued_tasks()  # the second pass (its third is not due yet), and the agent's sweep
    assert not TrashedMemory.objects.exists()
    assert AuditEvent.objects.filter(action="trash.purged", details__expired=True).count() == 2


def undo_fields(html: str) -> tuple[str, list[int], str]:
    """The plain Undo form a flashed message carries: its action, trashed ids and next."""
    form = (
        html.split('class="flash-undo"', 1)[0].rsplit("<form", 1)[1]
        + html.split('class="flash-undo"', 1)[1].split("</form>", 1)[0]
    )
    action = form.split('action="', 1)[1].split('"', 1)[0]
    trashed = [int(v) for v in re.findall(r'name="trashed" value="(\d+)"', form)]
    after = form.split('name="next" value="', 1)[1].split('"', 1)[0]
    return action, trashed, unescape(after)


def test_a_prune_is_undone_from_its_finished_page_without_javascript(
    editor_client, viewer_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    seed(agno, user_id="bob")
    agno.upsert_user_memory(UserMemory(memory_id="a1", memory="Ann's own.", user_id="ann"))
    agno.upsert_user_memory(UserMemory(memory_id="a2", memory="Ann's too.", user_id="ann"))
    before = stored_memories(agent.db_schema)
    prune = pruning.preview_prune(agent, pruning.PruneCriteria(user_id="bob", keep_newest=1), None)
    # Something deleted earlier, by hand, is not the prune's to put back.
    actions.delete_memory(actor=None, agent=agent, user_id="ann", memory_id="a2")
    editor_client.post(reverse("memories:confirm_prune", args=[agent.slug, prune.pk]))
    run_queued_tasks()
    prune.refresh_from_db()
    assert prune.finished_at and prune.deleted == 2
    page = editor_client.get(reverse("memories:prune_job", args=[agent.slug, prune.pk]))
    html = page.content.decode()
    undo_url = reverse("memories:undo_prune", args=[agent.slug, prune.pk])
    assert f'<form method="post" action="{undo_url}">' in html and "Undo this prune" in html
    assert "puts back the 2 memories" in html
    assert (
        undo_url
        not in viewer_client.get(
            reverse("memories:prune_job", args=[agent.slug, prune.pk])
        ).content.decode()
    )
    assert viewer_client.post(undo_url).status_code == 403

    response = editor_client.post(undo_url)  # a plain form post, no htmx
    assert response.status_code == 302
    assert response["Location"] == reverse("memories:prune_job", args=[agent.slug, prune.pk])
    # Exactly the prune's memories are back, every column as stored; a2 stays in the trash.
    assert stored_memories(agent.db_schema) == [row for row in before if row[0] != "a2"]
    assert TrashedMemory.objects.get().memory_id == "a2"
    assert len(agno.get_user_memories(user_id="bob")) == 3  # agno reads them again
    restored = AuditEvent.objects.get(action=AuditEvent.Action.MEMORIES_RESTORED)
    assert restored.details["count"] == 2
    shown = editor_client.get(response["Location"]).content.decode()
    assert "Undone: 2 pruned memories restored." in shown and "Undo this prune" not in shown
    # Twice is refused, and changes nothing.
    assert editor_client.post(undo_url).status_code == 409
    assert len(agno.get_user_memories(user_id="bob")) == 3


def test_a_delete_without_javascript_flashes_a_plain_undo_form(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    seed(agno)
    before = stored_memories(agent.db_schema)
    response = editor_client.post(
        memory_url(agent, "m2", "delete"),
        {"user_id": "ann", "version": shown_version(agent, "m2")},
        follow=True,
    )
    html = response.content.decode()
    assert "Memory deleted. It stays in the trash for 7 days." in html
    action, trashed, after = undo_fields(html)
    assert action == reverse("memories:restore_trash", args=[agent.slug])
    assert trashed == [TrashedMemory.objects.get(memory_id="m2").pk]
    assert after == response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"]
    back = editor_client.post(action, {"trashed": trashed, "next": after})
    assert back.status_code == 302 and back["Location"] == after
    assert stored_memories(agent.db_schema) == before
    assert agno.get_user_memory("m2").memory == "Lives in Porto."
