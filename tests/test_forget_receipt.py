"""Forgetting a user (memories.people_views.forget_user and its receipt pages): a receipt
names the person by a keyed hash, and no studio table keeps their user_id afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agno.db.schemas.memory import UserMemory
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import connection
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from memories import actions, forgetting, job_batches, pruning, reports, tokens
from memories.models import AuditEvent, EndUser, ForgetReceipt, Job
from memories.people_forms import EndUserForm
from tests.factories import agno_session_with_run, run_queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    Path(settings.MEDIA_ROOT).mkdir()


def export_files() -> list[Path]:
    return sorted((Path(settings.MEDIA_ROOT) / "exports").glob("*.jsonl"))


# Distinctive, so finding it anywhere is finding this user; no LIKE wildcard in it.
USER = "forget-me-7f3a@example.com"
# Every text-like column type Postgres has for what the studio keeps.
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


def studio_columns() -> list[tuple[str, str]]:
    """(table, column) of every text or JSON column of every table in the studio's schema:
    every app's, Django's own (admin log, sessions, auth), axes' and django-tasks' queue.
    The runtime's tables live in the agents' schemas, never in this one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
            " AND c.data_type = ANY(%s) ORDER BY 1, 2",
            [list(TEXT_TYPES)],
        )
        return cursor.fetchall()


def tables_naming(user_id: str) -> set[str]:
    found = set()
    with connection.cursor() as cursor:
        for table, column in studio_columns():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE strpos("{column}"::text, %s) > 0',
                [user_id],
            )
            if cursor.fetchone()[0]:
                found.add(f"{table}.{column}")
    # Sessions are stored signed and encoded: read them as Django does.
    for session in Session.objects.all():
        if user_id in json.dumps(session.get_decoded(), default=str):
            found.add("django_session.session_data (decoded)")
    return found


def files_naming(user_id: str) -> list[str]:
    """Files under MEDIA_ROOT (finished exports, imports waiting for a worker) naming the user."""
    root = Path(settings.MEDIA_ROOT)
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and user_id.encode() in path.read_bytes()
    )


def leave_traces(agent, agno) -> None:
    """The user as the studio knows them after a normal life: every kind of studio row."""
    for n in range(3):
        agno.upsert_user_memory(
            UserMemory(memory_id=f"{agent.slug}-m{n}", memory=f"Fact {n}.", user_id=USER)
        )
    agno.upsert_user_memory(
        UserMemory(memory_id=f"{agent.slug}-s", memory="my password is Tulip-2024!", user_id=USER)
    )
    agno.upsert_user_memory(UserMemory(memory_id=f"{agent.slug}-b", memory="Bob.", user_id="bob"))
    agno_session_with_run(agno, f"{agent.slug}-session", USER, 1_700_000_000, "hello")
    actions.scan_sensitive_batch(agent=agent, batch=100)
    tokens.recount_user(agent, USER)
    tokens.recount_user(agent, "bob")
    pruning.preview_prune(agent, pruning.PruneCriteria(user_id=USER, keep_newest=1), None)
    actions.delete_memory(actor=None, agent=agent, user_id=USER, memory_id=f"{agent.slug}-m0")
    actions.export_started(actor=None, agent=agent, user_id=USER)
    data = json.dumps({"memory": "Imported.", "user_id": USER}).encode() + b"\n"
    actions.start_import(actor=None, agent=agent, data=data, filename="a.jsonl", user_id=USER)
    # Memories moved to the user from a stray user_id: directly, and as a finished job.
    agno.upsert_user_memory(UserMemory(memory="Stray.", user_id=f"{agent.slug}-stray"))
    actions.move_user_memories(actor=None, agent=agent, source=f"{agent.slug}-stray", target=USER)
    agno.upsert_user_memory(UserMemory(memory="Stray 2.", user_id=f"{agent.slug}-stray2"))
    actions.start_move(
        actor=None, agent=agent, source=f"{agent.slug}-stray2", target=USER, sessions=False, total=1
    )
    actions.start_export(actor=None, agent=agent)  # a file on disk with every user's memories
    # Stored reports: the user_id on the scoping report (not registered yet), a search of theirs.
    actions.start_scoping_check(actor=None, agent=agent)
    search = reports.DuplicateScope(user_id=USER, all_users=False, threshold=0.8, near=False)
    actions.start_duplicate_search(actor=None, agent=agent, scope=search)
    run_queued_tasks()


def queue_writes(agent, agno) -> None:
    """What is still waiting in the queue when the forget comes (after every agent's traces,
    so no other agent's run_queued_tasks runs it)."""
    actions.queue_recount(agent, USER)
    # A move to the user and an import into their page: each would write their rows again.
    agno.upsert_user_memory(UserMemory(memory="Stray 3.", user_id=f"{agent.slug}-stray3"))
    actions.start_move(
        actor=None, agent=agent, source=f"{agent.slug}-stray3", target=USER, sessions=False, total=1
    )
    again = json.dumps({"memory": "Imported again.", "user_id": USER}).encode() + b"\n"
    actions.start_import(actor=None, agent=agent, data=again, filename="b.jsonl", user_id=USER)
    # An agent-wide import still queued: bob's row goes in, the user's does not.
    mixed = b"".join(
        json.dumps(
            {"memory_id": f"{agent.slug}-{who}-i", "memory": "Mixed.", "user_id": who}
        ).encode()
        + b"\n"
        for who in (USER, "bob")
    )
    actions.start_import(actor=None, agent=agent, data=mixed, filename="c.jsonl")


