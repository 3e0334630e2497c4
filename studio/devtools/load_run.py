"""A bounded load run on loopback: operators under gunicorn while agno writes the same users.

50 operator clients list, add, edit and delete memories through the real dashboard served by
gunicorn on 127.0.0.1, while an agno PostgresDb writer upserts memories for the same users.
Every acknowledged write is checked afterwards. It stops by itself (time and request caps)
and removes its scratch agent, schema, login and registered people: only what it created.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection

from agents.memory_settings import MemorySettings
from agents.models import Agent
from memories import runtime
from memories.models import EndUser, Memory
from memories.runtime.schema import ensure_runtime_tables
from studio.database_urls import sqlalchemy_url
from studio.devtools.cpu_clock import cpu_per_request, cpu_snapshot
from studio.devtools.operator_client import OperatorClient
from studio.devtools.scratch import delete_scratch_agent, scratch_login, scratch_schema

MEMORY_ID = re.compile(r'data-memory-id="([^"]+)"')
VERSION = re.compile(r'name="version" value="([^"]+)"')
HOST = "127.0.0.1"


@dataclass
class Ledger:
    """What the server acknowledged, to be checked against the database afterwards."""

    expected_text: dict[str, str] = field(default_factory=dict)  # memory_id -> text
    owner: dict[str, str] = field(default_factory=dict)  # memory_id -> user_id
    deleted: set[str] = field(default_factory=set)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, action: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[action].append(seconds)
            self.statuses[status] += 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _database_url() -> str:
    return sqlalchemy_url(connection.settings_dict)


class Operator(threading.Thread):
    def __init__(
        self,
        base: str,
        agent: Agent,
        username: str,
        password: str,
        users: list[str],
        ledger: Ledger,
        deadline: float,
        max_requests: int,
        seed: int,
    ) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.client = OperatorClient(base, timeout=30)
        self.agent, self.users, self.ledger = agent, users, ledger
        self.deadline, self.max_requests = deadline, max_requests
        self.username, self.password = username, password
        self.random = random.Random(seed)
        self.mine: list[tuple[str, str]] = []  # (memory_id, user_id) this operator created
        self.requests = 0

    def call(self, action: str, method: str, url: str, **kwargs: Any) -> Any:
        start = time.perf_counter()
        headers = kwargs.pop("headers", {})
        if method == "POST":
            headers["X-CSRFToken"] = self.client.cookies.get("csrftoken", "")
        try:
            response = self.client.request(method, url, headers=headers, **kwargs)
        except Exception as error:  # a refused or dropped connection counts as a failure
            self.ledger.note(action, 599, time.perf_counter() - start)
            with self.ledger.lock:
                self.ledger.errors.append(f"{action}: {error!r}")
            return None
        self.requests += 1
        self.ledger.note(action, response.status_code, time.perf_counter() - start)
        return response

    def login(self) -> None:
        self.client.get("/login/")
        token = self.client.cookies.get("csrftoken", "")
        self.client.post(
            "/login/",
            data={
                "username": self.username,
                "password": self.password,
                "csrfmiddlewaretoken": token,
            },
        )

    def run(self) -> None:
        slug = self.agent.slug
        htmx = {"HX-Request": "true"}
        while time.monotonic() < self.deadline and self.requests < self.max_requests:
            user_id = self.random.choice(self.users)
            roll = self.random.random()
            if roll < 0.30 or not self.mine:
                token = uuid.uuid4().hex[:12]
                text = f"Load fact {token} for {user_id}."
                # Sent from the user's page as it first opens, which htmx names in each request.
                shown = f"{self.base}/agents/{slug}/user/?{urlencode({'user_id': user_id})}"
                r = self.call(
                    "add",
                    "POST",
                    f"/agents/{slug}/user/memories/add/",
                    data={"user_id": user_id, "text": text, "topics": "load"},
                    headers={**htmx, "HX-Current-URL": shown},
                )
                if r is not None and r.status_code == 200:
                    found = self.call(
                        "list",
                        "GET",
                        f"/agents/{slug}/user/",
                        params={"user_id": user_id, "q": token},
                        headers={**htmx, "HX-Target": "memory-list"},
                    )
                    ids = MEMORY_ID.findall(found.text) if found is not None else []
                    if len(ids) == 1:
                        with self.ledger.lock:
                            self.ledger.expected_text[ids[0]] = text
                            self.ledger.owner[ids[0]] = user_id
                        self.mine.append((ids[0], user_id))
            elif roll < 0.55:
                memory_id, owner = self.random.choice(self.mine)
                # Ids travel in the query string, as the pages' links carry them.
                row = {"user_id": owner, "memory_id": memory_id}
                form = self.call(
                    "edit-form",
                    "GET",
                    f"/agents/{slug}/memory/edit/",
                    params=row,
                    headers=dict(htmx),
                )
                match = VERSION.search(form.text) if form is not None else None
                if match:
                    text = f"Edited {uuid.uuid4().hex[:12]} for {owner}."
                    r = self.call(
                        "edit",
                        "POST",
                        f"/agents/{slug}/memory/edit/",
                        params=row,
                        data={
                            "user_id": owner,
                            "text": text,
                            "topics": ["load", "edited"],
                            "version": match.group(1),
                        },
                        headers=dict(htmx),
                    )
                    if r is not None and r.status_code == 200:
                        with self.ledger.lock:
                            self.ledger.expected_text[memory_id] = text
            elif roll < 0.70:
                memory_id, owner = self.mine.pop(self.random.randrange(len(self.mine)))
                row = {"user_id": owner, "memory_id": memory_id}
                # The row as the page shows it: its Delete button carries the version.
                shown = self.call(
                    "row", "GET", f"/agents/{slug}/memory/", params=row, headers=dict(htmx)
                )
                match = VERSION.search(shown.text) if shown is not None else None
                r = self.call(
                    "delete",
                    "POST",
                    f"/agents/{slug}/memory/delete/",
                    params=row,
                    data={"user_id": owner, "version": match.group(1) if match else ""},
                    headers=dict(htmx),
                )
                if r is not None and r.status_code == 200:
                    with self.ledger.lock:
                        self.ledger.deleted.add(memory_id)
            elif roll < 0.85:
                self.call("list", "GET", f"/agents/{slug}/user/", params={"user_id": user_id})
            else:
                self.call(
                    "users", "GET", f"/agents/{slug}/", headers={**htmx, "HX-Target": "users"}
                )
        self.client.close()


class AgnoWriter(threading.Thread):
    """The runtime itself, upserting memories for the same users as the operators."""

    def __init__(self, schema: str, users: list[str], deadline: float) -> None:
        super().__init__(daemon=True)
        self.schema, self.users, self.deadline = schema, users, deadline
        self.expected: dict[str, str] = {}
        self.upserts = 0
        self.failures: list[str] = []

    def run(self) -> None:
        from agno.db.postgres import PostgresDb
        from agno.db.schemas.memory import UserMemory

        db = PostgresDb(db_url=_database_url(), db_schema=self.schema)
        ids = [str(uuid.uuid4()) for _ in range(40)]
        rng = random.Random(7)
        while time.monotonic() < self.deadline:
            memory_id, user_id = rng.choice(ids), rng.choice(self.users)
            text = f"Runtime fact {uuid.uuid4().hex[:8]}."
            try:
                db.upsert_user_memory(
                    UserMemory(
                        memory_id=memory_id, memory=text, user_id=user_id, topics=["runtime"]
                    )
                )
                self.expected[memory_id] = text
                self.upserts += 1
            except Exception as error:
                self.failures.append(repr(error))
            time.sleep(0.005)
        db.db_engine.dispose()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def load_run(
    *, clients: int, seconds: int, workers: int, threads: int = 4, max_requests: int, out: Any
) -> dict:
    password = secrets.token_urlsafe(16)
    # Login, schema, agent and people all get fresh names: the run removes only what it made.
    with (
        scratch_login("load", password=password, role="Editor") as operator,
        scratch_schema("load") as schema,
    ):
        suffix = schema.removeprefix("load_")
        users = [f"load-user-{n}-{suffix}@example.com" for n in range(20)]
        agent = Agent.objects.create(
            name=f"Load run {suffix}",
            slug=f"load-{suffix}",
            db_schema=schema,
            agno_settings=MemorySettings(session_storage=True, user_memories=True).to_json(),
        )
        registered: list[int] = []
        try:
            for user_id in users:  # registered, so every list page has someone to show at once
                registered.append(EndUser.objects.create(email=user_id).pk)
            ensure_runtime_tables(schema)
            ledger, writer, elapsed, lost, cpu = _serve_and_load(
                agent,
                operator.username,
                password,
                users,
                clients=clients,
                seconds=seconds,
                workers=workers,
                threads=threads,
                max_requests=max_requests,
            )
        finally:
            delete_scratch_agent(agent)  # and the recounts the operators' writes queued
            EndUser.objects.filter(pk__in=registered).delete()
    all_latencies = [s for values in ledger.latencies.values() for s in values]
    report = {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "gunicorn_workers": workers,
        "gunicorn_threads": threads,
        "requests": len(all_latencies),
        "requests_per_second": round(len(all_latencies) / elapsed, 1) if elapsed else 0,
        "status_counts": dict(sorted(ledger.statuses.items())),
        "server_errors_5xx": sum(n for status, n in ledger.statuses.items() if status >= 500),
        "p50_ms": round(percentile(all_latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(all_latencies, 0.95) * 1000, 1),
        # CPU milliseconds per request over the timed window, by who spent them.
        "cpu_ms_per_request": cpu,
        "by_action": {
            action: {
                "requests": len(values),
                "p50_ms": round(percentile(values, 0.5) * 1000, 1),
                "p95_ms": round(percentile(values, 0.95) * 1000, 1),
                "mean_ms": round(statistics.fmean(values) * 1000, 1),
            }
            for action, values in sorted(ledger.latencies.items())
        },
        "acknowledged_writes_checked": len(ledger.expected_text) + len(ledger.deleted),
        "agno_upserts": writer.upserts,
        "agno_failures": len(writer.failures),
        "lost_updates": len(lost),
        "lost_examples": lost[:5],
        "client_errors": ledger.errors[:5],
    }
    return report


def _serve_and_load(
    agent: Agent,
    username: str,
    password: str,
    users: list[str],
    *,
    clients: int,
    seconds: int,
    workers: int,
    threads: int,
    max_requests: int,
) -> tuple[Ledger, AgnoWriter, float, list[str], dict[str, float] | None]:
    """Gunicorn on loopback, the operators and agno's writer until the deadline; then the check."""
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": HOST,
        "SECURE_COOKIES": "False",
        "SECURE_SSL_REDIRECT": "False",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_ROOT": str(Path(settings.BASE_DIR) / ".data" / "load-run-static"),
        "CONN_MAX_AGE": "60",
    }
    if not os.environ.get("DATABASE_URL"):
        env["EMBEDDED_POSTGRES_DIR"] = str(settings.EMBEDDED_POSTGRES_DIR)
    # Production serves hashed static files from collectstatic's manifest, so collect them first.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
    )
    log = open(Path(settings.BASE_DIR) / ".data" / "load-run-gunicorn.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "studio.wsgi",
            "-b",
            f"{HOST}:{port}",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "60",
            # Connections stay open while the operators wait for each other's logins (gunicorn
            # closes idle ones after 2 s, and a request racing that close is reset).
            "--keep-alive",
            "120",
            "--graceful-timeout",
            "5",
            # A listening socket per worker: the kernel spreads new connections between
            # them, where a shared one let whichever worker woke first take most of the 50
            # kept-alive clients (34 to 16), and those waited twice as long.
            "--reuse-port",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ledger = Ledger()
    try:
        _wait_for(f"http://{HOST}:{port}/login/", server)
        operators = [
            Operator(
                f"http://{HOST}:{port}",
                agent,
                username,
                password,
                users,
                ledger,
                0.0,  # set below, once everyone is logged in
                max_requests,
                seed=n,
            )
            for n in range(clients)
        ]
        # Everyone logs in before the clock starts: 50 password checks at once (PBKDF2, about
        # half a CPU-second each) took most of the first 15 seconds of the run, and the run
        # measures operators at work, not a login storm (axes and the login page have tests).
        logins = [threading.Thread(target=op.login) for op in operators]
        for thread in logins:
            thread.start()
        for thread in logins:
            thread.join(timeout=120)
        deadline = time.monotonic() + seconds
        for op in operators:
            op.deadline = deadline
        writer = AgnoWriter(agent.db_schema, users, deadline)
        started = time.monotonic()
        cpu_before = cpu_snapshot(server.pid)
        writer.start()
        for op in operators:
            op.start()
        for op in operators:
            op.join(timeout=seconds + 60)
        writer.join(timeout=60)
        elapsed = time.monotonic() - started
        served = sum(len(values) for values in ledger.latencies.values())
        cpu = cpu_per_request(cpu_before, cpu_snapshot(server.pid), served)
        lost = _check_ledger(agent, ledger, writer)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return ledger, writer, elapsed, lost, cpu


def _wait_for(url: str, server: subprocess.Popen) -> None:
    import httpx

    for _ in range(150):
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited early; see .data/load-run-gunicorn.log")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 30 seconds")


def _check_ledger(agent: Agent, ledger: Ledger, writer: AgnoWriter) -> list[str]:
    """Every write the server acknowledged must be what the database holds now."""
    with runtime.in_agent_schema(agent):
        rows = {m.memory_id: m for m in Memory.objects.all()}
    lost = []
    for memory_id, text in ledger.expected_text.items():
        if memory_id in ledger.deleted:
            if memory_id in rows:
                lost.append(f"deleted memory {memory_id} is still there")
        elif memory_id not in rows:
            lost.append(f"memory {memory_id} is missing")
        elif rows[memory_id].text != text:
            lost.append(f"memory {memory_id} holds an older text")
    for memory_id, text in writer.expected.items():
        if memory_id not in rows or rows[memory_id].text != text:
            lost.append(f"agno's memory {memory_id} lost its last upsert")
    return lost
