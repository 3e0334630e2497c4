"""Jobs on real workers: `manage.py db_worker` processes against the test database, started,
killed (SIGKILL) and doubled the way production runs them, while this process plays the web
server. agno's own PostgresDb writes the memories the token sweep must catch up with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from agno.db.schemas.memory import UserMemory
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from memories import actions, import_export, pruning, runtime
from memories.context_cost import count_tokens, memory_block
from memories.models import AuditEvent, Job, PruneJob, UserTokens
from tests.factories import make_memories, table_row

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    """The test database as DATABASE_URL, for processes started from here."""
    db = connection.settings_dict
    host = db.get("HOST") or ""
    if host.startswith("/"):  # the embedded server's socket directory
        return f"postgres://{quote(db['USER'])}@/{db['NAME']}?host={quote(host, safe='')}"
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{quote(db['USER'])}{password}@{host}{port}/{db['NAME']}"


@pytest.fixture
def start_worker(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(name: str, **env: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 — closed with the process
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--no-reload",
                "--no-startup-delay",
                "--interval",
                "0.1",
                "--worker-id",
                name,
            ],
            cwd=settings.BASE_DIR,
            env={
                **os.environ,
                "DATABASE_URL": database_url(),
                "JOB_STALL_SECONDS": "1",
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                **env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log = log  # type: ignore[attr-defined]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.log.close()  # type: ignore[attr-defined]


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    jobs = list(Job.objects.values("kind", "state", "done", "batches", "error", "task_id"))
    raise AssertionError(f"not within {seconds} s: {what}; jobs: {jobs}")


def job_state(job: Job) -> Job:
    job.refresh_from_db()
    return job


def big_prune(agent, memories: int, batch: int) -> tuple[PruneJob, Job]:
    for n in range(memories // 100):
        make_memories(agent, f"user-{n:03}", 100, days_old=100)
    prune = pruning.preview_prune(agent, pruning.PruneCriteria(older_than_days=90), None)
    return prune, actions.confirm_prune(actor=None, job=prune, batch=batch)


def assert_pruned_once(agent, prune: PruneJob, job: Job, planned: int, batch: int) -> None:
    """Every planned memory deleted, none twice (a repeat would be 'kept' or a batch more)."""
    prune.refresh_from_db()
    job.refresh_from_db()
    assert (prune.planned, prune.deleted, prune.skipped) == (planned, planned, 0)
    assert (job.state, job.done, job.batches) == ("done", planned, -(-planned // batch))
    assert runtime.agent_overview(agent).memory_count == 0
    event = AuditEvent.objects.get(action="memories.pruned")
    assert event.details["deleted"] == planned and event.details["kept_changed"] == 0


def test_a_job_started_on_the_page_is_finished_by_a_worker_process(
    editor_client, agent, start_worker, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    make_memories(agent, "ann", 2_500)
    response = editor_client.post(reverse("memories:start_export", args=[agent.slug]))
    assert response.status_code == 302  # the web side is done: nothing runs in this process
    job = Job.objects.get(kind=Job.Kind.EXPORT)
    time.sleep(0.5)
    assert job_state(job).state == "queued"
    start_worker("worker-a")
    wait_for(lambda: job_state(job).state == "done", 60, "the export finished")
    assert (job.done, job.batches) == (2_500, 2)
    got = editor_client.get(reverse("memories:download_export", args=[job.pk]))
    assert b"".join(got.streaming_content).decode() == "".join(import_export.export_lines(agent))


def test_a_worker_killed_mid_job_is_resumed_by_the_next_without_repeats(agent, start_worker):
    prune, job = big_prune(agent, 3_000, batch=20)
    first = start_worker("worker-killed")
    holding = DBTaskResult.objects.filter(status="RUNNING", worker_ids__contains=["worker-killed"])
    wait_for(
        lambda: job_state(job).done >= 400 and holding.exists(), 120, "the first worker mid-batch"
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    at_kill = job_state(job).done
    assert 0 < at_kill < 3_000
    # Usually it died holding a task (claimed, never finished), at times just between two.
    print(f"killed at {at_kill} of 3,000; tasks left running: {holding.count()}")
    assert holding.count() <= 1
    time.sleep(1.2)  # past JOB_STALL_SECONDS: the next worker hands the job on at start
    start_worker("worker-restarted")
    wait_for(lambda: job_state(job).state == "done", 180, "the job finished after the restart")
    assert_pruned_once(agent, prune, job, 3_000, 20)
    assert DBTaskResult.objects.filter(worker_ids__contains=["worker-restarted"]).exists()


def test_two_workers_on_one_queue_never_run_the_same_batch(agent, start_worker):
    prune, job = big_prune(agent, 2_000, batch=20)
    from memories import jobs

    for _ in range(4):  # stray duplicates of the job's task, as a late revive could queue
        jobs.queue_step(job)
    start_worker("worker-one")
    start_worker("worker-two")
    wait_for(lambda: job_state(job).state == "done", 180, "the job finished on two workers")
    assert_pruned_once(agent, prune, job, 2_000, 20)
    ran = DBTaskResult.objects.filter(task_path__endswith="run_job_step", status="SUCCESSFUL")
    by_worker = {
        w: ran.filter(worker_ids__contains=[w]).count() for w in ("worker-one", "worker-two")
    }
    assert all(by_worker.values()), by_worker  # both took batches of the one job
    outcomes = sorted(r.return_value for r in ran)
    assert outcomes.count("superseded") == 4


def test_the_users_list_shows_agnos_new_memories_within_one_sweep(
    editor_client, agent, agno_db_for, start_worker
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory="Prefers email.", user_id="ann@example.com"))
    interval = 3.0
    start_worker("sweeper", TOKEN_SWEEP_MINUTES=str(interval / 60))
    wait_for(
        lambda: UserTokens.objects.filter(agent=agent, user_id="ann@example.com").exists(),
        60,
        "the first sweep counted ann",
    )
    for n in range(5):
        agno.upsert_user_memory(
            UserMemory(
                memory=f"Fact {n}: renews every November, pays by card.", user_id="ann@example.com"
            )
        )
    written = time.monotonic()
    expected = count_tokens(memory_block(runtime.memories_for_context(agent, "ann@example.com")))
    counted = lambda: UserTokens.objects.filter(  # noqa: E731
        agent=agent, user_id="ann@example.com", tokens=expected, memories=6
    ).exists()
    # One interval, plus the time a pass and a worker's poll take on a shared 2-core machine.
    wait_for(counted, interval + 10, "the sweep recounted ann")
    took = time.monotonic() - written
    page = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    assert f'<td class="num">{expected:,}' in table_row(page, ">ann@example.com<")
    print(f"sweep caught agno's write in {took:.1f} s (interval {interval} s)")
    assert Job.objects.filter(kind=Job.Kind.TOKEN_SWEEP, agent=agent, state="queued").count() == 1
