"""The Django database as other clients reach it: agno's PostgresDb (SQLAlchemy) and psycopg."""

from __future__ import annotations

from typing import Any

import psycopg


def sqlalchemy_url(settings_dict: dict[str, Any]) -> str:
    """A postgresql+psycopg URL for the same database (Unix socket directories included)."""
    from sqlalchemy.engine import URL

    host, query = settings_dict.get("HOST") or None, {}
    if host and host.startswith("/"):
        query, host = {"host": host}, None  # a socket directory travels as ?host=
    return URL.create(
        "postgresql+psycopg",
        username=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=host,
        port=int(settings_dict["PORT"]) if settings_dict.get("PORT") else None,
        database=settings_dict["NAME"],
        query=query,
    ).render_as_string(hide_password=False)


def psycopg_connect(settings_dict: dict[str, Any]) -> psycopg.Connection:
    """A plain autocommit psycopg connection, outside Django's transactions."""
    return psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or None,
        port=settings_dict.get("PORT") or None,
        autocommit=True,
    )
