"""Studio tables are never looked up through an agent's search path.

`runtime.in_agent_schema` makes the agent's schema the whole search path, so a studio query
made inside it would read whatever table of that name the schema holds. Here the agent's
schema gets a
look-alike of every studio table (same columns, copies of the real rows with decoy values,
expired sessions, no permissions), and every page and write must still read and write the
real tables in `public`: the decoys never show, the real values do, the look-alikes stay as
they were. The look-alikes go with the agent's schema when make_agent drops it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from agno.db.schemas.memory import UserMemory
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from agents.models import Agent
from memories import actions, flags, pruning, runtime, tokens
from memories.models import (
    AuditEvent,
    EndUser,
    PruneCandidate,
    PruneJob,
    SensitiveFlag,
    UserTokens,
)
from studio.database_urls import psycopg_connect
from tests.factories import agno_session_with_run, run_queued_tasks, shown_version

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HTTP_HX_REQUEST": "true"}
ANN, BOB = "ann@example.com", "bob@example.com"
OLD = int(time.time()) - 400 * 86_400
PASSWORD = "my password is Tulip-2024!"
# What a page would show if it read a look-alike: none of it may appear anywhere.
DECOYS = ("decoy", "Chatham", "987,65", "987654", "987.7k", "424,242", "424242")

# The look-alikes' rows: copies of the real ones with decoy values. Tables not named here
# (groups, permissions, content types...) stay empty: read through the agent's path, they
# would take the editor's permissions away.
DECOY_ROWS = {
    "agents_agent": "name = 'Decoy agent', description = 'decoy'",
    "auth_user": "username = 'decoy-edna', first_name = 'Decoy'",
    "django_session": "expire_date = now() - interval '1 day'",
    "memories_enduser": "first_name = 'Decoyfirst', timezone = 'Pacific/Chatham'",
    "memories_usertokens": "tokens = 987654, memories = 99",
    "memories_sensitiveflag": "kinds = '[\"card\"]'::jsonb, user_id = 'decoy-user'",
    "memories_sensitivescan": "scanned = 424242",
    "memories_auditevent": "actor_name = 'decoy-actor', details = '{\"decoy\": 1}'::jsonb",
    "memories_prunejob": "planned = 424242, users = 424242, tokens_saved = 424242",
    "memories_prunecandidate": "user_id = 'decoy-candidate'",
}


def studio_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        return [name for (name,) in cursor.fetchall() if not name.startswith("agno_")]


@dataclass
class World:
    agent: Agent
    agno: Any
    ids: dict[str, str]  # memory text -> memory_id
    job: PruneJob
    shadowed: list[str]

    def digest(self) -> dict[str, tuple[int, str]]:
        """Every look-alike's rows, as a count and a hash, read outside Django."""
        with psycopg_connect(connection.settings_dict) as conn:
            return {
                table: conn.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), "
                    f"'')) FROM \"{self.agent.db_schema}\".{table} AS t"
                ).fetchone()
                for table in self.shadowed
            }


def seed_runtime(agno) -> dict[str, str]:
    rows = [
        (ANN, "Prefers concise answers.", ["style"], None),
        (ANN, PASSWORD, None, None),
        (ANN, "Renewal is in November.", ["billing"], None),
        (BOB, "Has a dog named Rex.", None, OLD),
        (BOB, "Is on the Business plan.", ["billing"], None),
    ]
    ids = {}
    for user_id, text, topics, when in rows:
        written = agno.upsert_user_memory(
            UserMemory(memory=text, user_id=user_id, topics=topics, created_at=when)
        )
        ids[text] = written.memory_id
    for user_id, session_id in ((ANN, "ann-s0"), (ANN, "ann-s1"), (BOB, "bob-s0")):
        agno_session_with_run(agno, session_id, user_id, OLD, f"Hello from session {session_id}.")
    return ids


def shadow_studio_tables(schema: str, tables: list[str]) -> None:
    """Look-alikes of every studio table in the agent's schema, outside Django's connection."""
    with psycopg_connect(connection.settings_dict) as conn:
        for table in tables:
            conn.execute(f'CREATE TABLE "{schema}".{table} (LIKE public.{table} INCLUDING ALL)')
            if table in DECOY_ROWS:
                conn.execute(f'INSERT INTO "{schema}".{table} SELECT * FROM public.{table}')
                conn.execute(f'UPDATE "{schema}".{table} SET {DECOY_ROWS[table]}')
        # A registered person only the look-alike knows, under a user_id the runtime holds.
        columns = "email, external_id, first_name, last_name, additional_attributes, timezone"
        conn.execute(
            f'INSERT INTO "{schema}".memories_enduser (id, created_at, {columns}) '
            "SELECT id + 1000, created_at, %s, '', 'Decoybob', '', '{}', 'Pacific/Chatham' "
            "FROM public.memories_enduser",
            [BOB],
        )


