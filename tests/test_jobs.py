"""Jobs in one process: the Jobs page (memories.jobs_views), the batches (memories.jobs,
memories.job_batches) and the actions that start, cancel and retry them. Tasks run through
django-tasks-db's own worker code, in the test's transaction (tests.factories.run_queued_tasks);
tests/test_job_workers.py runs real `manage.py db_worker` processes."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from html import unescape

import pytest
from agno.db.schemas.memory import UserMemory
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from memories import actions, import_export, jobs, pruning, runtime, tokens
from memories.models import AuditEvent, Job, PruneJob, SensitiveFlag, TrashedMemory, UserTokens
from studio.database_urls import psycopg_connect
from tests.factories import (
    HTMX,
    agno_session_with_run,
    make_memories,
    make_memory,
    run_queued_tasks,
)


def preview(agent, **criteria) -> PruneJob:
    return pruning.preview_prune(agent, pruning.PruneCriteria(**criteria), None)


def test_a_confirmed_prune_is_deleted_by_the_worker_not_the_page(editor_client, agent):
    make_memories(agent, "ann", 45, days_old=100)
    make_memories(agent, "ann", 5, text="Recent {n}.")
    prune = preview(agent, older_than_days=90)
    url = reverse("memories:confirm_prune", args=[agent.slug, prune.pk])
    response = editor_client.post(url, **HTMX)
    assert response.status_code == 200
    assert "this page can be closed" in response.content.decode()
    assert 'hx-trigger="every 2s"' in response.content.decode()  # progress polls while it runs
    assert len(runtime.user_memories(agent, "ann", limit=100).items) == 50  # nothing yet
    job = Job.objects.get(kind=Job.Kind.PRUNE)
    assert (job.state, job.total, job.actor_name, job.params["prune_job"]) == (
        "queued",
        45,
        "edna",
        prune.pk,
    )
    assert editor_client.post(url).status_code == 302  # confirming twice starts nothing new
    assert Job.objects.filter(kind=Job.Kind.PRUNE).count() == 1
    run_queued_tasks()
    job.refresh_from_db()
    prune.refresh_from_db()
    assert (job.state, job.done, job.batches, job.result) == (
        "done",
        45,
        2,  # one step stages the batch (its trash copies), the next deletes it
        {"deleted": 45, "kept_changed": 0},
    )
    assert (prune.deleted, prune.skipped) == (45, 0) and prune.finished_at
    assert len(runtime.user_memories(agent, "ann", limit=100).items) == 5
    assert AuditEvent.objects.get(action="memories.pruned").actor_name == "edna"
    page = editor_client.get(reverse("memories:prune_job", args=[agent.slug, prune.pk]))
    assert "Done: <strong>45</strong> memories deleted" in page.content.decode()
    assert 'hx-trigger="every 2s"' not in page.content.decode()  # finished: no more polling


def test_each_batch_queues_the_next_and_only_that_task_may_run_it(agent):
    make_memories(agent, "ann", 100, days_old=100)
    prune = preview(agent, older_than_days=90)
    job = actions.confirm_prune(actor=None, job=prune, batch=30)
    stray = jobs.queue_step(job)  # a task the job does not wait for (e.g. a late duplicate)
    ran = run_queued_tasks()
    job.refresh_from_db()
    assert (job.state, job.batches, job.done) == ("done", 5, 100)
    assert ran == 6  # staging, four batches and the stray one, which did nothing
    assert DBTaskResult.objects.get(pk=stray).return_value == "superseded"


def test_cancel_stops_a_job_between_batches(editor_client, viewer_client, agent):
    make_memories(agent, "ann", 40, days_old=100)
    prune = preview(agent, older_than_days=90)
    job = actions.confirm_prune(actor=None, job=prune, batch=10)
    run_queued_tasks(max_tasks=2)  # the first batch staged and deleted, the second staged
    cancel = reverse("memories:cancel_job", args=[job.pk])
    assert viewer_client.post(cancel).status_code == 403
    response = editor_client.post(cancel, **HTMX)
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == (
        "Cancelling after the current batch."
    )
    run_queued_tasks()
    job.refresh_from_db()
    prune.refresh_from_db()
    assert (job.state, job.batches, prune.deleted, prune.staged) == ("cancelled", 2, 10, [])
    assert len(runtime.user_memories(agent, "ann", limit=100).items) == 30
    assert TrashedMemory.objects.filter(agent=agent).count() == 10  # none of the kept 30
    assert editor_client.post(cancel, **HTMX).status_code == 409  # finished: nothing to cancel
    assert AuditEvent.objects.filter(action="job.cancelled").count() == 1
    # The prune ends as it stands: the staged batch was left, not "kept because it changed".
    assert prune.finished_at and prune.skipped == 0 and prune.remaining == 30
    pruned = AuditEvent.objects.get(action="memories.pruned").details
    assert (pruned["deleted"], pruned["cancelled"], pruned["left"]) == (10, True, 30)
    page = editor_client.get(reverse("memories:prune_job", args=[agent.slug, prune.pk]))
    html = page.content.decode()
    assert "Cancelled: <strong>10</strong> memories deleted" in html and "other 30" in html
    assert 'hx-trigger="every 2s"' not in html  # no more polling
    by_hand = reverse("memories:prune_batch", args=[agent.slug, prune.pk])
    assert editor_client.post(by_hand).status_code == 302  # a batch by hand deletes no more
    assert len(runtime.user_memories(agent, "ann", limit=100).items) == 30


def test_a_queued_job_is_cancelled_at_once(editor_client, agent):
    job = actions.start_export(actor=None, agent=agent)
    response = editor_client.post(reverse("memories:cancel_job", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == "cancelled" and job.finished_at and job.task_id == ""
    run_queued_tasks()
    job.refresh_from_db()
    assert job.batches == 0


def test_a_failed_job_shows_its_error_and_retries_from_its_last_batch(
    editor_client, agent, settings, tmp_path
):
    make_memories(agent, "ann", 25)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.MEDIA_ROOT = blocker  # exports cannot be written under a file
    job = actions.start_export(actor=None, agent=agent, batch=10)
    run_queued_tasks()
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error.startswith(("FileExistsError", "NotADirectoryError"))
    page = editor_client.get(reverse("memories:agent_jobs", args=[agent.slug])).content.decode()
    assert job.error.split(":")[0] in page and ">Retry</button>" in page
    settings.MEDIA_ROOT = tmp_path / "media"
    response = editor_client.post(reverse("memories:retry_job", args=[job.pk]), **HTMX)
    assert response.status_code == 200
    run_queued_tasks()
    job.refresh_from_db()
    assert (job.state, job.error, job.done) == ("done", "", 25)
    assert editor_client.post(reverse("memories:retry_job", args=[job.pk])).status_code == 409


def test_an_agent_export_is_a_file_to_download_when_done(editor_client, agent, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    make_memories(agent, "ann", 7)
    make_memory(agent, "bob", 'Ünïcode 🦜 and a "quote".')
    response = editor_client.post(reverse("memories:start_export", args=[agent.slug]))
    assert response.status_code == 302
    job = Job.objects.get(kind=Job.Kind.EXPORT)
    assert response["Location"].endswith(f"#job-{job.pk}")
    download = reverse("memories:download_export", args=[job.pk])
    assert editor_client.get(download).status_code == 404  # not finished: no file yet
    job.params = {"batch": 3}
    job.save()
    run_queued_tasks()
    job.refresh_from_db()
    assert (job.state, job.batches, job.done) == ("done", 3, 8)
    got = editor_client.get(download)
    assert got.status_code == 200 and "attachment" in got["Content-Disposition"]
    assert b"".join(got.streaming_content).decode() == "".join(import_export.export_lines(agent))
    assert AuditEvent.objects.filter(action="memories.exported", agent=agent).count() == 1


def test_an_export_resumed_after_a_lost_batch_repeats_no_line(agent, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    make_memories(agent, "ann", 9)
    job = actions.start_export(actor=None, agent=agent, batch=4)
    run_queued_tasks(max_tasks=1)
    job.refresh_from_db()
    path = tmp_path / "exports" / f"job-{job.pk}.jsonl"
    with open(path, "ab") as file:  # a killed worker wrote lines it never committed
        file.write(b'{"half": "a line"}\n')
    run_queued_tasks()
    assert path.read_text() == "".join(import_export.export_lines(agent))


def test_the_sensitive_scan_runs_on_the_worker(editor_client, agent):
    make_memory(agent, "ann", "Her password is Tulip-2024!")
    make_memories(agent, "bob", 5)
    url = reverse("memories:scan", args=[agent.slug])
    response = editor_client.post(url, **HTMX)
    assert response.status_code == 200
    assert "A background worker is scanning" in response.content.decode()
    assert not SensitiveFlag.objects.exists()
    job = Job.objects.get(kind=Job.Kind.SENSITIVE_SCAN)
    assert editor_client.post(url, **HTMX).status_code == 200  # a second click joins it
    assert Job.objects.filter(kind=Job.Kind.SENSITIVE_SCAN).count() == 1
    run_queued_tasks()
    job.refresh_from_db()
    assert (job.state, job.done, job.total, job.result) == ("done", 6, 6, {"flagged": 1})
    page = editor_client.get(reverse("memories:sensitive", args=[agent.slug])).content.decode()
    assert "Tulip-2024!" in page and "Scanned all 6 memories" in page


def test_the_token_sweep_recounts_exactly_the_changed_users_and_comes_again(agent, settings):
    settings.TOKEN_SWEEP_MINUTES = 2
    make_memories(agent, "ann", 3)
    make_memories(agent, "bob", 2, days_old=1)
    make_memories(agent, "cid", 1)
    for user_id in ("ann", "bob", "cid"):
        tokens.recount_user(agent, user_id)
    old = timezone.now() - timedelta(hours=1)
    UserTokens.objects.filter(agent=agent).update(refreshed_at=old)
    # Since the counts: ann gains a memory, bob is left alone (counted after his memories), cid
    # loses his only one, dan is new.
    make_memory(agent, "ann", "One more fact about ann.")
    bob_counted_at = timezone.now()
    UserTokens.objects.filter(agent=agent, user_id="bob").update(refreshed_at=bob_counted_at)
    runtime_delete_all(agent, "cid")  # as agno would: no studio upkeep
    make_memories(agent, "dan", 2)
    DBTaskResult.objects.all().delete()  # only the sweep is under test
    [sweep] = jobs.ensure_token_sweeps()
    run_queued_tasks()
    sweep.refresh_from_db()
    assert sweep.state == "done" and sweep.result == {"recounted": 3}
    now = {t.user_id: t for t in UserTokens.objects.filter(agent=agent)}
    assert set(now) == {"ann", "bob", "dan"}
    assert now["ann"].memories == 4 and now["dan"].memories == 2
    assert now["bob"].refreshed_at == bob_counted_at  # untouched by the sweep
    for user_id in ("ann", "bob", "dan"):
        assert now[user_id].tokens == tokens.context_block(agent, user_id)[1]
    [following] = Job.objects.filter(kind=Job.Kind.TOKEN_SWEEP, state="queued")
    assert following.run_after > timezone.now() + timedelta(minutes=1)
    assert jobs.ensure_token_sweeps() == []  # one sweep per agent at a time


def runtime_delete_all(agent, user_id: str) -> None:
    from memories.runtime.memories import delete_user_memories

    ids = [m.memory_id for m in runtime.user_memories(agent, user_id, limit=100).items]
    delete_user_memories(agent, user_id, ids)


def test_a_stalled_job_gets_a_new_task_and_a_waiting_one_does_not(agent, settings):
    settings.JOB_STALL_SECONDS = 60
    make_memories(agent, "ann", 10, days_old=100)
    job = actions.confirm_prune(actor=None, job=preview(agent, older_than_days=90), batch=5)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert jobs.revive_stalled() == []  # its task still waits in the queue
    task = DBTaskResult.objects.get(pk=job.task_id)
    task.claim("a-worker-that-died")  # taken, then the worker was killed: never finishes
    assert jobs.revive_stalled() == [job.pk]
    job.refresh_from_db()
    assert job.task_id != str(task.pk)
    run_queued_tasks()
    job.refresh_from_db()
    assert (job.state, job.done, job.batches) == ("done", 10, 3)


def test_the_jobs_page_lists_jobs_per_agent_and_for_all(viewer_client, make_agent):
    one, two = make_agent(slug="one"), make_agent(slug="two")
    first = actions.start_export(actor=None, agent=one)
    second = actions.start_export(actor=None, agent=two)
    page = viewer_client.get(reverse("memories:agent_jobs", args=["one"])).content.decode()
    assert f'id="job-{first.pk}"' in page and f'id="job-{second.pk}"' not in page
    assert ">Cancel</button>" not in page  # a viewer changes nothing
    every = viewer_client.get(reverse("memories:jobs")).content.decode()
    assert f'id="job-{first.pk}"' in every and f'id="job-{second.pk}"' in every
    row = viewer_client.get(reverse("memories:job", args=[first.pk]), **HTMX).content.decode()
    assert row.strip().startswith(f'<tr id="job-{first.pk}"') and "every 2s" in row
    assert viewer_client.get(reverse("memories:job", args=[99_999]), **HTMX).status_code == 404
    assert viewer_client.post(reverse("memories:start_export", args=["one"])).status_code == 403


def test_a_large_import_is_checked_on_the_page_and_written_by_the_worker(
    editor_client, agent, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    rows = [{"memory": f"Fact {n}.", "user_id": f"user-{n % 7}"} for n in range(2_500)]
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    url = reverse("memories:import", args=[agent.slug])
    upload = SimpleUploadedFile("big.jsonl", data)
    response = editor_client.post(url, {"file": upload, "background": "on"})
    assert response.status_code == 302
    job = Job.objects.get(kind=Job.Kind.IMPORT)
    assert response["Location"].endswith(f"#job-{job.pk}")
    assert (job.total, runtime.agent_overview(agent).memory_count) == (2_500, 0)
    with django_capture_on_commit_callbacks(execute=True):
        run_queued_tasks()
    job.refresh_from_db()
    assert (job.state, job.done, job.batches) == ("done", 2_500, 3)
    assert job.result == {"added": 2_500, "updated": 0}
    assert runtime.agent_overview(agent).memory_count == 2_500
    assert AuditEvent.objects.get(action="memories.imported").details["added"] == 2_500
    assert not list((tmp_path / "imports").iterdir())  # the checked rows are not kept


def test_a_background_import_with_a_bad_row_queues_nothing(
    editor_client, agent, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path
    data = b'{"memory": "Good.", "user_id": "ann"}\n{not json\n'
    response = editor_client.post(
        reverse("memories:import", args=[agent.slug]),
        {"file": SimpleUploadedFile("bad.jsonl", data), "background": "on"},
    )
    assert response.status_code == 422 and "Line 2: not valid JSON" in response.content.decode()
    assert not Job.objects.exists()


def test_forgetting_in_the_background_takes_one_agent_per_batch(editor_client, make_agent):
    support, sales = make_agent(slug="support"), make_agent(slug="sales")
    make_memories(support, "ann", 3)
    make_memories(sales, "ann", 2)
    make_memories(sales, "bob", 1)
    response = editor_client.post(
        reverse("memories:forget"), {"user_id": "ann", "confirmation": "ann", "background": "on"}
    )
    assert response.status_code == 302
    job = Job.objects.get(kind=Job.Kind.FORGET)
    assert (job.total, job.agent, job.params["user_id"]) == (2, None, "ann")
    assert len(runtime.user_memories(support, "ann").items) == 3  # nothing yet
    run_queued_tasks()
    job.refresh_from_db()
    assert (job.state, job.batches) == ("done", 3)  # a step stages each line, the next erases
    assert job.result["erased"]["support"]["memories"] == 3
    assert job.result["erased"]["sales"]["memories"] == 2
    assert runtime.user_memories(support, "ann").items == []
    assert runtime.user_memories(sales, "ann").items == []
    assert len(runtime.user_memories(sales, "bob").items) == 1
    assert AuditEvent.objects.filter(action="user.forgotten").count() == 2


def test_a_file_over_the_size_limit_goes_to_the_workers_without_being_asked(
    editor_client, agent, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    settings.IMPORT_IN_BACKGROUND_BYTES = 1_000
    data = "".join(json.dumps({"memory": f"Fact {n}.", "user_id": "ann"}) + "\n" for n in range(50))
    assert len(data) > 1_000
    url = reverse("memories:import", args=[agent.slug])
    response = editor_client.post(url, {"file": SimpleUploadedFile("big.jsonl", data.encode())})
    assert response.status_code == 302
    job = Job.objects.get(kind=Job.Kind.IMPORT)
    assert (job.total, runtime.agent_overview(agent).memory_count) == (50, 0)
    small = editor_client.post(
        url, {"file": SimpleUploadedFile("small.jsonl", data[:500].rsplit("\n", 1)[0].encode())}
    )
    assert small.status_code == 200 and Job.objects.filter(kind=Job.Kind.IMPORT).count() == 1


def sweep_once(agent) -> Job:
    """One pass of the agent's token sweep, now (the pass it queued for later is dropped)."""
    Job.objects.filter(kind=Job.Kind.TOKEN_SWEEP, state="queued").delete()
    DBTaskResult.objects.all().delete()
    [sweep] = jobs.ensure_token_sweeps()
    run_queued_tasks()
    sweep.refresh_from_db()
    assert sweep.state == "done"
    return sweep


