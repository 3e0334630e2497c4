"""Pruning with a preview: the pages (memories.prune_views), the criteria (memories.pruning),
the batches (memories.actions.run_prune_batch) and `manage.py prune_memories`."""

from __future__ import annotations

import re
import threading
import time
from html import unescape
from urllib.parse import quote

import pytest
from agno.db.schemas.memory import UserMemory
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memories import actions, pruning, runtime, tokens
from memories.models import (
    AuditEvent,
    Memory,
    PruneCandidate,
    PruneJob,
    TrashedMemory,
    UserTokens,
)
from memories.users import user_query
from tests.factories import HTMX, make_memories, make_memory, memory_texts, run_queued_tasks

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


@pytest.mark.parametrize(
    ("owner", "label", "described"),
    [(None, "no user_id", "stored with no user_id (NULL)"), ("", "empty user_id", '("")')],
    ids=["null", "empty"],
)
def test_a_prune_of_the_null_or_empty_user_id_takes_exactly_their_rows(
    editor_client, agent, agno_db_for, owner, label, described
):
    agno = agno_db_for(agent)
    write_with_agno(agno, owner, "old1", "old2")
    write_with_agno(agno, owner, "new1", when=int(time.time()))
    other = "" if owner is None else None  # the other user nobody can type
    write_with_agno(agno, other, "other1")
    write_with_agno(agno, "ann", "ann1")
    write_with_agno(agno, " ", "space1")  # a user_id of one space is somebody else
    tokens.recount_user(agent, "")  # the empty user_id keeps a count like anyone
    counted = UserTokens.objects.get(agent=agent, user_id="").memories
    assert counted == (3 if owner == "" else 1)
    page = editor_client.get(reverse("memories:prune", args=[agent.slug]) + "?" + user_query(owner))
    html = unescape(page.content.decode())
    assert page.status_code == 200 and f"<strong>{label}</strong>" in html
    # The form names the user as every page does: the hidden fields and nothing typed.
    hidden = (
        '<input type="hidden" name="no_user_id" value="1">'
        if owner is None
        else '<input type="hidden" name="user_id" value="">'
    )
    assert hidden in html and 'name="user_id_box"' not in html
    user = {"no_user_id": "1"} if owner is None else {"user_id": ""}
    preview = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]), {**user, "older_than_days": "90"}
    )
    assert preview.status_code == 302
    job = PruneJob.objects.get()
    assert set(job.candidates.values_list("memory_id", "user_id")) == {
        ("old1", owner),
        ("old2", owner),
    }
    shown = unescape(editor_client.get(preview["Location"]).content.decode())
    assert described in shown
    assert "deletes <strong>2 memories</strong> of <strong>1 user</strong>" in shown
    assert f'?{user_query(owner)}">{label}</a></td><td class="num">2</td>' in shown
    editor_client.post(reverse("memories:confirm_prune", args=[agent.slug, job.pk]))
    run_queued_tasks()
    job.refresh_from_db()
    assert job.finished_at and (job.deleted, job.skipped) == (2, 0)
    assert stored_owners(agno) == {
        "new1": owner,
        "other1": other,
        "ann1": "ann",
        "space1": " ",
    }
    trashed = TrashedMemory.objects.filter(prune_job=job)
    assert sorted(trashed.values_list("memory_id", "user_id")) == [
        ("old1", owner),
        ("old2", owner),
    ]
    assert {entry.row["user_id"] for entry in trashed} == {owner}
    event = AuditEvent.objects.get(action="memories.pruned")
    assert event.user_id == "" and event.details["deleted"] == 2
    assert described in event.details["criteria"]
    assert event.details.get("user_id_null", False) is (owner is None)
    # What is left of the empty user_id is counted again (NULL has no count to keep).
    assert UserTokens.objects.get(agent=agent, user_id="").memories == 1


def test_a_blank_user_id_box_prunes_every_user_the_null_and_empty_ones_included(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    for owner, memory_id in ((None, "n1"), ("", "e1"), ("ann", "a1")):
        write_with_agno(agno, owner, memory_id)
    prune_url = reverse("memories:prune", args=[agent.slug])
    page = unescape(editor_client.get(prune_url).content.decode())
    assert '<input type="hidden" name="user_id_box" value="1">' in page
    assert f'href="{prune_url}?no_user_id=1">no user_id</a>' in page
    assert f'href="{prune_url}?user_id=">empty user_id</a>' in page
    preview = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]),
        {"user_id_box": "1", "user_id": "", "older_than_days": "90"},
    )
    assert preview.status_code == 302
    job = PruneJob.objects.get()
    assert job.criteria["one_user"] is False and (job.planned, job.users) == (3, 3)
    assert set(job.candidates.values_list("user_id", flat=True)) == {None, "", "ann"}
    assert len(stored_owners(agno)) == 3  # a preview deletes nothing


