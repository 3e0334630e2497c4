"""A user's sessions and a session's transcript, from rows agno itself wrote."""

from __future__ import annotations

import time

import pytest
from agno.models.message import Message
from agno.run.agent import RunOutput
from agno.session import AgentSession
from agno.session.summary import SessionSummary
from django.urls import reverse

from tests.factories import session_url

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


def write_conversation(
    agno, session_id: str, user_id: str, turns: list[tuple[str, str]], start: int
) -> None:
    agno.upsert_session(
        AgentSession(
            session_id=session_id,
            agent_id="support",
            user_id=user_id,
            created_at=start,
            summary=SessionSummary(summary=f"Summary of {session_id}."),
        )
    )
    for index, (question, answer) in enumerate(turns):
        agno.upsert_run(
            RunOutput(
                run_id=f"{session_id}-r{index}",
                session_id=session_id,
                agent_id="support",
                user_id=user_id,
                content=answer,
                created_at=start + index,
                messages=[
                    Message(role="user", content=question),
                    Message(role="assistant", content=answer),
                ],
            ),
            session_id=session_id,
            user_id=user_id,
            run_index=index,
        )


def test_it_lists_a_users_sessions_newest_first(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    now = int(time.time())
    write_conversation(agno, "old", "ann", [("hi", "hello")], now - 86_400)
    write_conversation(agno, "new", "ann", [("a", "b"), ("c", "d")], now - 60)
    write_conversation(agno, "bobs", "bob", [("x", "y")], now)
    url = reverse("memories:sessions", args=[agent.slug])
    response = editor_client.get(url, {"user_id": "ann"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index(">new<") < html.index(">old<") and "bobs" not in html
    assert "Summary of new." in html
    partial = editor_client.get(url, {"user_id": "ann"}, HTTP_HX_TARGET="session-list", **HTMX)
    assert partial.content.decode().lstrip().startswith('<div id="session-list">')
    assert editor_client.get(url, {"user_id": "ann", "after": "junk"}).status_code == 400


def test_the_transcript_shows_each_runs_messages(editor_client, agent, agno_db_for):
    write_conversation(
        agno_db_for(agent),
        "s-1",
        "ann",
        [("When is renewal?", "In <b>November</b>.")],
        int(time.time()),
    )
    response = editor_client.get(session_url(agent, "s-1"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "When is renewal?" in html
    assert "In &lt;b&gt;November&lt;/b&gt;." in html  # model output is text, never markup
    assert editor_client.get(session_url(agent, "nope")).status_code == 404


def test_the_transcript_shows_messages_agno_stored_without_a_time_or_as_parts(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    now = int(time.time())
    agno.upsert_session(
        AgentSession(session_id="s-raw", agent_id="a", user_id="ann", created_at=now)
    )
    # A run as a dict, which upsert_run takes as it is: messages with a missing or odd time,
    # content as a list of parts, and a tool call.
    agno.upsert_run(
        {
            "run_id": "raw-1",
            "session_id": "s-raw",
            "created_at": now,
            "messages": [
                {"role": "user", "content": "No time on me."},
                {"role": "user", "content": "Odd time.", "created_at": "notanint"},
                {"role": "user", "content": [{"type": "text", "text": "First part."}]},
                {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]},
            ],
        },
        session_id="s-raw",
        user_id="ann",
        run_index=0,
    )
    for headers in ({}, HTMX):
        response = editor_client.get(session_url(agent, "s-raw"), **headers)
        html = response.content.decode()
        assert response.status_code == 200
        assert "No time on me." in html and "Odd time." in html
        assert "not a time the runtime writes" in html  # "notanint", shown and flagged
        assert "First part." in html and "{&#x27;type&#x27;" not in html  # no Python repr
        assert "&quot;function&quot;: {" in html  # the tool call as JSON
