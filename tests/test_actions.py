"""A page and a command doing the same write leave the same database behind.

Each test builds one starting state in two fresh agents (runtime rows written by agno's own
PostgresDb, studio rows by the studio's own upkeep), runs the page on one and the management
command on the other, and compares both databases afterwards: the runtime rows as agno reads
them back, and every studio table row, without ids, timestamps, agent or actor.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from agno.db.schemas.memory import UserMemory
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db.models import DateTimeField
from django.urls import reverse

from agents.models import Agent
from memories import flags, forgetting, pruning, tokens
from memories.models import AuditEvent, PruneCandidate, PruneJob, SensitiveFlag, UserTokens
from tests.factories import agno_session_with_run, run_queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)

NOW = int(time.time())
DAY = 86_400
OLD = NOW - 400 * DAY  # older than the prunes below ask for
PASSWORD = "my password is Tulip-2024!"

# (memory_id, user_id, text, topics, last changed)
MEMORIES = [
    ("m-ann-1", "ann", "Prefers concise answers.", ["style"], OLD),
    ("m-ann-2", "ann", PASSWORD, None, OLD - 1),
    ("m-ann-3", "ann", "Renewal is in November.", ["billing", "dates"], NOW - DAY),
    ("m-bob-1", "bob", "Has a dog named Rex.", None, OLD - 2),
    ("m-bob-2", "bob", "Bob says " + PASSWORD, ["secrets"], OLD - 3),
    ("m-cat-1", "cat", "Writes in Portuguese.", ["language"], NOW - 2 * DAY),
]
USERS = sorted({user_id for _, user_id, *_ in MEMORIES})


def seed_runtime(agno) -> None:
    """The same memories, sessions and runs, written by agno itself."""
    for memory_id, user_id, text, topics, changed in MEMORIES:
        agno.upsert_user_memory(
            UserMemory(
                memory_id=memory_id,
                memory=text,
                user_id=user_id,
                topics=topics,
                created_at=changed,
                updated_at=changed,
            )
        )
    for user_id, sessions in (("ann", 2), ("bob", 1)):
        for n in range(sessions):
            agno_session_with_run(agno, f"{user_id}-s{n}", user_id, OLD, f"hello from {user_id}")


def seed_studio(agent: Agent) -> None:
    """What the studio keeps beside the runtime: token counts, sensitive flags, a previewed
    prune nobody confirmed yet (its candidates are memories of ann and bob)."""
    for user_id in USERS:
        tokens.recount_user(agent, user_id)
        flags.scan_user(agent, user_id)
    pruning.preview_prune(agent, pruning.PruneCriteria(older_than_days=365), None)


def starting_state(agent: Agent, agno) -> None:
    seed_runtime(agno)
    seed_studio(agent)
    assert UserTokens.objects.filter(agent=agent).count() == len(USERS)
    assert set(SensitiveFlag.objects.filter(agent=agent).values_list("memory_id", flat=True)) == {
        "m-ann-2",
        "m-bob-2",
    }
    assert PruneCandidate.objects.filter(job__agent=agent).count() == 4


# Snapshots


def runtime_snapshot(agno) -> dict[str, list]:
    """The agent's runtime rows as agno reads them, its timestamps left out."""
    memories, _ = agno.get_user_memories(deserialize=False)
    sessions, _ = agno.get_sessions(deserialize=False, include_runs=False)
    runs, _ = agno.get_runs(deserialize=False)
    return {
        "memories": sorted(
            (m["memory_id"], m["user_id"], m["memory"], json.dumps(m["topics"]), m["input"])
            for m in memories
        ),
        "sessions": sorted((s["session_id"], s["user_id"], s["session_type"]) for s in sessions),
        "runs": sorted((r["run_id"], r["session_id"], r["user_id"]) for r in runs),
    }


# Which studio row says which agent it belongs to; the test fails if a new table is left out.
AGENT_SCOPE = {
    "agents.agent": "pk",
    "memories.usertokens": "agent",
    "memories.sensitiveflag": "agent",
    "memories.sensitivescan": "agent",
    "memories.prunejob": "agent",
    "memories.prunecandidate": "job__agent",
    "memories.auditevent": "agent",
    "memories.job": "agent",
    "memories.trashedmemory": "agent",
    "memories.forgetreceipt": "lines__agent",
    "memories.forgetreceiptline": "agent",
    "memories.report": "agent",
    "memories.enduser": None,  # registered people are the studio's, not an agent's
}
# Differ by construction between the two agents or the two actors.
UNCOMPARED = {"id", "agent", "job", "actor", "actor_name", "agent_slug", "slug", "name"}
UNCOMPARED |= {"db_schema", "bridge_token_hash", "receipt"}
LINKS_COMPARED_AS_SET = {"prune_job"}