def test_a_prune_naming_two_users_or_an_unstorable_one_is_refused_in_words(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    write_with_agno(agno, None, "n1")
    write_with_agno(agno, "ann", "a1")
    url = reverse("memories:preview_prune", args=[agent.slug])
    both = editor_client.post(url, {"no_user_id": "1", "user_id": "ann", "older_than_days": "9"})
    assert both.status_code == 422 and "Name one user" in both.content.decode()
    nul = editor_client.post(url, {"user_id": "a\x00b"})
    assert nul.status_code == 422 and "U+0000" in nul.content.decode()
    link = editor_client.get(reverse("memories:prune", args=[agent.slug]) + "?user_id=%00")
    assert link.status_code == 400 and "U+0000" in link.content.decode()
    assert not PruneJob.objects.exists() and len(stored_owners(agno)) == 2


def test_the_prune_command_names_the_null_and_the_empty_user_id(agent, agno_db_for, capsys):
    agno = agno_db_for(agent)
    for owner, memory_id in ((None, "n1"), ("", "e1"), ("ann", "a1")):
        write_with_agno(agno, owner, memory_id)
    call_command("prune_memories", "--agent", agent.slug, "--no-user-id")
    assert "stored with no user_id (NULL): 1 of 1 users" in capsys.readouterr().out
    assert stored_owners(agno) == {"e1": "", "a1": "ann"}
    call_command("prune_memories", "--agent", agent.slug, "--user-id", "")
    assert stored_owners(agno) == {"a1": "ann"}
    with pytest.raises(CommandError, match="Name one user"):
        call_command("prune_memories", "--agent", agent.slug, "--no-user-id", "--user-id", "ann")
    assert stored_owners(agno) == {"a1": "ann"}


STORED_OWNERS = (None, "", " ", "ann", " ann", "ANN")
OWNERS = st.sampled_from(STORED_OWNERS) | st.text(max_size=12) | st.sampled_from(["\x00", "\ud800"])


def wire(pairs: list[tuple[str, str]]) -> str:
    """A form body as a browser or script sends it, lone surrogates included."""
    return "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in pairs)


@pytest.fixture
def owners_seeded(agent, agno_db_for):
    agno = agno_db_for(agent)
    for n, owner in enumerate(STORED_OWNERS):
        write_with_agno(agno, owner, f"m{n}a", f"m{n}b")
    return agent, agno


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(owner=st.none() | OWNERS, box=st.booleans(), also_null=st.booleans())
def test_a_prune_by_user_previews_exactly_that_user_ids_rows(
    editor_client, owners_seeded, owner, box, also_null
):
    agent, agno = owners_seeded
    PruneJob.objects.all().delete()  # the last example's, even when it failed
    pairs = [("older_than_days", "30")]
    if owner is None:
        pairs.append(("no_user_id", "1"))
    else:
        pairs += [("user_id", owner)] + ([("user_id_box", "1")] if box else [])
        pairs += [("no_user_id", "1")] if also_null else []
    response = editor_client.generic(
        "POST",
        reverse("memories:preview_prune", args=[agent.slug]),
        wire(pairs),
        content_type="application/x-www-form-urlencoded",
    )
    stored = stored_owners(agno)
    assert len(stored) == 2 * len(STORED_OWNERS)  # a preview deletes nothing
    # What the server reads: a lone surrogate cannot cross the wire as itself.
    sent = owner and owner.encode("utf-8", "surrogatepass").decode(errors="replace")
    typed_blank = sent == "" and box  # the page's blank box names nobody
    if sent is not None and "\x00" in sent:
        refused = "U+0000"
    elif also_null and sent is not None and not typed_blank:
        refused = "Name one user"
    else:
        refused = ""
    if refused:
        assert response.status_code == 422 and refused in response.content.decode()
        assert not PruneJob.objects.exists()
        return
    assert response.status_code == 302
    job = PruneJob.objects.get()
    chosen = set(job.candidates.values_list("memory_id", flat=True))
    whose = None if owner is None or also_null else sent
    if typed_blank and not also_null:
        assert chosen == set(stored) and not job.criteria["one_user"]
    else:
        assert chosen == {memory_id for memory_id, held in stored.items() if held == whose}
        assert job.criteria["one_user"] and job.criteria["user_id"] == whose


def topic_rows(agno, rows: list[tuple[str, object]], user_id: str | None = "ann") -> None:
    for memory_id, topics in rows:
        agno.upsert_user_memory(
            UserMemory(
                memory_id=memory_id, memory=f"Fact {memory_id}.", user_id=user_id, topics=topics
            )
        )


def suggested(html: str) -> list[dict[str, str]]:
    """The hidden fields of each "Preview with this topic" form on a preview page (its HTML
    as sent: the values are escaped)."""
    forms = re.findall(r"<li><form method=\"post\"[^>]*>(.*?)</form></li>", html, re.S)
    return [
        {name: unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', f)}
        for f in forms
    ]


def test_a_topic_typed_with_a_stray_space_names_the_stored_topics_it_missed(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    topic_rows(
        agno,
        [
            ("t1", ["travel", "x"]),
            ("t2", "travel"),  # a bare string is one topic
            ("t3", ["  travel\t"]),
            ("t4", ["Travel"]),  # another topic: case is not spacing
            ("t5", ["trav el"]),
            ("t6", [1, None]),
        ],
    )
    topic_rows(agno, [("b1", ["travel"])], user_id="bob")
    url = reverse("memories:preview_prune", args=[agent.slug])
    preview = editor_client.post(url, {"user_id_box": "1", "user_id": "ann", "topic": "travel "})
    assert preview.status_code == 302
    page = editor_client.get(preview["Location"]).content.decode()
    html = unescape(page)
    assert "Nothing matches" in html and "exactly as typed" in html
    offers = suggested(page)
    # Most held first; bob's memory is not ann's, so not counted for this prune.
    assert [o["topic"] for o in offers] == ["travel", "  travel\t"]
    assert '<q class="verbatim">travel</q>, on 2 memories' in html
    assert '<q class="verbatim">  travel\t</q>, on 1 memory' in html
    offers[0].pop("csrfmiddlewaretoken")
    assert offers[0] == {"topic": "travel", "user_id": "ann"}  # the prune's other criteria
    again = editor_client.post(url, offers[0])  # the button, as the page sends it
    assert again.status_code == 302
    job = PruneJob.objects.latest("pk")
    assert set(job.candidates.values_list("memory_id", flat=True)) == {"t1", "t2"}
    shown = editor_client.get(again["Location"]).content.decode()
    assert "deletes <strong>2 memories</strong>" in shown
    # "  travel\t" stays out of this prune, and the page says so.
    assert "Only memories with the topic exactly as typed go" in shown
    assert [o["topic"] for o in suggested(shown)] == ["  travel\t"]
    assert len(agno.get_user_memories()) == 7  # previews delete nothing


STORED_TOPICS = [
    "travel",
    " travel",
    "travel\u00a0",
    "tra vel",
    "Travel",
    "new  york",
    "new york",
    "\u3000new york",
    "",
    "  ",
    "café",
    '"hi" a\\b',  # what JSON escapes: the prefilter must not miss these
    ' "hi"  a\\b\t',
]
WORDS = st.sampled_from(["travel", "new", "york", "tra", "vel", "Travel", "café", '"hi"', "a\\b"])
# str.split() spaces, and U+200B, which is not one.
GAPS = st.text(alphabet=" \t\n\u00a0\u2009\u3000\u0085\u200b", min_size=1, max_size=3)
PADS = st.text(alphabet=" \t\u00a0", max_size=2)
TYPED_TOPICS = (
    st.builds(
        lambda pad, words, gap, end: pad + gap.join(words) + end,
        PADS,
        st.lists(WORDS, min_size=1, max_size=3),
        GAPS,
        PADS,
    )
    | st.sampled_from(STORED_TOPICS)
    # No lone surrogate: no browser can send one, and the test client cannot encode it.
    | st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]),
        max_size=8,
    )
)


