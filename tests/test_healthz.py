"""`/healthz` tells a probe whether each database answers, without a login or a secret."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.urls import reverse

PROBE = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(json.dumps({"status": response.status_code, "body": response.json(),
                  "cache": response.get("Cache-Control", "")}))
"""


def _dead_port() -> int:
    # Bound and never listened on: a connection there is refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _probe(tmp_path: Path, *, studio_url: str, runtime_databases: str = "") -> dict:
    """/healthz answered by a fresh process in production mode against the given databases."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "PYTHONPATH": str(settings.BASE_DIR),
        "RUNTIME_DATABASES": runtime_databases,
        "DEBUG": "False",
        "SECRET_KEY": "probe-" + "k" * 60,
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": studio_url,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _test_database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@/{s['NAME']}?host={s['HOST']}"


def test_it_answers_json_without_a_login(client, db):
    response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert body["status"] == "ok"
    assert body["studio_database"]["up"] is True
    assert isinstance(body["studio_database"]["latency_ms"], float)
    assert body["runtime_connections"] == {}
    assert "no-store" in response["Cache-Control"]
    assert client.head(reverse("healthz")).status_code == 200  # what load balancers send
    assert client.post(reverse("healthz")).status_code == 405


def test_it_names_no_secret(client, db):
    text = client.get(reverse("healthz")).content.decode()
    s = connection.settings_dict
    for secret in (settings.SECRET_KEY, s["HOST"], s["NAME"], s["USER"]):
        assert secret not in text


def test_a_runtime_connection_that_is_down_is_reported_and_the_studio_is_still_ok(tmp_path, db):
    port = _dead_port()
    dead = f"runtime_dead=postgres://nobody@127.0.0.1:{port}/gone?connect_timeout=2"
    answer = _probe(tmp_path, studio_url=_test_database_url(), runtime_databases=dead)
    assert answer["status"] == 200, answer
    assert answer["body"]["status"] == "ok"
    assert answer["body"]["studio_database"]["up"] is True
    assert answer["body"]["runtime_connections"]["runtime_dead"]["up"] is False
    assert "no-store" in answer["cache"]


def test_it_answers_503_when_the_studio_database_is_down(tmp_path, db):
    answer = _probe(tmp_path, studio_url=f"postgres://nobody@127.0.0.1:{_dead_port()}/gone")
    assert answer["status"] == 503
    assert answer["body"]["status"] == "down"
    assert answer["body"]["studio_database"]["up"] is False
    assert answer["body"]["studio_database"]["latency_ms"] >= 0
