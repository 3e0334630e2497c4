"""Forgetting a person: what goes is shown first, a typed confirmation, agno sees nothing after."""

from __future__ import annotations

import time

import pytest
from agno.db.schemas.memory import UserMemory
from agno.models.message import Message
from agno.run.agent import RunOutput
from agno.session import AgentSession
from django.core.management import call_command
from django.urls import reverse

from memories.models import AuditEvent
from tests.factories import session_url

pytestmark = pytest.mark.django_db(transaction=True)


def seed(agno, user_id: str, memories: int, sessions: int) -> None:
    now = int(time.time())
    for n in range(memories):
        agno.upsert_user_memory(UserMemory(memory=f"Fact {n} of {user_id}.", user_id=user_id))
    for n in range(sessions):
        session_id = f"{user_id}-s{n}"
        agno.upsert_session(
            AgentSession(session_id=session_id, agent_id="a", user_id=user_id, created_at=now)
        )
        agno.upsert_run(
            RunOutput(
                run_id=f"{session_id}-r",
                session_id=session_id,
                agent_id="a",
                user_id=user_id,
                created_at=now,
                messages=[Message(role="user", content="hi")],
            ),
            session_id=session_id,
            user_id=user_id,
            run_index=0,
        )


def test_it_previews_then_forgets_a_user_in_every_agent(editor_client, make_agent, agno_db_for):
    support, sales = make_agent(slug="support"), make_agent(slug="sales")
    seed(agno_db_for(support), "ann", memories=3, sessions=2)
    seed(agno_db_for(sales), "ann", memories=1, sessions=1)
    seed(agno_db_for(support), "bob", memories=2, sessions=1)
    url = reverse("memories:forget")
    preview = editor_client.get(url, {"user_id": "ann"})
    html = preview.content.decode()
    assert preview.status_code == 200
    assert '<td class="num">3</td><td class="num">2</td><td class="num">2</td>' in html
    wrong = editor_client.post(url, {"user_id": "ann", "confirmation": "an"})
    assert wrong.status_code == 422 and "Type the user_id exactly" in wrong.content.decode()
    assert len(agno_db_for(support).get_user_memories(user_id="ann")) == 3
    done = editor_client.post(url, {"user_id": "ann", "confirmation": "ann"})
    assert done.status_code == 302
    for agent in (support, sales):
        agno = agno_db_for(agent)
        assert agno.get_user_memories(user_id="ann") == []
        assert agno.get_sessions(user_id="ann") == []
        assert agno.get_runs(user_id="ann") == []
    bob = agno_db_for(support)
    assert (
        len(bob.get_user_memories(user_id="bob")) == 2 and len(bob.get_sessions(user_id="bob")) == 1
    )
    events = AuditEvent.objects.filter(action="user.forgotten").order_by("agent_slug")
    assert [
        (e.agent_slug, e.details["memories"], e.details["sessions"], e.details["runs"])
        for e in events
    ] == [
        ("sales", 1, 1, 1),
        ("support", 3, 2, 2),
    ]


def test_it_can_forget_in_one_agent_only(editor_client, make_agent, agno_db_for):
    support, sales = make_agent(slug="support"), make_agent(slug="sales")
    seed(agno_db_for(support), "ann", memories=1, sessions=0)
    seed(agno_db_for(sales), "ann", memories=1, sessions=0)
    editor_client.post(
        reverse("memories:forget"), {"user_id": "ann", "agent": "sales", "confirmation": "ann"}
    )
    assert agno_db_for(sales).get_user_memories(user_id="ann") == []
    assert len(agno_db_for(support).get_user_memories(user_id="ann")) == 1


def test_a_viewer_cannot_forget(viewer_client, agent, agno_db_for):
    seed(agno_db_for(agent), "ann", memories=1, sessions=0)
    response = viewer_client.post(
        reverse("memories:forget"), {"user_id": "ann", "confirmation": "ann"}
    )
    assert response.status_code == 403
    assert len(agno_db_for(agent).get_user_memories(user_id="ann")) == 1


def test_the_command_shows_counts_then_erases_with_yes(make_agent, agno_db_for, capsys):
    agent = make_agent(slug="support")
    seed(agno_db_for(agent), "a/b 50%", memories=2, sessions=1)
    call_command("forget_user", "a/b 50%")
    assert "support: 2 memories, 1 sessions, 1 runs" in capsys.readouterr().out
    assert len(agno_db_for(agent).get_user_memories(user_id="a/b 50%")) == 2
    call_command("forget_user", "a/b 50%", "--yes")
    assert agno_db_for(agent).get_user_memories(user_id="a/b 50%") == []
    assert AuditEvent.objects.get().actor_name == "system"  # a command has no person


def test_deleting_a_session_takes_its_runs(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    seed(agno, "ann", memories=1, sessions=2)
    response = editor_client.post(
        session_url(agent, "ann-s0", "delete_session"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "1 run" in response["HX-Trigger"]
    assert [s.session_id for s in agno.get_sessions(user_id="ann")] == ["ann-s1"]
    assert [r.run_id for r in agno.get_runs(user_id="ann")] == ["ann-s1-r"]
    assert len(agno.get_user_memories(user_id="ann")) == 1  # memories are another layer
    assert editor_client.post(session_url(agent, "ann-s0", "delete_session")).status_code == 404