def test_forgetting_leaves_no_trace_of_the_user_id_in_any_studio_table(
    editor_client, make_agent, agno_db_for
):
    support, sales = make_agent(slug="support"), make_agent(slug="sales")
    for agent in (support, sales):
        leave_traces(agent, agno_db_for(agent))
    for agent in (support, sales):
        queue_writes(agent, agno_db_for(agent))
    actions.register_user(
        actor=None, agent=support, user_id=USER, form=EndUserForm({"email": USER})
    )
    # Someone else keeps the user_id as an alias, and the admin's history names the entry.
    annie = EndUser.objects.create(
        email="annie@example.com", additional_attributes={"aliases": [USER, "Annie"]}
    )
    LogEntry.objects.create(
        user=get_user_model().objects.get(username="edna"),
        content_type=ContentType.objects.get_for_model(EndUser),
        object_id=str(EndUser.objects.get(email=USER).pk),
        object_repr=USER.upper(),  # as typed in the admin: emails match in any case
        action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Names"]}}]',
    )
    before = tables_naming(USER)
    # Each agent's export, and the imports waiting for a worker, hold the user's rows.
    assert set(files_naming(USER)) == {"exports/" + p.name for p in export_files()} | {
        f"imports/job-{job.pk}.jsonl" for job in Job.objects.filter(kind="import", state="queued")
    }
    assert len(export_files()) == 2
    # The scan finds the user where the studio keeps them: it can fail.
    assert {
        "memories_usertokens.user_id",
        "memories_sensitiveflag.user_id",
        "memories_prunejob.criteria",
        "memories_prunecandidate.user_id",
        "memories_trashedmemory.user_id",
        "memories_trashedmemory.row",
        "memories_auditevent.user_id",
        "memories_auditevent.details",
        "memories_enduser.email",
        "memories_job.params",
        "memories_report.rows",
        "memories_report.user_id",
        "memories_enduser.additional_attributes",
        f"{DBTaskResult._meta.db_table}.args_kwargs",
    } <= before
    assert "django_admin_log.object_repr" in tables_naming(USER.upper())
    move_events = AuditEvent.objects.filter(action="memories.moved", details__to=USER)
    assert move_events.count() == 4  # one direct and one job per agent, the user the target
    assert Job.objects.filter(kind="move_user", params__target=USER).count() == 4

    response = editor_client.post(
        reverse("memories:forget"),
        {"user_id": USER, "confirmation": USER, "remove_registration": "on"},
    )
    assert response.status_code == 302
    assert tables_naming(USER) == set() and tables_naming(USER.upper()) == set()
    assert files_naming(USER) == []
    # The jobs queued before the forget run now; none writes the user's rows again.
    run_queued_tasks()
    assert tables_naming(USER) == set() and files_naming(USER) == []
    for agent in (support, sales):
        agno = agno_db_for(agent)
        assert agno.get_user_memories(user_id=USER) == [] and agno.get_sessions(user_id=USER) == []
        assert sorted(m.memory_id for m in agno.get_user_memories(user_id="bob")) == [
            f"{agent.slug}-b",
            f"{agent.slug}-bob-i",
        ]
        stray = agno.get_user_memories(user_id=f"{agent.slug}-stray3")
        assert [m.memory for m in stray] == ["Stray 3."]  # its move was stopped, not run
    assert sorted(Job.objects.values_list("kind", "state").filter(state="cancelled")) == [
        ("import", "cancelled"),
        ("import", "cancelled"),
        ("move_user", "cancelled"),
        ("move_user", "cancelled"),
    ]
    # The export files stay for everyone else: bob's memory is still in each.
    for path in export_files():
        lines = path.read_text().splitlines()
        assert sum('"user_id": "bob"' in line for line in lines) == 1
        assert all(USER not in line for line in lines)
    export_jobs = Job.objects.filter(kind="export")
    assert sorted(job.result["memories"] for job in export_jobs) == [1, 1]  # bob's alone
    assert all(
        job.result["bytes"] == (job_batches.export_path(job)).stat().st_size for job in export_jobs
    )
    annie.refresh_from_db()
    assert annie.additional_attributes == {"aliases": ["Annie"]}

    receipt = ForgetReceipt.objects.get()
    assert response["Location"] == reverse("memories:receipt", args=[receipt.pk])
    assert receipt.user_hash == forgetting.user_hash(USER) != forgetting.user_hash("bob")
    assert (receipt.actor_name, receipt.registry_entry_removed) == ("edna", True)
    assert receipt.aliases_removed == 1
    # 3 memories of their own, the imported one and the two moved to them: 6 per agent.
    assert sorted(
        (
            line.agent_slug,
            line.memories,
            line.sessions,
            line.runs,
            line.trashed,
            line.jobs_stopped,
            line.export_files,
        )
        for line in receipt.lines.all()
    ) == [("sales", 6, 1, 1, 1, 2, 1), ("support", 6, 1, 1, 1, 2, 1)]
    hashed_events = AuditEvent.objects.filter(user_id=receipt.user_hash)
    assert hashed_events.filter(action="user.forgotten").count() == 2
    assert hashed_events.filter(action="memory.deleted").count() == 2  # earlier events too

    page = editor_client.get(response["Location"]).content.decode()
    assert receipt.user_hash in page and USER not in page
    download = editor_client.get(reverse("memories:receipt_json", args=[receipt.pk]))
    assert download["Content-Disposition"] == (
        f'attachment; filename="forget-receipt-{receipt.pk}.json"'
    )
    document = json.loads(download.content)
    assert (document["user"], document["forgotten_by"]) == (receipt.user_hash, "edna")
    assert [a["memories"] for a in document["agents"]] == [6, 6]
    assert [a["jobs_stopped"] for a in document["agents"]] == [2, 2]
    assert [a["export_files_rewritten"] for a in document["agents"]] == [1, 1]
    assert document["aliases_removed"] == 1
    assert USER not in download.content.decode()


