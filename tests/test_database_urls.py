"""A DATABASE_URL naming a Unix socket reaches the same database from Django, from agno's
PostgresDb and from plain psycopg."""

from __future__ import annotations

import pytest
from django.db import connection

from studio.database_urls import database_settings, psycopg_connect, sqlalchemy_url
from tests.conftest import drop_schema
from tests.factories import unique_schema


def _socket_url(query: str = "") -> str:
    """The test database by the embedded server's socket directory, as libpq accepts it."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}@/{s['NAME']}?host={s['HOST']}{query}"


def test_a_socket_directory_in_the_query_becomes_the_host(db):
    parsed = database_settings("postgres://ann:pw@/studio?host=/run/pg&port=5433&sslmode=disable")
    assert (parsed["HOST"], parsed["PORT"], parsed["USER"], parsed["PASSWORD"]) == (
        "/run/pg",
        "5433",
        "ann",
        "pw",
    )
    assert parsed["NAME"] == "studio" and parsed["OPTIONS"] == {"sslmode": "disable"}


def test_a_percent_encoded_socket_host_is_decoded():
    parsed = database_settings("postgres://ann@%2Frun%2Fpg/studio")
    assert parsed["HOST"] == "/run/pg" and parsed["NAME"] == "studio"


def test_a_tcp_url_is_unchanged():
    parsed = database_settings("postgres://ann:pw@db.example:6432/studio")
    assert (parsed["HOST"], parsed["PORT"], parsed["NAME"]) == ("db.example", 6432, "studio")


def test_psycopg_reaches_the_database_through_the_socket_url(db):
    settings_dict = database_settings(_socket_url("&connect_timeout=3"))
    with psycopg_connect(settings_dict) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        socket_dir = conn.info.host
    assert name == connection.settings_dict["NAME"]
    assert socket_dir == connection.settings_dict["HOST"]


def test_the_sqlalchemy_url_keeps_the_socket_and_libpq_options():
    url = sqlalchemy_url(database_settings("postgres://ann@/studio?host=/run/pg&sslmode=disable"))
    assert url.startswith("postgresql+psycopg://ann@/studio?")
    assert "host=%2Frun%2Fpg" in url and "sslmode=disable" in url


@pytest.mark.django_db(transaction=True)
def test_agnos_postgres_db_writes_through_the_socket_url():
    from agno.db.postgres import PostgresDb
    from agno.db.schemas.memory import UserMemory

    schema = unique_schema("sock")
    agno = PostgresDb(db_url=sqlalchemy_url(database_settings(_socket_url())), db_schema=schema)
    try:
        agno.upsert_user_memory(UserMemory(memory="Likes tea.", user_id="ann", memory_id="m-1"))
        with psycopg_connect(connection.settings_dict) as conn:
            stored = conn.execute(
                f'SELECT user_id, memory FROM "{schema}".agno_memories WHERE memory_id = %s',
                ["m-1"],
            ).fetchone()
        assert stored == ("ann", "Likes tea.")
    finally:
        agno.db_engine.dispose()
        drop_schema(schema)
