"""The load run's own tools: the operator client logs in and writes like a browser, and the
CPU split adds up."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from memories import runtime
from studio.devtools.cpu_clock import cpu_per_request, cpu_snapshot
from studio.devtools.operator_client import OperatorClient
from tests.factories import PASSWORD


@pytest.mark.django_db(transaction=True)
def test_the_operator_client_logs_in_and_adds_a_memory(live_server, editor, agent):
    client = OperatorClient(live_server.url)
    assert client.get("/login/").status_code == 200
    login = client.post(
        "/login/",
        data={
            "username": editor.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert login.status_code == 302 and "sessionid" in client.cookies
    added = client.post(
        reverse("memories:add", args=[agent.slug]),
        data={"user_id": "ada@example.com", "text": "Prefers tea.", "topics": "drinks"},
        headers={"HX-Request": "true", "X-CSRFToken": client.cookies["csrftoken"]},
    )
    assert added.status_code == 200 and "Prefers tea." in added.text
    page = runtime.user_memories(agent, "ada@example.com")
    assert [memory.text for memory in page.items] == ["Prefers tea."]
    client.close()


@pytest.mark.django_db(transaction=True)
def test_the_operator_client_without_its_csrf_token_is_refused(live_server, editor, agent):
    client = OperatorClient(live_server.url)
    client.get("/login/")
    refused = client.post("/login/", data={"username": editor.username, "password": PASSWORD})
    assert refused.status_code == 403 and "sessionid" not in client.cookies


def test_the_cpu_split_adds_up_to_the_machine():
    before = {"gunicorn": 100, "clients_and_agno_writer": 50, "machine": 400}
    after = {"gunicorn": 700, "clients_and_agno_writer": 150, "machine": 1400}
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    split = cpu_per_request(before, after, requests=100)
    assert split == {
        "gunicorn": round(600 * tick_ms / 100, 1),
        "clients_and_agno_writer": round(100 * tick_ms / 100, 1),
        "postgres_and_the_rest": round(300 * tick_ms / 100, 1),
    }
    assert cpu_per_request(None, after, requests=100) is None
    assert cpu_per_request(before, after, requests=0) is None


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads Linux's /proc")
def test_a_snapshot_counts_this_process_and_the_machine():
    snapshot = cpu_snapshot(os.getpid())
    assert snapshot is not None
    assert snapshot["machine"] >= snapshot["clients_and_agno_writer"] >= 0
    assert snapshot["gunicorn"] >= snapshot["clients_and_agno_writer"]  # itself, children too