@pytest.fixture
def world(editor, editor_client, make_agent, agno_db_for) -> World:
    agent = make_agent(slug="support", name="Support desk")
    agno = agno_db_for(agent)
    ids = seed_runtime(agno)
    EndUser.objects.create(
        email=ANN, first_name="Annika", last_name="Realperson", timezone="Europe/Berlin"
    )
    for user_id in (ANN, BOB):
        tokens.recount_user(agent, user_id)
        flags.scan_user(agent, user_id)
    flags.scan_next_batch(agent)
    actions.rotate_bridge_token(actor=editor, agent=agent)
    job = pruning.preview_prune(agent, pruning.PruneCriteria(older_than_days=365), editor)
    tables = studio_tables()
    assert {"agents_agent", "auth_user", "django_session", "memories_enduser"} <= set(tables)
    shadow_studio_tables(agent.db_schema, tables)
    made = World(agent, agno, ids, job, tables)
    filled = {table for table, (rows, _) in made.digest().items() if rows}
    assert filled == set(DECOY_ROWS)  # a decoy for every table the pages read, no other rows
    return made


def text_of(response: HttpResponse) -> str:
    body = (
        b"".join(response.streaming_content) if response.streaming else response.content
    ).decode()
    return body + json.dumps(dict(response.headers))


def check(response: HttpResponse, *real: str, status: int = 200) -> str:
    """The page answered as it should, showed the real values and no decoy."""
    html = text_of(response)
    assert response.status_code == status, html[:2000]
    for decoy in DECOYS:
        assert decoy.lower() not in html.lower(), decoy
    for value in real:
        assert value in html, value
    return html


def tokens_of(agent: Agent, user_id: str) -> int:
    return UserTokens.objects.get(agent=agent, user_id=user_id).tokens


# Pages: (name, request, the real values it shows)
Page = Callable[[Client, World], HttpResponse]


ID_IN_QUERY = {
    "memories:row": "memory_id",
    "memories:edit": "memory_id",
    "memories:delete": "memory_id",
    "memories:transcript": "session_id",
    "memories:delete_session": "session_id",
}


def url(name: str, world: World, *args: Any, **params: str) -> str:
    if name in ID_IN_QUERY:  # runtime ids travel in the query string
        query = urlencode({ID_IN_QUERY[name]: args[0], **params})
        return f"{reverse(name, args=[world.agent.slug])}?{query}"
    return reverse(name, args=[world.agent.slug, *args])


