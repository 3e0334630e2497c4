"""Forgetting a user (memories.people_views.forget_user and its receipt pages): a receipt
names the person by a keyed hash, and no studio table keeps their user_id afterwards."""

from __future__ import annotations

import json

import pytest
from agno.db.schemas.memory import UserMemory
from django.apps import apps
from django.db import connection
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from memories import actions, forgetting, pruning, tokens
from memories.forms import EndUserForm
from memories.models import AuditEvent, ForgetReceipt, Job
from tests.factories import agno_session_with_run, run_queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)

# Distinctive, so finding it anywhere is finding this user; no LIKE wildcard in it.
USER = "forget-me-7f3a@example.com"
TEXT_TYPES = {"CharField", "TextField", "EmailField", "SlugField", "JSONField"}


def studio_columns() -> list[tuple[str, str]]:
    """(table, column) of every text or JSON column of every studio table."""
    models = [
        model
        for label in ("agents", "memories")
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed
    ] + [DBTaskResult]
    return [
        (model._meta.db_table, field.column)
        for model in models
        for field in model._meta.concrete_fields
        if field.get_internal_type() in TEXT_TYPES
    ]


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
    return found


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
    run_queued_tasks()
    actions.queue_recount(agent, USER)  # still waiting in the queue when the forget comes


def test_forgetting_leaves_no_trace_of_the_user_id_in_any_studio_table(
    editor_client, make_agent, agno_db_for
):
    support, sales = make_agent(slug="support"), make_agent(slug="sales")
    for agent in (support, sales):
        leave_traces(agent, agno_db_for(agent))
    actions.register_user(
        actor=None, agent=support, user_id=USER, form=EndUserForm({"email": USER})
    )
    before = tables_naming(USER)
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
        f"{DBTaskResult._meta.db_table}.args_kwargs",
    } <= before

    response = editor_client.post(
        reverse("memories:forget"),
        {"user_id": USER, "confirmation": USER, "remove_registration": "on"},
    )
    assert response.status_code == 302
    assert tables_naming(USER) == set()
    for agent in (support, sales):
        agno = agno_db_for(agent)
        assert agno.get_user_memories(user_id=USER) == [] and agno.get_sessions(user_id=USER) == []
        assert [m.memory_id for m in agno.get_user_memories(user_id="bob")] == [f"{agent.slug}-b"]

    receipt = ForgetReceipt.objects.get()
    assert response["Location"] == reverse("memories:receipt", args=[receipt.pk])
    assert receipt.user_hash == forgetting.user_hash(USER) != forgetting.user_hash("bob")
    assert (receipt.actor_name, receipt.registry_entry_removed) == ("edna", True)
    assert sorted(
        (line.agent_slug, line.memories, line.sessions, line.runs, line.trashed)
        for line in receipt.lines.all()
    ) == [("sales", 4, 1, 1, 1), ("support", 4, 1, 1, 1)]
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
    assert [a["memories"] for a in document["agents"]] == [4, 4]
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
