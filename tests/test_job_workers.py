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
from django.db import connection, connections
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from memories import actions, import_export, pruning, runtime
from memories.context_cost import count_tokens, memory_block
from memories.models import (
    AuditEvent,
    ForgetReceiptLine,
    Job,
    PruneCandidate,
    PruneJob,
    TrashedMemory,
    UserTokens,
)
from memories.runtime.schema import ensure_runtime_tables
from memories.tokens import recount_user
from studio.database_urls import psycopg_connect
from tests.conftest import READER_ROLE
from tests.factories import make_memories, table_row

pytestmark = pytest.mark.django_db(transaction=True)


def database_url(db: dict | None = None) -> str:
    """The test database (or another alias' settings) as a URL, for processes started here."""
    db = db or connection.settings_dict
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


@pytest.fixture(params=["studio", "remote"])
def runtime_agent(request, make_agent) -> tuple:
    """An agent whose runtime is the studio's database, or a second Postgres server (the
    production setup: its commits and the studio's are separate), and the workers' settings."""
    if request.param == "studio":
        return make_agent(), {}
    runtime_connections = request.getfixturevalue("runtime_connections")
    agent = make_agent(connection="remote")
    runtime_connections["schemas"].append(agent.db_schema)
    ensure_runtime_tables(agent)
    with psycopg_connect(runtime_connections["server"]) as conn:  # lists read the replica login
        conn.execute(f'GRANT USAGE ON SCHEMA "{agent.db_schema}" TO {READER_ROLE}')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{agent.db_schema}" TO {READER_ROLE}')
    remote = database_url(connections["remote"].settings_dict)
    # Production settings read RUNTIME_DATABASES; the test settings' "remote" is not the test's.
    return agent, {
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "RUNTIME_DATABASES": f"remote={remote}",
    }


