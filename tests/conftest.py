from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from django.apps import apps
from django.db import connection, connections
from django.test import Client

from agents.models import Agent
from memories.runtime.location import location_of
from studio.database_urls import psycopg_connect, sqlalchemy_url
from tests import factories

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


@pytest.fixture(autouse=True)
def fresh_table_presence():
    """Each test finds the runtime's tables afresh: schema names recur across tests (an
    agent's "ai"), and what one test created or dropped is no other's."""
    from memories.runtime import location

    location._tables_seen.clear()
    yield
    location._tables_seen.clear()


def drop_schema(name: str) -> None:
    # Outside Django's test transaction: agno's own connections may have created it.
    with psycopg_connect(connection.settings_dict) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def editor(db):
    return factories.make_staff("edna", "Editor")


@pytest.fixture
def viewer(db):
    return factories.make_staff("victor", "Viewer")


@pytest.fixture
def editor_client(editor) -> Client:
    client = Client()
    client.force_login(editor)
    return client


@pytest.fixture
def viewer_client(viewer) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def csrf_client(editor) -> Client:
    """An editor whose client enforces CSRF like a browser would."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    return client


@pytest.fixture
def agent(db) -> Iterator[Agent]:
    agent = factories.make_agent()
    yield agent
    drop_schema(agent.db_schema)


@pytest.fixture
def make_agent(db) -> Iterator:
    made: list[Agent] = []

    def make(**fields) -> Agent:
        agent = factories.make_agent(**fields)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        drop_schema(agent.db_schema)


@pytest.fixture
def agno_db_for(transactional_db):
    """agno's own PostgresDb on an agent's schema, in the test database. Transactional:
    agno writes on its own connection, and the schema is dropped after the test."""
    from agno.db.postgres import PostgresDb

    handles = []

    def open_db(agent_or_schema) -> PostgresDb:
        # An agent's PostgresDb as its runtime would open it: connection, schema, table names.
        location = location_of(agent_or_schema)
        names = location.names
        db = PostgresDb(
            db_url=sqlalchemy_url(connections[location.alias].settings_dict),
            db_schema=location.schema,
            memory_table=names.memories,
            session_table=names.sessions,
            runs_table=names.runs,
        )
        handles.append(db)
        return db

    yield open_db
    for db in handles:
        db.db_engine.dispose()


READER_ROLE = "ms_reader"


@pytest.fixture(scope="session")
def runtime_server(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """The second real Postgres server (studio/test_settings.py), and the role that may only
    read there, created before anything logs in with it."""
    with django_db_blocker.unblock():
        server = dict(connections["remote"].settings_dict)
        with psycopg_connect(server) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [READER_ROLE])
            if not exists.fetchone():
                conn.execute(f"CREATE ROLE {READER_ROLE} LOGIN")
    yield server
    # After the whole run: not one studio table reached the runtime server, in any schema.
    studio_tables = {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not getattr(model, "is_runtime_table", False)
    }
    with psycopg_connect(server) as conn:
        found = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name = ANY(%s)",
            [sorted(studio_tables)],
        ).fetchall()
    assert studio_tables and not found, f"studio tables on the runtime server: {found}"


@pytest.fixture
def runtime_connections(runtime_server, settings) -> Iterator[dict]:
    """RUNTIME_DATABASES as a deployment would set it, on the second server: "remote" (the
    owner's role) reading lists from "remote_replica" (a login that may only read, standing in
    for a replica), and "remote_ro" (that read-only login as an agent's only connection)."""
    from studio.runtime_databases import RuntimeConnection

    settings.RUNTIME_CONNECTIONS = {
        **settings.RUNTIME_CONNECTIONS,
        "remote": RuntimeConnection("remote", "remote", "remote_replica"),
        "remote_ro": RuntimeConnection("remote_ro", "remote_ro"),
    }
    schemas: list[str] = []
    engines: list = []
    yield {"server": runtime_server, "schemas": schemas, "engines": engines}
    for engine in engines:
        engine.dispose()
    for alias in ("remote", "remote_ro", "remote_replica"):
        connections[alias].close()
    with psycopg_connect(runtime_server) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright, shared by every browser test file."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: `make test` installs it (apt-get install chromium)."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