PAGES: dict[str, tuple[Page, Callable[[World], list[str]]]] = {
    "agents list": (
        lambda c, w: c.get(reverse("agents:list")),
        lambda w: ["Support desk", w.agent.db_schema, "edna"],
    ),
    "memory tab": (
        lambda c, w: c.get(url("agents:memory_tab", w)),
        lambda w: ["Support desk", "Annika Realperson", ANN, BOB],
    ),
    "users sorted by tokens": (
        lambda c, w: c.get(url("agents:memory_tab", w), {"sort": "tokens"}),
        lambda w: [f">{tokens_of(w.agent, ANN):,}<", f">{tokens_of(w.agent, BOB):,}<"],
    ),
    "users partial": (
        lambda c, w: c.get(
            url("agents:memory_tab", w), {"q": "ann"}, HTTP_HX_TARGET="users", **HTMX
        ),
        lambda w: ["Annika Realperson", ANN],
    ),
    "user page": (
        lambda c, w: c.get(url("memories:user", w), {"user_id": ANN}),
        lambda w: ["Annika Realperson", "times in Europe/Berlin", "Prefers concise answers."],
    ),
    "user page of a person the look-alike registers": (
        lambda c, w: c.get(url("memories:user", w), {"user_id": BOB}),
        lambda w: ["Unregistered", "Has a dog named Rex."],
    ),
    "memory list partial": (
        lambda c, w: c.get(
            url("memories:user", w),
            {"user_id": ANN, "q": "Renewal"},
            HTTP_HX_TARGET="memory-list",
            **HTMX,
        ),
        lambda w: ["Renewal is in November."],
    ),
    "sensitive filter": (
        lambda c, w: c.get(url("memories:user", w), {"user_id": ANN, "sensitive": "1"}),
        lambda w: ["Tulip-2024!", '<span class="badge danger">Password</span>'],
    ),
    "topics partial": (
        lambda c, w: c.get(url("memories:topics", w), {"user_id": ANN}, **HTMX),
        lambda w: ["style", "billing"],
    ),
    "memory row partial": (
        lambda c, w: c.get(
            url("memories:row", w, w.ids["Prefers concise answers."], user_id=ANN), **HTMX
        ),
        lambda w: ["Prefers concise answers."],
    ),
    "edit form": (
        lambda c, w: c.get(
            url("memories:edit", w, w.ids["Prefers concise answers."], user_id=ANN), **HTMX
        ),
        lambda w: ["Prefers concise answers.</textarea>"],
    ),
    "context cost": (
        lambda c, w: c.get(url("memories:context", w), {"user_id": ANN}, **HTMX),
        lambda w: [f"<strong>{tokens_of(w.agent, ANN)} tokens</strong>"],
    ),
    "sessions": (
        lambda c, w: c.get(url("memories:sessions", w), {"user_id": ANN}),
        lambda w: ["ann-s0", "ann-s1"],
    ),
    "sessions partial": (
        lambda c, w: c.get(
            url("memories:sessions", w), {"user_id": ANN}, HTTP_HX_TARGET="session-list", **HTMX
        ),
        lambda w: ["ann-s0", "ann-s1"],
    ),
    "transcript": (
        lambda c, w: c.get(url("memories:transcript", w, "ann-s0")),
        lambda w: ["Hello from session ann-s0."],
    ),
    "search": (
        lambda c, w: c.get(url("memories:search", w), {"q": "Renewal"}),
        lambda w: ["Renewal is in November."],
    ),
    "search results": (
        lambda c, w: c.get(
            url("memories:search", w), {"q": "Business"}, HTTP_HX_TARGET="search-results", **HTMX
        ),
        lambda w: ["Is on the Business plan."],
    ),
    "cost panel": (
        lambda c, w: c.get(url("memories:cost", w)),
        lambda w: ["Heaviest users", f"{tokens_of(w.agent, ANN) + tokens_of(w.agent, BOB):,}"],
    ),
    "prune page": (
        lambda c, w: c.get(url("memories:prune", w)),
        lambda w: ["Support desk"],
    ),
    "a previewed prune": (
        lambda c, w: c.get(url("memories:prune_job", w, w.job.pk)),
        lambda w: ["deletes <strong>1 memory</strong> of <strong>1 user</strong>", f">{BOB}<"],
    ),
    "sensitive page": (
        lambda c, w: c.get(url("memories:sensitive", w)),
        lambda w: ["Tulip-2024!", "1 password"],
    ),
    "audit log": (
        lambda c, w: c.get(reverse("memories:audit")),
        lambda w: ["edna", "Rotated the settings token"],
    ),
    "audit log partial": (
        lambda c, w: c.get(
            reverse("memories:audit"), {"agent": "support"}, HTTP_HX_TARGET="audit-list", **HTMX
        ),
        lambda w: ["edna", "Rotated the settings token"],
    ),
    "export": (
        lambda c, w: c.get(url("memories:export", w)),
        lambda w: ["Prefers concise answers.", "Has a dog named Rex."],
    ),
    "export of one user": (
        lambda c, w: c.get(url("memories:export", w), {"user_id": ANN}),
        lambda w: ["Renewal is in November."],
    ),
    "forget preview": (
        lambda c, w: c.get(reverse("memories:forget"), {"user_id": ANN}),
        lambda w: ['<td>Support desk</td><td class="num">3</td><td class="num">2</td>'],
    ),
    "register form": (
        lambda c, w: c.get(url("memories:register", w), {"user_id": BOB}),
        lambda w: [f'value="{BOB}"'],
    ),
    "import form": (
        lambda c, w: c.get(url("memories:import", w)),
        lambda w: ["Support desk"],
    ),
}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_reads_the_real_studio_tables(page, editor_client, world):
    request, real = PAGES[page]
    before = world.digest()
    check(request(editor_client, world), *real(world))
    assert world.digest() == before
    assert not AuditEvent.objects.filter(actor_name__startswith="decoy").exists()