def waiting_on_a_lock(table: str) -> bool:
    """Whether a worker's DELETE from `table` waits for a lock this test holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE %s",
            [f'DELETE FROM "{table}"%'],
        )
        return cursor.fetchone()[0] > 0


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
    trashed = TrashedMemory.objects.filter(agent=agent)  # every deleted memory can be undone
    assert trashed.count() == trashed.values("memory_id").distinct().count() == planned
    assert (prune.planned, prune.deleted, prune.skipped) == (planned, planned, 0)
    # One step more than batches: the first only stages (trashes) what the next deletes.
    assert (job.state, job.done, job.batches) == ("done", planned, -(-planned // batch) + 1)
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


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_worker_killed_mid_job_is_resumed_by_the_next_without_repeats(
    runtime_agent, start_worker
):
    agent, env = runtime_agent
    prune, job = big_prune(agent, 3_000, batch=20)
    first = start_worker("worker-killed", **env)
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
    start_worker("worker-restarted", **env)
    wait_for(lambda: job_state(job).state == "done", 180, "the job finished after the restart")
    assert_pruned_once(agent, prune, job, 3_000, 20)
    assert DBTaskResult.objects.filter(worker_ids__contains=["worker-restarted"]).exists()


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_worker_killed_after_the_runtime_committed_a_batch_loses_no_undo(
    runtime_agent, start_worker
):
    agent, env = runtime_agent
    prune, job = big_prune(agent, 1_000, batch=20)
    # A candidate of the 21st batch, locked here: the worker settling that batch waits on it
    # after the runtime delete (committed at once on a separate runtime database) and before
    # the studio's commit, the window a crash used to lose the trash copies in.
    held = PruneCandidate.objects.filter(job=prune).order_by("id")[410].pk
    table = PruneCandidate._meta.db_table
    with psycopg_connect(connection.settings_dict) as lock, lock.transaction():
        lock.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [held])
        worker = start_worker("worker-blocked", **env)
        wait_for(lambda: waiting_on_a_lock(table), 120, "the worker waiting on the candidate")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    left = runtime.agent_overview(agent).memory_count
    assert left == (1_000 - 420 if env else 1_000 - 400)  # remote: batch 21 is gone for good
    assert job_state(job).done == 400
    time.sleep(1.2)  # past JOB_STALL_SECONDS
    start_worker("worker-restarted", **env)
    wait_for(lambda: job_state(job).state == "done", 180, "the job finished after the restart")
    assert_pruned_once(agent, prune, job, 1_000, 20)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_background_forget_killed_after_the_erase_keeps_its_receipt(runtime_agent, start_worker):
    agent, env = runtime_agent
    make_memories(agent, "ann", 30)
    time.sleep(1.1)  # counted a second later, so the worker's sweep leaves ann's count alone
    recount_user(agent, "ann")
    job = actions.start_forget(actor=None, agents=[agent], user_id="ann")
    table = UserTokens._meta.db_table
    with psycopg_connect(connection.settings_dict) as lock, lock.transaction():
        # The forget drops ann's token count after the runtime erase: it waits here.
        lock.execute(f"SELECT 1 FROM {table} WHERE user_id = 'ann' FOR UPDATE")
        worker = start_worker("worker-blocked", **env)
        wait_for(lambda: waiting_on_a_lock(table), 60, "the forget waiting on ann's count")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    assert runtime.user_summary(agent, "ann").memory_count == (0 if env else 30)
    time.sleep(1.2)
    start_worker("worker-restarted", **env)
    wait_for(lambda: job_state(job).state == "done", 60, "the forget finished after the restart")
    line = ForgetReceiptLine.objects.get(receipt_id=job.params["receipt"], agent=agent)
    assert (line.memories, line.sessions, line.runs) == (30, 0, 0)
    event = AuditEvent.objects.get(action="user.forgotten", agent=agent)
    assert event.details["memories"] == 30
    assert runtime.user_summary(agent, "ann").memory_count == 0
    assert job.result["erased"][agent.slug]["memories"] == 30


def test_two_workers_on_one_queue_never_run_the_same_batch(agent, start_worker):
    prune, job = big_prune(agent, 2_000, batch=20)
    from memories import jobs

    for _ in range(4):  # stray duplicates of the job's task, as a late revive could queue
        jobs.queue_step(job)
    # The default stall time here, not the 1 s the revive tests use: on a slow machine a batch
    # waiting more than 1 s in the queue (or on Postgres' deadlock detection) is revived, which
    # supersedes its task once more and makes the count below depend on the machine's speed.
    # Revives have tests of their own; here the only stray tasks are the four queued above.
    patient = {"JOB_STALL_SECONDS": "120"}
    start_worker("worker-one", **patient)
    start_worker("worker-two", **patient)
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
    one_memory = count_tokens(memory_block(["Prefers email."]))
    agent.token_budget = one_memory + 1  # one memory is within the budget, six are over it
    agent.save(update_fields=["token_budget"])
    interval = 4.0
    start_worker("sweeper", TOKEN_SWEEP_MINUTES=str(interval / 60))
    wait_for(
        lambda: UserTokens.objects.filter(agent=agent, user_id="ann@example.com").exists(),
        60,
        "the first sweep counted ann",
    )
    row = lambda: table_row(  # noqa: E731
        editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode(),
        ">ann@example.com<",
    )
    assert "Over budget" not in row()
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
    # The next pass is queued one interval after the last one ended, so the write is caught
    # within one interval plus one pass: here a single user's recount, a few queries, and the
    # worker's 0.1 s poll. 1.5 s of fixed slack covers that on the shared 2-core machine; the
    # worker is already running (its start is not timed), and a second interval would not fit.
    wait_for(counted, interval + 1.5, "the sweep recounted ann within one interval")
    took = time.monotonic() - written
    shown = row()
    assert f'<td class="num">{expected:,}' in shown and "Over budget" in shown
    print(f"sweep caught agno's write in {took:.1f} s (interval {interval} s)")
    assert Job.objects.filter(kind=Job.Kind.TOKEN_SWEEP, agent=agent, state="queued").count() == 1