def studio_models() -> list:
    found = [
        model
        for label in ("agents", "memories")
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed
    ]
    assert {model._meta.label_lower for model in found} == set(AGENT_SCOPE)
    return found


def normalised(model, row: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for field in model._meta.concrete_fields:
        if field.name in UNCOMPARED:
            continue
        value = row[field.attname]
        # A timestamp's value is when the test ran, a link to another row (a trashed memory's
        # prune) that row's own id; whether either is set is state (a finished job).
        linked = field.name in LINKS_COMPARED_AS_SET
        kept[field.name] = (
            value is not None if isinstance(field, DateTimeField) or linked else value
        )
    return kept


def studio_snapshot(agent: Agent) -> dict[str, list]:
    snapshot = {}
    for model in studio_models():
        label = model._meta.label_lower
        rows = model.objects.all()
        if AGENT_SCOPE[label]:
            rows = rows.filter(**{AGENT_SCOPE[label]: agent.pk})
        values = [normalised(model, row) for row in rows.order_by("pk").values()]
        # Audit events keep their order (what happened after what); other tables are sets.
        snapshot[label] = values if label == "memories.auditevent" else sorted(values, key=repr)
    return snapshot


def snapshot(agent: Agent, agno) -> dict[str, Any]:
    return {"runtime": runtime_snapshot(agno), "studio": studio_snapshot(agent)}


def two_agents_in_the_same_state(make_agent, agno_db_for) -> tuple[Agent, Agent]:
    by_page, by_command = make_agent(), make_agent()
    for agent in (by_page, by_command):
        starting_state(agent, agno_db_for(agent))
    assert snapshot(by_page, agno_db_for(by_page)) == snapshot(by_command, agno_db_for(by_command))
    return by_page, by_command


def actor_names(agent: Agent) -> set[str]:
    return set(AuditEvent.objects.filter(agent=agent).values_list("actor_name", flat=True))


# Forget a user


def test_forgetting_a_user_by_page_and_by_command_leaves_the_same_database(
    editor_client, make_agent, agno_db_for
):
    by_page, by_command = two_agents_in_the_same_state(make_agent, agno_db_for)
    untouched = snapshot(by_command, agno_db_for(by_command))

    response = editor_client.post(
        reverse("memories:forget"),
        {"user_id": "ann", "agent": by_page.slug, "confirmation": "ann"},
    )
    assert response.status_code == 302
    assert snapshot(by_command, agno_db_for(by_command)) == untouched  # one agent only
    call_command("forget_user", "ann", "--agent", by_command.slug, "--yes")

    after = snapshot(by_page, agno_db_for(by_page))
    assert after == snapshot(by_command, agno_db_for(by_command))
    assert [m[0] for m in after["runtime"]["memories"]] == ["m-bob-1", "m-bob-2", "m-cat-1"]
    assert after["runtime"]["sessions"] == [("bob-s0", "bob", "agent")]
    assert after["runtime"]["runs"] == [("bob-s0-r", "bob-s0", "bob")]
    [event] = after["studio"]["memories.auditevent"]
    assert (event["action"], event["user_id"], event["details"]) == (
        "user.forgotten",
        forgetting.user_hash("ann"),  # the keyed hash, never the user_id
        {"memories": 3, "sessions": 2, "runs": 2},
    )
    [line] = after["studio"]["memories.forgetreceiptline"]
    assert (line["memories"], line["sessions"], line["runs"]) == (3, 2, 2)
    assert actor_names(by_page) == {"edna"} and actor_names(by_command) == {"system"}


@pytest.mark.parametrize("path", ["page", "command"])
def test_a_forgotten_user_leaves_no_studio_trace_in_that_agent(
    path, editor_client, make_agent, agno_db_for
):
    agent = make_agent()
    starting_state(agent, agno_db_for(agent))
    if path == "page":
        editor_client.post(
            reverse("memories:forget"),
            {"user_id": "ann", "agent": agent.slug, "confirmation": "ann"},
        )
    else:
        call_command("forget_user", "ann", "--agent", agent.slug, "--yes")
    assert agno_db_for(agent).get_user_memories(user_id="ann") == []
    assert not UserTokens.objects.filter(agent=agent, user_id="ann").exists()
    assert not SensitiveFlag.objects.filter(agent=agent, user_id="ann").exists()
    assert not PruneCandidate.objects.filter(job__agent=agent, user_id="ann").exists()
    # Everyone else's upkeep stays as it was.
    assert set(UserTokens.objects.filter(agent=agent).values_list("user_id", flat=True)) == {
        "bob",
        "cat",
    }
    assert list(SensitiveFlag.objects.filter(agent=agent).values_list("memory_id", flat=True)) == [
        "m-bob-2"
    ]
    assert sorted(
        PruneCandidate.objects.filter(job__agent=agent).values_list("memory_id", flat=True)
    ) == ["m-bob-1", "m-bob-2"]


# Import memories

IMPORTED = [
    # An existing memory of ann, its text changed: updated in place.
    {"memory_id": "m-ann-2", "memory": "Changed her password; none kept.", "user_id": "ann"},
    # Unchanged: neither added nor updated.
    {
        "memory_id": "m-ann-1",
        "memory": "Prefers concise answers.",
        "user_id": "ann",
        "topics": ["style"],
    },
    # New memories without an id get one derived from user and text: the same in both agents.
    {"memory": "Likes green tea.", "user_id": "ann", "topics": ["drinks"], "created_at": OLD},
    {"memory": "Lives in Lisbon.", "user_id": "dan", "input": "I live in Lisbon"},
    {"memory": "Dan's " + PASSWORD, "user_id": "dan", "topics": ["secrets"]},
]


def import_file() -> bytes:
    return "".join(json.dumps(row) + "\n" for row in IMPORTED).encode()


def test_importing_by_page_and_by_command_leaves_the_same_database(
    editor_client, make_agent, agno_db_for, tmp_path
):
    by_page, by_command = two_agents_in_the_same_state(make_agent, agno_db_for)

    response = editor_client.post(
        reverse("memories:import", args=[by_page.slug]),
        {"file": SimpleUploadedFile("crm.jsonl", import_file())},
    )
    assert response.status_code == 200
    assert "Written: 3 added, 1 updated." in response.content.decode()
    path = tmp_path / "crm.jsonl"
    path.write_bytes(import_file())
    call_command("import_memories", str(path), "--agent", by_command.slug)
    run_queued_tasks()  # both imports' recounts, on the worker

    after = snapshot(by_page, agno_db_for(by_page))
    assert after == snapshot(by_command, agno_db_for(by_command))
    assert [(m[1], m[2]) for m in after["runtime"]["memories"] if m[0] == "m-ann-2"] == [
        ("ann", "Changed her password; none kept.")
    ]
    assert sorted(m[2] for m in after["runtime"]["memories"] if m[1] == "dan") == [
        "Dan's " + PASSWORD,
        "Lives in Lisbon.",
    ]
    [event] = after["studio"]["memories.auditevent"]
    assert (event["action"], event["details"]) == (
        "memories.imported",
        {"added": 3, "updated": 1, "rejected": 0},
    )
    assert actor_names(by_page) == {"edna"} and actor_names(by_command) == {"system"}


@pytest.mark.parametrize("path", ["page", "command"])
def test_imported_users_have_exact_token_counts(
    path, editor_client, make_agent, agno_db_for, tmp_path
):
    agent = make_agent()
    starting_state(agent, agno_db_for(agent))
    if path == "page":
        editor_client.post(
            reverse("memories:import", args=[agent.slug]),
            {"file": SimpleUploadedFile("crm.jsonl", import_file())},
        )
    else:
        (tmp_path / "crm.jsonl").write_bytes(import_file())
        call_command("import_memories", str(tmp_path / "crm.jsonl"), "--agent", agent.slug)
    run_queued_tasks()  # the import queued its users' recounts
    stored = {
        t.user_id: (t.tokens, t.memories) for t in UserTokens.objects.filter(agent=agent)
    }  # read before context_block, which refreshes the cache
    assert set(stored) == {"ann", "bob", "cat", "dan"}
    for user_id in ("ann", "dan"):
        _, counted = tokens.context_block(agent, user_id)
        assert stored[user_id] == (counted, len(agno_db_for(agent).get_user_memories(user_id)))


# Prune


def prune_by_page(client, agent: Agent, older_than_days: int) -> PruneJob:
    preview = client.post(
        reverse("memories:preview_prune", args=[agent.slug]),
        {"older_than_days": str(older_than_days)},
    )
    assert preview.status_code == 302
    job = PruneJob.objects.filter(agent=agent).latest("pk")
    assert client.get(preview["Location"]).status_code == 200
    batch_url = reverse("memories:prune_batch", args=[agent.slug, job.pk])
    for _ in range(10):
        assert client.post(batch_url).status_code == 302
        job.refresh_from_db()
        if job.finished_at:
            return job
    raise AssertionError("the prune never finished")


def test_pruning_by_page_and_by_command_leaves_the_same_database(
    editor_client, make_agent, agno_db_for
):
    by_page, by_command = two_agents_in_the_same_state(make_agent, agno_db_for)

    job = prune_by_page(editor_client, by_page, 365)
    call_command("prune_memories", "--agent", by_command.slug, "--older-than-days", "365")

    after = snapshot(by_page, agno_db_for(by_page))
    assert after == snapshot(by_command, agno_db_for(by_command))
    assert (job.planned, job.deleted, job.skipped) == (4, 4, 0)
    assert [m[0] for m in after["runtime"]["memories"]] == ["m-ann-3", "m-cat-1"]
    assert after["studio"]["memories.sensitiveflag"] == []
    [event] = after["studio"]["memories.auditevent"]
    assert (event["action"], event["details"]["deleted"]) == ("memories.pruned", 4)
    assert actor_names(by_page) == {"edna"} and actor_names(by_command) == {"system"}


@pytest.mark.parametrize("path", ["page", "command"])
def test_a_prune_keeps_the_studio_tables_right(path, editor_client, make_agent, agno_db_for):
    agent = make_agent()
    starting_state(agent, agno_db_for(agent))
    if path == "page":
        prune_by_page(editor_client, agent, 365)
    else:
        call_command("prune_memories", "--agent", agent.slug, "--older-than-days", "365")
    assert not SensitiveFlag.objects.filter(agent=agent).exists()  # both flagged ones were old
    done = PruneJob.objects.get(agent=agent, finished_at__isnull=False)
    assert not done.candidates.exists()
    stored = {t.user_id: t.tokens for t in UserTokens.objects.filter(agent=agent)}
    assert set(stored) == {"ann", "cat"}  # bob has no memories left
    assert stored["ann"] == tokens.context_block(agent, "ann")[1]


def import_into(agent: Agent, tmp_path) -> None:
    (tmp_path / "crm.jsonl").write_bytes(import_file())
    call_command("import_memories", str(tmp_path / "crm.jsonl"), "--agent", agent.slug)


def test_an_import_that_rewrites_a_flagged_memory_drops_its_flag(make_agent, agno_db_for, tmp_path):
    agent = make_agent()
    starting_state(agent, agno_db_for(agent))
    import_into(agent, tmp_path)
    assert (
        agno_db_for(agent).get_user_memory("m-ann-2").memory == "Changed her password; none kept."
    )
    assert not SensitiveFlag.objects.filter(agent=agent, memory_id="m-ann-2").exists()


def test_an_imported_memory_holding_a_secret_is_flagged(make_agent, agno_db_for, tmp_path):
    agent = make_agent()
    starting_state(agent, agno_db_for(agent))
    import_into(agent, tmp_path)
    assert list(
        SensitiveFlag.objects.filter(agent=agent, user_id="dan").values_list("kinds", flat=True)
    ) == [["password"]]


@pytest.mark.parametrize(
    ("field", "option"),
    [("older_than_days", "--older-than-days"), ("keep_newest", "--keep-newest")],
)
def test_criteria_the_page_refuses_are_refused_by_the_command(
    field, option, editor_client, make_agent, agno_db_for
):
    by_page, by_command = two_agents_in_the_same_state(make_agent, agno_db_for)
    before = snapshot(by_page, agno_db_for(by_page))
    refused = editor_client.post(
        reverse("memories:preview_prune", args=[by_page.slug]), {field: "-1"}
    )
    assert refused.status_code == 422
    assert snapshot(by_page, agno_db_for(by_page)) == before
    with pytest.raises(CommandError):
        call_command("prune_memories", "--agent", by_command.slug, option, "-1")
    assert snapshot(by_command, agno_db_for(by_command)) == before