@pytest.fixture(params=["autocommit", "atomic requests"])
def request_mode(request, monkeypatch) -> str:
    """Views run as deployed (autocommit: each `in_agent_schema` its own transaction) or
    wrapped in the request's transaction (ATOMIC_REQUESTS: each `in_agent_schema` nested, its
    path put back after)."""
    if request.param == "atomic requests":
        assert connections.settings["default"] is connection.settings_dict
        monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    return request.param


def test_every_page_reads_the_real_studio_tables_inside_a_request_transaction(
    editor_client, world, monkeypatch
):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    before = world.digest()
    for name, (request, real) in PAGES.items():
        try:
            check(request(editor_client, world), *real(world))
        except AssertionError as failure:
            raise AssertionError(f"{name}: {failure}") from failure
    assert world.digest() == before


def test_a_prune_preview_is_written_to_the_real_tables(editor_client, world, request_mode):
    before = world.digest()
    response = editor_client.post(url("memories:preview_prune", world), {"user_id": ANN})
    assert response.status_code == 302
    job = PruneJob.objects.latest("pk")
    assert (job.planned, job.actor.username) == (3, "edna")
    check(
        editor_client.get(response["Location"]), "deletes <strong>3 memories</strong>", f">{ANN}<"
    )
    assert world.digest() == before


# Writes: each lands in the real tables, and the look-alikes stay as they were.


def last_event(action: str) -> AuditEvent:
    event = AuditEvent.objects.filter(action=action).latest("pk")
    assert event.actor_name == "edna" and event.agent_slug == "support"
    return event


def test_adding_a_memory(editor_client, world, request_mode):
    before = world.digest()
    response = editor_client.post(
        url("memories:add", world),
        {"user_id": ANN, "text": "Has a cat named Miso.", "topics": "pets"},
        **HTMX,
    )
    check(response, "Has a cat named Miso.", "Memory added.")
    [added] = world.agno.get_user_memories(user_id=ANN, search_content="Miso")
    assert last_event("memory.added").memory_id == added.memory_id
    run_queued_tasks()  # the worker recounts the user the write changed
    assert tokens_of(world.agent, ANN) == tokens.context_block(world.agent, ANN)[1]
    assert UserTokens.objects.get(agent=world.agent, user_id=ANN).memories == 4
    assert world.digest() == before


def test_editing_a_memory(editor_client, world, request_mode):
    before = world.digest()
    memory_id = world.ids[PASSWORD]
    version = runtime.get_memory(world.agent, ANN, memory_id).version
    response = editor_client.post(
        url("memories:edit", world, memory_id),
        {
            "user_id": ANN,
            "text": "Changed the password; none kept.",
            "topics": "",
            "version": version,
        },
    )
    assert response.status_code == 302
    check(editor_client.get(response["Location"]), "Changed the password; none kept.", "Annika")
    assert world.agno.get_user_memory(memory_id).memory == "Changed the password; none kept."
    assert last_event("memory.edited").memory_id == memory_id
    assert not SensitiveFlag.objects.filter(agent=world.agent, memory_id=memory_id).exists()
    assert world.digest() == before


def test_deleting_a_memory(editor_client, world, request_mode):
    before = world.digest()
    memory_id = world.ids[PASSWORD]
    shown = {"user_id": ANN, "version": shown_version(world.agent, memory_id, ANN)}
    response = editor_client.post(url("memories:delete", world, memory_id), shown, **HTMX)
    check(response, "Memory deleted.")
    assert world.agno.get_user_memory(memory_id) is None
    assert last_event("memory.deleted").memory_id == memory_id
    assert not SensitiveFlag.objects.filter(agent=world.agent, memory_id=memory_id).exists()
    run_queued_tasks()  # the worker recounts the user the write changed
    assert UserTokens.objects.get(agent=world.agent, user_id=ANN).memories == 2
    assert world.digest() == before


