"""Pruning with a preview: the pages (memories.prune_views), the criteria (memories.pruning),
the batches (memories.actions.run_prune_batch) and `manage.py prune_memories`."""

from __future__ import annotations

import threading
import time

import pytest
from agno.db.schemas.memory import UserMemory
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from memories import actions, pruning, runtime, tokens
from memories.models import AuditEvent, Memory, PruneCandidate, PruneJob, UserTokens
from tests.factories import HTMX, make_memories, make_memory, memory_texts

OLD = int(time.time()) - 400 * 86_400


def test_a_prune_deletes_exactly_what_its_preview_counted(editor_client, agent):
    make_memories(agent, "ann", 30, days_old=100)
    make_memories(agent, "ann", 5, days_old=1, text="Recent {n}.")
    make_memories(agent, "bob", 10, days_old=200, topics=["old"])
    response = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]), {"older_than_days": "90"}
    )
    assert response.status_code == 302
    job = PruneJob.objects.get(agent=agent)
    assert response["Location"] == reverse("memories:prune_job", args=[agent.slug, job.pk])
    assert (job.planned, job.users, job.candidates.count()) == (40, 2, 40)
    preview = editor_client.get(response["Location"])
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "deletes <strong>40 memories</strong> of <strong>2 users</strong>" in html
    assert html.index(">ann<") < html.index(">bob<")  # which users, most affected first
    assert len(memory_texts(agent, "ann")) == 35  # nothing yet
    batch_url = reverse("memories:prune_batch", args=[agent.slug, job.pk])
    while True:
        progress = editor_client.post(batch_url, **HTMX)
        assert progress.status_code == 200
        if "Done:" in progress.content.decode():
            break
    assert "<strong>40</strong> memories deleted" in progress.content.decode()
    assert memory_texts(agent, "ann") == [f"Recent {n}." for n in range(5)]
    assert runtime.user_memories(agent, "bob").items == []
    job.refresh_from_db()
    assert (job.deleted, job.skipped) == (40, 0) and job.finished_at
    assert not PruneCandidate.objects.exists()
    event = AuditEvent.objects.get(action="memories.pruned")
    assert event.details["planned"] == event.details["deleted"] == 40
    # The users it touched are recounted: ann has what is left, bob nothing to count.
    assert UserTokens.objects.get(agent=agent, user_id="ann").memories == 5
    assert not UserTokens.objects.filter(agent=agent, user_id="bob").exists()


def test_keep_newest_and_topic_choose_what_goes(agent):
    make_memories(agent, "ann", 12)
    make_memories(agent, "bob", 3)
    make_memories(agent, "bob", 4, topics=["temp"], text="Temporary {n}.")
    job = pruning.preview_prune(agent, pruning.PruneCriteria(keep_newest=5), None)
    assert (job.planned, job.users) == (7 + 2, 2)
    job.delete()
    job = pruning.preview_prune(agent, pruning.PruneCriteria(topic="temp"), None)
    assert job.planned == 4 and job.tokens_saved > 0
    while not job.finished_at:
        job = actions.run_prune_batch(actor=None, job=job, batch=3)
    assert job.deleted == 4
    assert memory_texts(agent, "bob") == [f"Fact {n} of bob." for n in range(3)]
    assert len(memory_texts(agent, "ann")) == 12


def test_a_memory_changed_after_the_preview_is_kept(agent):
    memory = make_memory(agent, "ann", "Old.")
    with runtime.in_agent_schema(agent):
        Memory.objects.filter(memory_id=memory.memory_id).update(updated_at=1, created_at=1)
    job = pruning.preview_prune(agent, pruning.PruneCriteria(older_than_days=30), None)
    assert job.planned == 1
    current = runtime.get_memory(agent, "ann", memory.memory_id)
    actions.edit_memory(
        actor=None,
        agent=agent,
        user_id="ann",
        memory_id=memory.memory_id,
        text="Refreshed.",
        topics=[],
        version=current.version,
    )
    job = actions.run_prune_batch(actor=None, job=job)
    job = actions.run_prune_batch(actor=None, job=job)
    assert (job.deleted, job.skipped) == (0, 1) and job.finished_at
    assert memory_texts(agent, "ann") == ["Refreshed."]


