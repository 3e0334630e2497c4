"""The user_id doctor: the Scoping problems page, the move preview and the move itself
(memories.scoping, memories.scoping_views, actions.move_user_memories)."""

from __future__ import annotations

from urllib.parse import urlencode

from agno.db.schemas.memory import UserMemory
from django.urls import reverse

from agents.models import Agent
from memories import actions, scoping
from memories.context_cost import count_tokens, memory_block
from memories.models import AuditEvent, Job, SensitiveFlag, TrashedMemory
from tests.factories import (
    agno_session_with_run,
    make_memories,
    make_memory,
    make_person,
    memory_texts,
    run_queued_tasks,
    table_row,
)


def checked_page(client, agent: Agent) -> str:
    """The Scoping problems page after a check ran: an Editor starts it, a worker runs it."""
    response = client.post(reverse("memories:check_scoping", args=[agent.slug]))
    assert response.status_code == 302
    run_queued_tasks()
    response = client.get(reverse("memories:scoping", args=[agent.slug]))
    assert response.status_code == 200
    return response.content.decode()


def move_url(agent: Agent, **params: str) -> str:
    return f"{reverse('memories:move_preview', args=[agent.slug])}?{urlencode(params)}"


def test_scoping_page_lists_every_suspicious_user_id_with_its_evidence(editor_client, agent):
    make_person(
        "ann@example.com", external_id="u-ann", additional_attributes={"aliases": ["Annie"]}
    )
    for user_id in ("ann@example.com", " ANN@Example.com", "u-ann", "annie", "ghost", ""):
        make_memory(agent, user_id, f"Said by {user_id!r}.")
    make_memories(agent, "ghost", 2)
    html = checked_page(editor_client, agent)
    assert ">ann@example.com</a>" not in html  # registered under this agent's key
    folded = table_row(html, "ANN@Example.com")
    assert "NFKC" in folded and "Move these memories to ann@example.com" in folded
    assert "It is their id; this agent keys memories by email." in table_row(html, ">u-ann<")
    assert "alias kept on their registration" in table_row(html, ">annie<")
    ghost = table_row(html, ">ghost<")
    assert "No clue" in ghost and '<td class="num">3</td>' in ghost
    assert "empty user_id" in html and "Move these" not in table_row(html, "empty user_id")


def test_the_key_the_agent_uses_decides_what_is_suspicious(agent):
    agent.user_id_kind = Agent.UserIdKind.ID
    agent.save()
    make_person("ann@example.com", external_id="u-ann")
    make_person("bob@example.com")  # no id yet: nowhere to move his memories
    for user_id in ("u-ann", "ann@example.com", "Ｕ-ann", "bob@example.com"):
        make_memory(agent, user_id)
    problems = {p.user_id: p for p in scoping.scoping_problems(agent)}
    assert set(problems) == {"ann@example.com", "Ｕ-ann", "bob@example.com"}
    assert problems["ann@example.com"].suggestion.target == "u-ann"
    assert problems["Ｕ-ann"].suggestion.target == "u-ann"  # full-width letters, NFKC
    assert not problems["bob@example.com"].suggestion.can_move


def test_two_people_matching_equally_get_no_suggestion(agent):
    make_person("ann@example.com", additional_attributes={"aliases": ["sam"]})
    make_person("bea@example.com", additional_attributes={"aliases": ["Sam"]})
    make_memory(agent, "sam")
    [problem] = scoping.scoping_problems(agent)
    assert problem.suggestion is None and "More than one" in problem.note


def test_the_preview_counts_the_move_its_repeats_and_its_tokens(editor_client, agent):
    make_person("ann@example.com")
    make_memory(agent, "ann@example.com", "Likes green tea.")
    make_memory(agent, "Ann@example.com", "likes  GREEN tea!")
    make_memory(agent, "Ann@example.com", "Lives in Porto.")
    response = editor_client.get(move_url(agent, user_id="Ann@example.com", to="ann@example.com"))
    assert response.status_code == 200
    html = response.content.decode()
    before = count_tokens(memory_block(["Likes green tea."]))
    after = count_tokens(memory_block(["Likes green tea.", "likes  GREEN tea!", "Lives in Porto."]))
    assert f"<strong>{before} → {after}</strong> (+{after - before})" in html
    assert "<strong>2</strong> memories move" in html
    assert "<strong>1</strong> would repeat a memory already there" in html
    assert "likes  GREEN tea!" in table_row(html, "GREEN")
    assert "NFKC" in html  # the evidence for the suggested person
    assert len(memory_texts(agent, "Ann@example.com")) == 2  # a preview moves nothing