def test_bulk_deleting_memories(editor_client, world, request_mode):
    before = world.digest()
    chosen = [world.ids["Prefers concise answers."], world.ids["Renewal is in November."]]
    response = editor_client.post(
        url("memories:bulk_delete", world),
        {"user_id": ANN, "memory_ids": chosen, "confirmed": "on"},
        **HTMX,
    )
    check(response, "2 memories deleted.", "Tulip-2024!")
    assert [m.memory for m in world.agno.get_user_memories(user_id=ANN)] == [PASSWORD]
    assert last_event("memories.bulk_deleted").details["count"] == 2
    run_queued_tasks()  # the worker recounts the user the write changed
    assert UserTokens.objects.get(agent=world.agent, user_id=ANN).memories == 1
    assert world.digest() == before


def test_registering_a_user(editor_client, world, request_mode):
    before = world.digest()
    response = editor_client.post(
        url("memories:register", world),
        {"user_id": BOB, "email": BOB, "first_name": "Robert", "timezone": "Asia/Tokyo"},
    )
    assert response.status_code == 302
    check(editor_client.get(response["Location"]), "Robert", "times in Asia/Tokyo")
    assert EndUser.objects.get(email=BOB).first_name == "Robert"
    assert last_event("user.registered").details == {"email": BOB}
    assert world.digest() == before


def test_deleting_a_session(editor_client, world, request_mode):
    before = world.digest()
    response = editor_client.post(url("memories:delete_session", world, "ann-s0"), **HTMX)
    check(response, "Session deleted with its 1 run.")
    assert [s.session_id for s in world.agno.get_sessions(user_id=ANN)] == ["ann-s1"]
    assert last_event("session.deleted").details == {"session_id": "ann-s0", "runs": 1}
    assert world.digest() == before


def test_running_a_prune(editor_client, world, request_mode):
    before = world.digest()
    response = editor_client.post(url("memories:prune_batch", world, world.job.pk), **HTMX)
    check(response, "<strong>1</strong> memories deleted")
    world.job.refresh_from_db()
    assert (world.job.deleted, world.job.finished_at is not None) == (1, True)
    assert not PruneCandidate.objects.filter(job=world.job).exists()
    assert [m.memory for m in world.agno.get_user_memories(user_id=BOB)] == [
        "Is on the Business plan."
    ]
    assert last_event("memories.pruned").details["deleted"] == 1
    assert UserTokens.objects.get(agent=world.agent, user_id=BOB).memories == 1
    assert world.digest() == before


def test_scanning_and_deleting_flagged_memories(editor_client, world, request_mode):
    before = world.digest()
    check(editor_client.post(url("memories:scan", world), **HTMX), "Tulip-2024!")
    memory_id = world.ids[PASSWORD]
    response = editor_client.post(
        url("memories:delete_flagged", world), {"memory_ids": [memory_id]}, **HTMX
    )
    check(response, "1 flagged memory deleted.")
    assert world.agno.get_user_memory(memory_id) is None
    assert not SensitiveFlag.objects.filter(agent=world.agent).exists()
    assert last_event("sensitive.deleted").details["count"] == 1
    assert world.digest() == before


def test_importing_memories(editor_client, world, request_mode):
    before = world.digest()
    data = json.dumps({"memory": "Imported fact.", "user_id": BOB}).encode() + b"\n"
    response = editor_client.post(
        url("memories:import", world), {"file": SimpleUploadedFile("more.jsonl", data)}
    )
    check(response, "Written: 1 added, 0 updated.")
    assert "Imported fact." in [m.memory for m in world.agno.get_user_memories(user_id=BOB)]
    assert last_event("memories.imported").details["added"] == 1
    run_queued_tasks()  # the worker recounts the user the write changed
    assert UserTokens.objects.get(agent=world.agent, user_id=BOB).memories == 3
    assert world.digest() == before


def test_forgetting_a_user(editor_client, world, request_mode):
    before = world.digest()
    response = editor_client.post(
        reverse("memories:forget"), {"user_id": ANN, "agent": "support", "confirmation": ANN}
    )
    assert response.status_code == 302
    receipt = check(editor_client.get(response["Location"]), "Forgot the user: 3 memories")
    assert ANN not in receipt  # the receipt names the user by a keyed hash only
    assert world.agno.get_user_memories(user_id=ANN) == []
    assert last_event("user.forgotten").details == {"memories": 3, "sessions": 2, "runs": 2}
    assert not UserTokens.objects.filter(agent=world.agent, user_id=ANN).exists()
    assert not SensitiveFlag.objects.filter(agent=world.agent, user_id=ANN).exists()
    assert world.digest() == before