def test_the_sweep_recounts_after_agnos_memory_writes_and_not_its_sessions(agent, agno_db_for):
    agno = agno_db_for(agent)
    for user_id in ("ann", "bob"):
        agno.upsert_user_memory(UserMemory(memory=f"{user_id} drinks tea.", user_id=user_id))
    time.sleep(1.1)  # counted a second later: a change in the same second counts as newer
    assert sweep_once(agent).result == {"recounted": 2}
    counted = {t.user_id: t.refreshed_at for t in UserTokens.objects.filter(agent=agent)}
    agno_session_with_run(agno, "s-ann", "ann", int(time.time()), "Hello again.")
    agno.upsert_user_memory(UserMemory(memory="bob moved to Lyon.", user_id="bob"))
    assert sweep_once(agent).result == {"recounted": 1}
    now = {t.user_id: t for t in UserTokens.objects.filter(agent=agent)}
    assert now["ann"].refreshed_at == counted["ann"]  # her session alone changed nothing
    assert now["bob"].refreshed_at > counted["bob"] and now["bob"].memories == 2
    assert now["bob"].tokens == tokens.context_block(agent, "bob")[1]
    assert sweep_once(agent).result == {"recounted": 0}  # nothing changed: nothing counted


def test_the_sweep_finds_each_users_newest_memory_through_the_index(agent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from memories.runtime.indexes import ensure_runtime_indexes
    from memories.runtime.users import memory_users_after

    make_memories(agent, "ann", 3)
    ensure_runtime_indexes(agent, concurrently=False)
    with CaptureQueriesContext(connection) as queries:
        assert [row[:2] for row in memory_users_after(agent, after=None, limit=10)] == [("ann", 3)]
    [sql] = [q["sql"] for q in queries.captured_queries if "count(*)" in q["sql"]]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL search_path = {agent.db_schema}")
        cursor.execute("SET LOCAL enable_seqscan = off")  # a 3-row table is read whole anyway
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "idx_ms_memories_user_recent_s" in plan, plan
    assert "Seq Scan" not in plan, plan


def recounts_queued(agent) -> list[str]:
    from memories.tasks import recount_user

    return sorted(
        task.args_kwargs["args"][1]
        for task in DBTaskResult.objects.ready().filter(task_path=recount_user.module_path)
    )


def test_restores_flagged_deletes_and_imports_leave_the_recount_to_a_worker(agent):
    make_memories(agent, "ann", 2)
    make_memory(agent, "bob", "my password is Tulip-2024!")
    for user_id in ("ann", "bob"):
        tokens.recount_user(agent, user_id)
    first = runtime.user_memories(agent, "ann", limit=10).items[0]
    actions.delete_memory(actor=None, agent=agent, user_id="ann", memory_id=first.memory_id)
    run_queued_tasks()
    counted = lambda user_id: UserTokens.objects.filter(agent=agent, user_id=user_id).first()  # noqa: E731
    assert counted("ann").memories == 1
    # Each write below returns with the old count in place and a recount queued.
    [entry] = TrashedMemory.objects.filter(agent=agent)
    actions.restore_from_trash(actor=None, agent=agent, trashed_ids=[entry.pk])
    assert counted("ann").memories == 1 and recounts_queued(agent) == ["ann"]
    run_queued_tasks()
    assert counted("ann").memories == 2
    data = b'{"memory": "Also good.", "user_id": "ann"}\n'
    report = actions.import_memories(actor=None, agent=agent, data=data, filename="f.jsonl")
    assert report.written and counted("ann").memories == 2
    assert recounts_queued(agent) == ["ann"]
    run_queued_tasks()
    assert counted("ann").memories == 3
    actions.scan_sensitive_batch(agent=agent, batch=100)
    [flag] = SensitiveFlag.objects.filter(agent=agent, user_id="bob")
    assert actions.delete_flagged_memories(actor=None, agent=agent, memory_ids=[flag.memory_id])
    assert counted("bob").memories == 1 and recounts_queued(agent) == ["bob"]
    run_queued_tasks()
    assert counted("bob") is None  # no memory left: no count
    assert counted("ann").tokens == tokens.context_block(agent, "ann")[1]


def test_a_failed_or_cancelled_sweep_still_queues_its_next_pass(
    agent, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from memories import job_batches

    settings.TOKEN_SWEEP_MINUTES = 2
    DBTaskResult.objects.all().delete()
    [sweep] = jobs.ensure_token_sweeps()

    def unreachable(job: Job) -> bool:
        raise ConnectionError("the runtime's server is down")

    monkeypatch.setitem(job_batches.BATCHES, Job.Kind.TOKEN_SWEEP, unreachable)
    run_queued_tasks()
    sweep.refresh_from_db()
    assert sweep.state == "failed" and "server is down" in sweep.error
    [following] = Job.objects.filter(kind=Job.Kind.TOKEN_SWEEP, agent=agent, state="queued")
    assert following.run_after > timezone.now() + timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        actions.cancel_job(actor=None, job=following)
    following.refresh_from_db()
    assert following.state == "cancelled"
    [again] = Job.objects.filter(kind=Job.Kind.TOKEN_SWEEP, agent=agent, state="queued")
    assert again.run_after > timezone.now() + timedelta(minutes=1)


def test_an_agent_registered_later_gets_its_sweep_at_once(agent):
    from memories.runtime.discovery import DEFAULT_NAMES

    make_memories(agent, "ann", 2)
    DBTaskResult.objects.all().delete()
    agent.delete()  # its rows stay in the schema, found again by discovery
    found = actions.register_agent(
        actor=None, connection="default", schema=agent.db_schema, tables=dict(DEFAULT_NAMES)
    )
    [sweep] = Job.objects.filter(kind=Job.Kind.TOKEN_SWEEP, agent=found)
    assert sweep.state == "queued" and sweep.run_after is None
    run_queued_tasks()
    sweep.refresh_from_db()
    assert sweep.state == "done" and sweep.result == {"recounted": 1}
    assert UserTokens.objects.get(agent=found, user_id="ann").memories == 2


def test_the_jobs_page_pages_filters_and_leaves_out_idle_passes(viewer_client, agent):
    from memories import job_batches

    idle = Job.objects.create(
        kind="token_sweep", agent=agent, state="done", result={"recounted": 0}
    )
    busy = Job.objects.create(
        kind="token_sweep", agent=agent, state="done", result={"recounted": 3}
    )
    Job.objects.bulk_create(Job(kind="export", agent=agent, state="done") for _ in range(55))
    url = reverse("memories:agent_jobs", args=[agent.slug])
    shown = lambda html: set(map(int, re.findall(r'<tr id="job-(\d+)"', html)))  # noqa: E731
    first = viewer_client.get(url).content.decode()
    assert len(shown(first)) == 50 and "Older jobs" in first
    [next_url] = re.findall(r'href="(\?[^"]*after=[^"]+)"', first)
    rest = viewer_client.get(url + unescape(next_url)).content.decode()
    assert shown(first).isdisjoint(shown(rest)) and "Older jobs" not in rest
    everything = set(Job.objects.filter(agent=agent).values_list("pk", flat=True))
    assert shown(first) | shown(rest) == everything - {idle.pk}  # the idle pass is left out
    sweeps = viewer_client.get(url, {"kind": "token_sweep"}).content.decode()
    assert shown(sweeps) == {busy.pk}
    with_idle = viewer_client.get(url, {"kind": "token_sweep", "idle": "on"}).content.decode()
    assert shown(with_idle) == {busy.pk, idle.pk}
    assert shown(viewer_client.get(url, {"state": "failed"}).content.decode()) == set()
    assert viewer_client.get(url, {"after": "not-a-cursor"}).status_code == 400
    assert viewer_client.get(url, {"kind": "nonsense"}).status_code == 400
    # Passes that did nothing go at the next pass; those that did something after a day.
    Job.objects.filter(pk=busy.pk).update(finished_at=timezone.now() - timedelta(days=2))
    current = Job.objects.create(kind="token_sweep", agent=agent, state="done")
    job_batches.schedule_next_sweep(current)
    done = Job.objects.filter(kind="token_sweep", state="done")
    assert list(done.values_list("pk", flat=True)) == [current.pk]
    assert Job.objects.filter(kind="token_sweep", state="queued").count() == 1  # the next pass


@pytest.mark.django_db(transaction=True)  # the table is dropped from another connection
def test_an_export_whose_table_is_dropped_midway_fails_instead_of_ending_short(
    agent, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    make_memories(agent, "ann", 25)
    job = actions.start_export(actor=None, agent=agent, batch=10)
    run_queued_tasks(max_tasks=1)
    job.refresh_from_db()
    assert (job.state, job.done) == ("running", 10)
    with psycopg_connect(connection.settings_dict) as owner:  # as the runtime's owner might
        owner.execute(f'DROP TABLE "{agent.db_schema}".agno_memories')
    run_queued_tasks()
    job.refresh_from_db()
    assert job.state == "failed" and job.done == 10
    assert job.error.startswith("TablesGone: The agent's memory table is gone")


def test_a_cancelled_export_leaves_no_partial_file(
    editor_client, agent, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    make_memories(agent, "ann", 25)
    job = actions.start_export(actor=None, agent=agent, batch=10)
    run_queued_tasks(max_tasks=1)
    partial = tmp_path / "exports" / f"job-{job.pk}.jsonl"
    assert partial.exists()
    editor_client.post(reverse("memories:cancel_job", args=[job.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        run_queued_tasks()
    job.refresh_from_db()
    assert job.state == "cancelled" and not partial.exists()


def test_a_prune_cancelled_before_a_worker_took_it_ends_and_deletes_nothing(editor_client, agent):
    make_memories(agent, "ann", 30, days_old=100)
    prune = preview(agent, older_than_days=90)
    job = actions.confirm_prune(actor=None, job=prune, batch=10)  # queued, no worker yet
    assert editor_client.post(reverse("memories:cancel_job", args=[job.pk])).status_code == 302
    prune.refresh_from_db()
    assert prune.finished_at and (prune.deleted, prune.remaining) == (0, 30)
    page = editor_client.get(reverse("memories:prune_job", args=[agent.slug, prune.pk]))
    assert "Cancelled: <strong>0</strong>" in page.content.decode()
    editor_client.post(reverse("memories:prune_batch", args=[agent.slug, prune.pk]))
    run_queued_tasks()
    assert len(runtime.user_memories(agent, "ann", limit=100).items) == 30


def test_a_batch_by_hand_after_a_cancel_request_deletes_no_more(editor_client, agent):
    make_memories(agent, "ann", 30, days_old=100)
    prune = preview(agent, older_than_days=90)
    job = actions.confirm_prune(actor=None, job=prune, batch=10)
    run_queued_tasks(max_tasks=2)  # one batch staged and deleted: 20 left
    editor_client.post(reverse("memories:cancel_job", args=[job.pk]))  # the worker has not seen it
    editor_client.post(reverse("memories:prune_batch", args=[agent.slug, prune.pk]))
    prune.refresh_from_db()
    assert prune.finished_at and (prune.deleted, prune.remaining) == (10, 20)
    run_queued_tasks()
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert len(runtime.user_memories(agent, "ann", limit=100).items) == 20


def test_a_cancelled_import_leaves_no_pending_rows(
    editor_client, agent, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    data = b'{"memory": "Secret-ish text.", "user_id": "ann"}\n'
    _, job = actions.start_import(actor=None, agent=agent, data=data, filename="x.jsonl")
    pending = import_export.pending_import_path(job.pk)
    assert pending.exists()
    with django_capture_on_commit_callbacks(execute=True):
        editor_client.post(reverse("memories:cancel_job", args=[job.pk]))
    job.refresh_from_db()
    assert job.state == "cancelled" and not pending.exists()