def test_a_move_is_read_by_agno_under_the_new_user_id(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    for n in range(3):
        agno.upsert_user_memory(
            UserMemory(memory_id=f"m{n}", memory=f"Fact {n}.", user_id="ANN", topics=["t"])
        )
    agno.upsert_user_memory(UserMemory(memory_id="x", memory="Other.", user_id="bob"))
    agno_session_with_run(agno, "s1", "ANN", 1_700_000_000, "hello")
    SensitiveFlag.objects.create(
        agent=agent, memory_id="m1", user_id="ANN", kinds=["email"], memory_changed_at=1
    )
    agno.upsert_user_memory(UserMemory(memory_id="t", memory="Trashed.", user_id="ANN"))
    actions.delete_memory(actor=None, agent=agent, user_id="ANN", memory_id="t")
    response = editor_client.post(
        reverse("memories:move_user", args=[agent.slug]),
        {"user_id": "ANN", "to": "ann@example.com", "sessions": "1"},
    )
    assert response.status_code == 302
    assert "user_id=ann%40example.com" in response["Location"]
    moved = agno.get_user_memories(user_id="ann@example.com")
    assert sorted(m.memory_id for m in moved) == ["m0", "m1", "m2"]
    assert moved[0].topics == ["t"]
    assert agno.get_user_memories(user_id="ANN") == []
    assert [m.memory_id for m in agno.get_user_memories(user_id="bob")] == ["x"]
    assert agno.get_session("s1", session_type=None, user_id="ann@example.com") is not None
    runs, _ = agno.get_runs(deserialize=False)
    assert {r["user_id"] for r in runs} == {"ann@example.com"}
    assert SensitiveFlag.objects.get(memory_id="m1").user_id == "ann@example.com"
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEMORIES_MOVED)
    assert (event.user_id, event.details["to"], event.details["memories"]) == (
        "ANN",
        "ann@example.com",
        3,
    )
    assert event.details["sessions"] == 1 and event.details["runs"] == 1
    assert event.details["trashed"] == 1
    # A memory in the trash moved too: restored, agno reads it under the new user_id.
    entry = TrashedMemory.objects.get(memory_id="t")
    assert (entry.user_id, entry.row["user_id"]) == ("ann@example.com", "ann@example.com")
    actions.restore_from_trash(actor=None, agent=agent, trashed_ids=[entry.pk])
    assert agno.get_user_memory("t").user_id == "ann@example.com"
    assert agno.get_user_memories(user_id="ANN") == []


def test_sessions_stay_unless_asked(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="m", memory="Fact.", user_id="ANN"))
    agno_session_with_run(agno, "s1", "ANN", 1_700_000_000, "hello")
    response = editor_client.post(
        reverse("memories:move_user", args=[agent.slug]), {"user_id": "ANN", "to": "ann"}
    )
    assert response.status_code == 302
    assert [m.memory_id for m in agno.get_user_memories(user_id="ann")] == ["m"]
    assert agno.get_session("s1", session_type=None, user_id="ANN") is not None


def test_bad_move_requests_are_refused_and_move_nothing(editor_client, agent):
    make_memory(agent, "ANN", "Fact.")
    url = reverse("memories:move_user", args=[agent.slug])
    cases = [
        ({"user_id": "ANN"}, "Say which user_id the memories should move to."),
        ({"user_id": "ANN", "to": "ANN"}, "already under that user_id"),
        ({"user_id": "ANN", "to": "   "}, "only spaces reaches nobody"),
        ({"to": "ann"}, "missing its user_id"),
        ({"user_id": "ANN", "to": "a\x00b"}, "U+0000"),
        ({"user_id": "nobody", "to": "ann"}, "nobody has nothing to move."),
    ]
    for data, message in cases:
        response = editor_client.post(url, data)
        assert response.status_code in (400, 409), data
        assert message in response.content.decode(), data
    preview = editor_client.get(move_url(agent, user_id="ANN"))
    assert preview.status_code == 400
    assert memory_texts(agent, "ANN") == ["Fact."]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.MEMORIES_MOVED).exists()