@pytest.fixture
def topics_seeded(agent, agno_db_for):
    agno = agno_db_for(agent)
    topic_rows(agno, [(f"s{n}", [topic]) for n, topic in enumerate(STORED_TOPICS)])
    topic_rows(agno, [("pair", ["travel", " travel"]), ("bare", "new york")])
    return agent, agno


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(typed=TYPED_TOPICS)
def test_the_stored_topics_offered_are_those_equal_once_spaces_are_folded(
    editor_client, topics_seeded, typed
):
    agent, agno = topics_seeded
    PruneJob.objects.all().delete()
    response = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]), {"topic": typed}
    )
    if not typed:
        assert response.status_code == 422 and "at least one criterion" in response.content.decode()
        return
    assert response.status_code == 302
    page = editor_client.get(response["Location"]).content.decode()
    html = unescape(page)
    held: dict[str, int] = {}
    for memory in agno.get_user_memories():
        stored = memory.topics if isinstance(memory.topics, list) else [memory.topics]
        for topic in set(stored):
            held[topic] = held.get(topic, 0) + 1
    # What typed_topic() makes of a typed topic, applied to both sides: str.split()'s spaces.
    expected = {
        topic: n
        for topic, n in held.items()
        if topic.split() == typed.split() and topic not in (typed, "")
    }
    offered = [o["topic"] for o in suggested(page)]
    assert sorted(offered) == sorted(expected)
    for topic in offered:
        assert f'<q class="verbatim">{topic}</q>, on {expected[topic]} memor' in html