def test_a_prune_needs_a_criterion(editor_client, agent):
    make_memory(agent, "ann", "Stays.")
    response = editor_client.post(reverse("memories:preview_prune", args=[agent.slug]), {})
    assert response.status_code == 422 and "at least one criterion" in response.content.decode()
    assert not PruneJob.objects.exists()
    assert memory_texts(agent, "ann") == ["Stays."]


def test_the_prune_command_dry_runs_then_deletes_in_batches(agent, capsys):
    make_memories(agent, "ann", 8, days_old=400)
    make_memory(agent, "ann", "Recent.")
    call_command("prune_memories", "--agent", agent.slug, "--older-than-days", "365", "--dry-run")
    assert "8 of 1 users" in capsys.readouterr().out
    assert len(memory_texts(agent, "ann")) == 9
    call_command(
        "prune_memories", "--agent", agent.slug, "--older-than-days", "365", "--batch-size", "3"
    )
    assert memory_texts(agent, "ann") == ["Recent."]
    assert AuditEvent.objects.get(action="memories.pruned").details["deleted"] == 8


def test_a_viewer_reads_the_prune_page_but_cannot_preview(viewer_client, agent):
    make_memories(agent, "ann", 3, days_old=400)
    response = viewer_client.get(reverse("memories:prune", args=[agent.slug]))
    assert response.status_code == 200
    assert '<fieldset disabled class="stack">' in response.content.decode()
    for data in ({"user_id": "ann"}, {"older_than_days": "30"}):
        refused = viewer_client.post(reverse("memories:preview_prune", args=[agent.slug]), data)
        assert refused.status_code == 403
    assert not PruneJob.objects.exists()
    assert len(memory_texts(agent, "ann")) == 3


@pytest.mark.django_db(transaction=True)
def test_a_100000_memory_prune_runs_in_batches_while_agno_keeps_writing(agent, agno_db_for):
    make_memory(agent, "seed", "x")
    table = f'"{agent.db_schema}".agno_memories'
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (memory_id, memory, user_id, topics, created_at, updated_at) "
            "SELECT 'old-' || g, to_jsonb('Old fact ' || g), 'user' || (g % 500), 'null'::jsonb, "
            "1000 + g, 1000 + g FROM generate_series(1, 100000) AS g"
        )
    job = pruning.preview_prune(agent, pruning.PruneCriteria(older_than_days=30), None)
    assert job.planned == 100_000
    agno = agno_db_for(agent)
    written: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            written.append(
                agno.upsert_user_memory(
                    UserMemory(
                        memory=f"New fact {len(written)}.", user_id=f"user{len(written) % 500}"
                    )
                ).memory_id
            )

    thread = threading.Thread(target=writer)
    thread.start()
    batches = 0
    try:
        while not job.finished_at:
            job = actions.run_prune_batch(actor=None, job=job, batch=5_000)
            batches += 1
    finally:
        stop.set()
        thread.join()
    assert job.deleted == job.planned == 100_000 and batches >= 20
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE memory_id LIKE 'old-%%'")
        assert cursor.fetchone()[0] == 0
    # Every agno write survived, and the seed with them.
    assert written and len(agno.get_user_memories()) == len(written) + 1


def write_with_agno(agno, user_id: str | None, *memory_ids: str, when: int = OLD) -> None:
    for memory_id in memory_ids:
        agno.upsert_user_memory(
            UserMemory(
                memory_id=memory_id,
                memory=f"Fact {memory_id}.",
                user_id=user_id,
                created_at=when,
                updated_at=when,
            )
        )


def stored_owners(agno) -> dict[str, str | None]:
    return {m.memory_id: m.user_id for m in agno.get_user_memories()}


def test_a_prune_recounts_the_empty_user_id_it_took_memories_from(agent, agno_db_for):
    agno = agno_db_for(agent)
    write_with_agno(agno, "", "e1", "e2", "e3")
    tokens.recount_user(agent, "")
    assert UserTokens.objects.get(agent=agent, user_id="").memories == 3
    job = pruning.preview_prune(agent, pruning.PruneCriteria(keep_newest=1), None)
    while not job.finished_at:
        job = actions.run_prune_batch(actor=None, job=job)
    assert job.deleted == 2 and len(stored_owners(agno)) == 1
    assert UserTokens.objects.get(agent=agent, user_id="").memories == 1