def test_a_viewer_sees_the_preview_but_cannot_move(viewer_client, agent):
    make_memory(agent, "ANN", "Fact.")
    preview = viewer_client.get(move_url(agent, user_id="ANN", to="ann"))
    assert preview.status_code == 200 and "<fieldset disabled" in preview.content.decode()
    response = viewer_client.post(
        reverse("memories:move_user", args=[agent.slug]), {"user_id": "ANN", "to": "ann"}
    )
    assert response.status_code == 403
    assert memory_texts(agent, "ANN") == ["Fact."]


def test_a_large_move_runs_as_a_job_in_one_transaction(editor_client, agent, monkeypatch):
    monkeypatch.setattr(scoping, "MOVE_JOB_THRESHOLD", 5)
    make_memories(agent, "ANN", 8)
    response = editor_client.post(
        reverse("memories:move_user", args=[agent.slug]), {"user_id": "ANN", "to": "ann"}
    )
    job = Job.objects.get(kind=Job.Kind.MOVE_USER)
    assert response.status_code == 302 and response["Location"].endswith(f"#job-{job.pk}")
    assert len(memory_texts(agent, "ANN")) == 8  # not yet: the worker moves them
    run_queued_tasks()
    job.refresh_from_db()
    assert (job.state, job.batches, job.result["memories"]) == (Job.State.DONE, 1, 8)
    assert memory_texts(agent, "ANN") == [] and len(memory_texts(agent, "ann")) == 8


def test_memories_without_a_user_id_can_be_moved(editor_client, agent):
    make_memories(agent, None, 2)
    response = editor_client.post(
        reverse("memories:move_user", args=[agent.slug]), {"no_user_id": "1", "to": "ann"}
    )
    assert response.status_code == 302
    assert len(memory_texts(agent, "ann")) == 2
    assert AuditEvent.objects.get(action="memories.moved").details["from_null"] is True


def test_the_memory_tab_links_the_scoping_page(editor_client, agent):
    html = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    assert reverse("memories:scoping", args=[agent.slug]) in html


def test_a_long_list_shows_the_suggestions_first_and_counts_the_rest(
    editor_client, agent, monkeypatch
):
    from memories import scoping_views

    monkeypatch.setattr(scoping_views, "ROWS_SHOWN", 2)
    make_person("zed@example.com")
    for user_id in ("a1", "a2", "a3", "ZED@example.com"):
        make_memory(agent, user_id)
    html = checked_page(editor_client, agent)
    assert "Move these memories to zed@example.com" in html and ">a1</a>" in html
    assert ">a2</a>" not in html
    assert "… and 2 more user_ids without a suggestion (4 in all)." in html


def test_the_report_pages_by_a_hundred_and_refuses_a_row_it_cannot_have(
    editor_client, agent, monkeypatch
):
    from memories import scoping_views

    monkeypatch.setattr(scoping_views, "PAGE_ROWS", 2)
    for user_id in ("a1", "a2", "a3"):
        make_memory(agent, user_id)
    first = checked_page(editor_client, agent)
    assert ">a1</a>" in first and ">a2</a>" in first and ">a3</a>" not in first
    assert "Rows 1–2 of the 3 kept" in first and 'href="?start=2"' in first
    url = reverse("memories:scoping", args=[agent.slug])
    second = editor_client.get(url, {"start": "2"}).content.decode()
    assert ">a3</a>" in second and ">a1</a>" not in second and 'href="?start=0"' in second
    for bad in ("-1", "x", "1000", "٣", "1" * 5000):
        response = editor_client.get(url, {"start": bad})
        assert response.status_code == 400 and "row number" in response.content.decode()
    # A link kept from a longer report shows the last page, not "No scoping problems".
    past = editor_client.get(url, {"start": "998"}).content.decode()
    assert ">a3</a>" in past and "No scoping problems" not in past