def test_a_background_forget_keeps_the_user_id_only_until_its_last_batch(
    editor_client, make_agent, agno_db_for
):
    support, sales = make_agent(slug="support"), make_agent(slug="sales")
    for agent in (support, sales):
        agno_db_for(agent).upsert_user_memory(UserMemory(memory="A fact.", user_id=USER))
    response = editor_client.post(
        reverse("memories:forget"), {"user_id": USER, "confirmation": USER, "background": "on"}
    )
    assert response.status_code == 302
    job = Job.objects.get(kind="forget")
    receipt = ForgetReceipt.objects.get(pk=job.params["receipt"])
    assert job.params["user_id"] == USER and receipt.finished_at is None
    run_queued_tasks()
    job.refresh_from_db()
    receipt.refresh_from_db()
    assert job.state == "done" and job.params["user_id"] == receipt.user_hash
    assert receipt.finished_at is not None and receipt.lines.count() == 2
    assert tables_naming(USER) == set()


def test_the_hash_depends_on_the_secret_key(settings):
    first = forgetting.user_hash(USER)
    settings.FORGET_RECEIPT_SALT = "another salt"
    assert forgetting.user_hash(USER) != first and forgetting.user_hash(USER).startswith(
        "hmac-sha256:"
    )


def test_a_stranger_to_the_audit_log_cannot_read_receipts(client, viewer_client, agent):
    receipt = actions.forget_user(actor=None, agents=[agent], user_id=USER).receipt
    assert viewer_client.get(reverse("memories:receipt", args=[receipt.pk])).status_code == 200
    assert client.get(reverse("memories:receipt", args=[receipt.pk])).status_code == 302
    assert viewer_client.get(reverse("memories:receipt", args=[receipt.pk + 1])).status_code == 404


def test_a_file_a_worker_is_halfway_through_keeps_its_place_without_the_user(tmp_path):
    lines = [
        json.dumps({"format": "memory-studio/memories"}),
        json.dumps({"memory_id": "a", "memory": "Theirs.", "user_id": USER}),
        json.dumps({"memory_id": "b", "memory": "Bob's.", "user_id": "bob"}),
        json.dumps({"memory_id": "c", "memory": "Theirs too.", "user_id": USER}),
        json.dumps({"memory_id": "d", "memory": "Bob's next.", "user_id": "bob"}),
    ]
    path = tmp_path / "job.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    cursor = sum(len(line) + 1 for line in lines[:3])  # the worker has done a and b
    removed, before, new_cursor = forgetting.drop_user_lines(path, USER, cursor)
    assert (removed, before) == (2, 1)
    text = path.read_text()
    assert USER not in text and text.splitlines() == [lines[0], lines[2], lines[4]]
    assert text[new_cursor:].splitlines() == [lines[4]]  # next up: what was next, minus theirs
    assert forgetting.drop_user_lines(path, USER, new_cursor) == (0, 0, new_cursor)


def test_export_lines_nested_past_what_json_reads_are_dropped_or_kept_whole(tmp_path):
    deep = "[" * 990 + '"x"' + "]" * 990  # an export holds a memory as deep as agno wrote it
    lines = [
        json.dumps({"format": "memory-studio/memories"}),
        f'{{"memory_id": "a", "memory": {deep}, "user_id": "{USER}"}}',
        f'{{"memory_id": "b", "memory": {deep}, "user_id": "bob"}}',
    ]
    path = tmp_path / "job.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    assert forgetting.drop_user_lines(path, USER, None)[:2] == (1, 0)
    assert path.read_text().splitlines() == [lines[0], lines[2]]  # Bob's line byte for byte
