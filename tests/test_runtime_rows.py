"""Rows the runtime wrote that the dashboard never seeded: every page shows them, every
action handles them. Each row is written with agno's own PostgresDb."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest
from agno.db.schemas.memory import UserMemory
from django.urls import reverse

from memories import flags, runtime, tokens
from memories.models import AuditEvent, PruneCandidate, SensitiveFlag
from tests.factories import agno_context_block, memory_url, session_url, shown_version

HTMX = {"HTTP_HX_REQUEST": "true"}
NOW = int(time.time())
LONG_ID = "m-" + "x" * 300


def user_page(agent, user_id: str) -> str:
    return reverse("memories:user", args=[agent.slug]) + "?user_id=" + quote(user_id, safe="")


@pytest.mark.parametrize(
    ("stamp", "note"),
    [
        (NOW * 1000, "stored in milliseconds; the runtime writes seconds"),
        (10**15 * 9, "not a time the runtime writes"),
        (0, "stored as 0: the runtime wrote no time"),
        (-86_400, "stored before 1970"),
    ],
)
def test_odd_times_show_flagged_on_every_page(editor_client, agent, agno_db_for, stamp, note):
    agno_db_for(agent).upsert_user_memory(
        UserMemory(memory="Likes tea.", user_id="ann", created_at=stamp, updated_at=stamp)
    )
    pages = [
        reverse("agents:list"),
        reverse("agents:memory_tab", args=[agent.slug]),
        user_page(agent, "ann"),
        reverse("memories:search", args=[agent.slug]) + "?q=tea",
        reverse("memories:cost", args=[agent.slug]),
    ]
    for url in pages:
        response = editor_client.get(url)
        assert response.status_code == 200, url
    html = editor_client.get(user_page(agent, "ann")).content.decode()
    assert "Likes tea." in html and note in html


def test_a_long_memory_id_is_edited_deleted_pruned_and_scanned_whole(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory_id=LONG_ID, memory="My password is Tulip-2024!", user_id="ann")
    )
    assert flags.scan_next_batch(agent).scanned == 1
    assert SensitiveFlag.objects.get(agent=agent).memory_id == LONG_ID
    preview = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]), {"user_id": "ann"}
    )
    assert preview.status_code == 302
    assert PruneCandidate.objects.get().memory_id == LONG_ID
    memory = runtime.get_memory(agent, "ann", LONG_ID)
    edited = editor_client.post(
        memory_url(agent, LONG_ID, "edit"),
        {"user_id": "ann", "text": "Prefers tea.", "topics": "", "version": memory.version},
        **HTMX,
    )
    assert edited.status_code == 200
    assert agno.get_user_memory(LONG_ID).memory == "Prefers tea."
    assert AuditEvent.objects.get(action="memory.edited").memory_id == LONG_ID
    assert not SensitiveFlag.objects.filter(agent=agent).exists()  # the new text is harmless
    shown = {"user_id": "ann", "version": shown_version(agent, LONG_ID)}
    deleted = editor_client.post(memory_url(agent, LONG_ID, "delete"), shown, **HTMX)
    assert deleted.status_code == 200 and agno.get_user_memory(LONG_ID) is None
    assert AuditEvent.objects.get(action="memory.deleted").memory_id == LONG_ID


def test_a_memory_without_user_id_is_pruned_and_flagged(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory="Card 4111 1111 1111 1111", user_id=None, created_at=NOW - 400 * 86_400)
    )
    state = flags.scan_next_batch(agent)
    assert state.finished_at and SensitiveFlag.objects.get(agent=agent).user_id is None
    preview = editor_client.post(
        reverse("memories:preview_prune", args=[agent.slug]), {"older_than_days": "365"}
    )
    assert preview.status_code == 302
    assert PruneCandidate.objects.get().user_id is None
    page = editor_client.get(preview["Location"])
    assert page.status_code == 200 and "1 memor" in page.content.decode()
    job_id = PruneCandidate.objects.get().job_id
    done = editor_client.post(reverse("memories:prune_batch", args=[agent.slug, job_id]))
    assert done.status_code == 302 and agno.get_user_memories() == []
    assert not SensitiveFlag.objects.filter(agent=agent).exists()


@pytest.mark.parametrize(
    "value",
    [{"city": "Berlin", "pets": ["Rex"]}, ["tea", "coffee"], 42, 3.5, True],
    ids=["dict", "list", "int", "float", "bool"],
)
def test_non_string_memories_count_as_agno_puts_them_in_context(agent, agno_db_for, value):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory="Plain text first.", user_id="ann"))
    agno.upsert_user_memory(UserMemory(memory=value, user_id="ann"))
    ours, counted = tokens.context_block(agent, "ann")
    assert ours == agno_context_block(agent, "ann")
    assert f"\n- {value}" in ours and counted > 0


@pytest.mark.parametrize("memory_id", ["a/b", "../x", "50% off", "ключ/💡", ".", "x?y#z&w=1"])
def test_any_memory_id_travels_through_edit_and_delete(
    editor_client, agent, agno_db_for, memory_id
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id=memory_id, memory="Likes tea.", user_id="ann"))
    page = editor_client.get(user_page(agent, "ann")).content.decode()
    edit_href = memory_url(agent, memory_id, "edit", user_id="ann")
    opened = editor_client.get(edit_href, **HTMX)
    assert opened.status_code == 200 and "Likes tea." in opened.content.decode()
    assert f"memory_id={quote(memory_id, safe='')}" in page  # the row links carry the id whole
    version = runtime.get_memory(agent, "ann", memory_id).version
    saved = editor_client.post(
        memory_url(agent, memory_id, "edit"),
        {"user_id": "ann", "text": "Likes green tea.", "topics": "", "version": version},
        **HTMX,
    )
    assert saved.status_code == 200 and agno.get_user_memory(memory_id).memory == "Likes green tea."
    shown = {"user_id": "ann", "version": shown_version(agent, memory_id)}
    deleted = editor_client.post(memory_url(agent, memory_id, "delete"), shown, **HTMX)
    assert deleted.status_code == 200 and agno.get_user_memory(memory_id) is None


def test_a_session_id_with_a_slash_lists_opens_and_deletes(editor_client, agent, agno_db_for):
    from agno.session import AgentSession

    agno = agno_db_for(agent)
    agno.upsert_session(
        AgentSession(session_id="team/a b%/1", agent_id="a", user_id="ann", created_at=NOW)
    )
    listed = editor_client.get(reverse("memories:sessions", args=[agent.slug]) + "?user_id=ann")
    assert listed.status_code == 200
    assert quote("team/a b%/1", safe="") in listed.content.decode()
    opened = editor_client.get(session_url(agent, "team/a b%/1"))
    assert opened.status_code == 200 and "team/a b%/1" in opened.content.decode()
    deleted = editor_client.post(session_url(agent, "team/a b%/1", "delete_session"), **HTMX)
    assert deleted.status_code == 200
    assert agno.get_session("team/a b%/1") is None


def test_a_workflow_transcript_shows_each_runs_input_and_output(editor_client, agent, agno_db_for):
    from agno.run.workflow import WorkflowRunOutput
    from agno.session import WorkflowSession

    agno = agno_db_for(agent)
    run = WorkflowRunOutput(
        run_id="wf-run-1",
        session_id="wf/1",
        workflow_id="onboarding",
        user_id="ann",
        input="Plan a trip to Lisbon",
        content={"days": 3, "city": "Lisbon"},
        created_at=NOW,
    )
    agno.upsert_session(
        WorkflowSession(session_id="wf/1", workflow_id="onboarding", user_id="ann", created_at=NOW)
    )
    agno.upsert_run(run, session_id="wf/1", user_id="ann", run_index=0)
    assert agno.get_run("wf-run-1") is not None  # agno stored it: a run with no messages
    page = editor_client.get(session_url(agent, "wf/1"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Plan a trip to Lisbon" in html and "&quot;city&quot;: &quot;Lisbon&quot;" in html


def _open_and_post(editor_client, agent, memory_id: str, **changes):
    """Open the inline edit form as a browser would, send it back with `changes` applied."""
    from html import unescape

    memory = runtime.get_memory(agent, "ann", memory_id)
    opened = editor_client.get(memory_url(agent, memory_id, "edit", user_id="ann"), **HTMX)
    html = opened.content.decode()

    def hidden(name: str) -> str:
        found = re.search(rf'name="{name}"(?: value="([^"]*)")?', html)
        return unescape(found.group(1) or "")  # Django leaves out an empty value

    # Every topic box as shown, the empty "new topic" one included.
    shown_topics = [unescape(v) for v in re.findall(r'name="topics" value="([^"]*)"', html)]
    assert shown_topics == [*[t for t in memory.topic_list if t], ""]
    data = {
        "user_id": "ann",
        "text": memory.text.replace("\n", "\r\n"),  # browsers send textarea breaks as CRLF
        "topics": shown_topics,
        "version": hidden("version"),
        "text_shown": hidden("text_shown"),
        "topics_shown": hidden("topics_shown"),
        **changes,
    }
    return editor_client.post(memory_url(agent, memory_id, "edit"), data, **HTMX)


# Legal for agno, beyond what a person may type: a comma, padding, a repeat, 25 more, 100 letters.
STORED_TOPICS = [
    "New York, NY",
    "  padded ",
    "dup",
    "dup",
    *[f"t{n}" for n in range(25)],
    "L" * 100,
]


def test_an_edit_of_the_text_keeps_topics_as_stored(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    topics = [*STORED_TOPICS]
    agno.upsert_user_memory(
        UserMemory(memory_id="m1", memory="Lives in NYC.", user_id="ann", topics=topics)
    )
    saved = _open_and_post(editor_client, agent, "m1", text="Lives in Brooklyn.")
    assert saved.status_code == 200
    back = agno.get_user_memory("m1")
    assert back.memory == "Lives in Brooklyn." and back.topics == topics


def test_an_edit_of_the_topics_keeps_a_long_or_dict_memory_as_stored(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="d1", memory={"city": "Berlin"}, user_id="ann"))
    agno.upsert_user_memory(UserMemory(memory_id="l1", memory="x" * 12_000, user_id="ann"))
    for memory_id, stored in (("d1", {"city": "Berlin"}), ("l1", "x" * 12_000)):
        saved = _open_and_post(editor_client, agent, memory_id, topics=["home", "travel", ""])
        assert saved.status_code == 200, saved.content.decode()[:300]
        back = agno.get_user_memory(memory_id)
        assert back.memory == stored and back.topics == ["home", "travel"]


def test_an_edit_that_changes_nothing_writes_nothing(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory_id="m1", memory="Likes tea.\nAnd cake.", user_id="ann", updated_at=1000)
    )
    assert _open_and_post(editor_client, agent, "m1").status_code == 200
    assert agno.get_user_memory("m1").updated_at == 1000


def test_typed_text_still_meets_the_limits(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Short.", user_id="ann"))
    refused = _open_and_post(editor_client, agent, "m1", text="y" * 10_001)
    assert refused.status_code == 422 and "at most 10,000 characters" in refused.content.decode()
    assert agno.get_user_memory("m1").memory == "Short."


def _store_many_topics(agno) -> None:
    agno.upsert_user_memory(
        UserMemory(memory_id="m1", memory="Lives in NYC.", user_id="ann", topics=STORED_TOPICS)
    )


def test_removing_one_topic_keeps_every_other_stored_topic_verbatim(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    _store_many_topics(agno)
    kept = [t for t in STORED_TOPICS if t != "t3"]
    saved = _open_and_post(editor_client, agent, "m1", topics=[*kept, ""])
    assert saved.status_code == 200, saved.content.decode()[:300]
    back = agno.get_user_memory("m1")
    assert back.memory == "Lives in NYC." and back.topics == kept
    renamed = _open_and_post(editor_client, agent, "m1", topics=[*kept[:-1], "  Long  Island ", ""])
    assert renamed.status_code == 200
    assert agno.get_user_memory("m1").topics == [*kept[:-1], "Long Island"]


def test_a_stored_topic_list_cannot_grow_and_typed_topics_meet_the_limits(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    _store_many_topics(agno)
    grown = _open_and_post(editor_client, agent, "m1", topics=[*STORED_TOPICS, "extra"])
    assert grown.status_code == 422
    assert f"At most {len(STORED_TOPICS)} topics per memory" in grown.content.decode()
    swapped = [t for t in STORED_TOPICS if t != "t3"] + ["y" * 65]
    too_long = _open_and_post(editor_client, agent, "m1", topics=swapped)
    assert too_long.status_code == 422 and "at most 64 letters" in too_long.content.decode()
    assert agno.get_user_memory("m1").topics == STORED_TOPICS


def test_a_forged_topic_key_does_not_let_a_long_topic_pass_as_stored(
    editor_client, agent, agno_db_for
):
    import hashlib

    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="m1", memory="Short.", user_id="ann"))
    long_topic = "z" * 100
    forged = hashlib.sha256(long_topic.encode()).hexdigest()[:16]
    refused = _open_and_post(editor_client, agent, "m1", topics=[long_topic], topics_shown=forged)
    assert refused.status_code == 422 and "at most 64 letters" in refused.content.decode()
    assert agno.get_user_memory("m1").topics is None


def test_a_text_edit_keeps_a_bare_string_topic_as_stored(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory_id="m1", memory="Flies in May.", user_id="ann", topics="travel")
    )
    saved = _open_and_post(editor_client, agent, "m1", text="Flies in June.")
    assert saved.status_code == 200
    back = agno.get_user_memory("m1")
    assert back.memory == "Flies in June." and back.topics == "travel"
