"""One Postgres database as every client reaches it: Django, agno's PostgresDb (SQLAlchemy)
and plain psycopg, from the same DATABASE_URL, Unix socket directories included."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import environ
import psycopg

# Connection parameters libpq takes in a URL's query that Django keeps as its own fields.
_FIELDS = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}
# OPTIONS keys that are Django's, not libpq's: never handed to another client.
_DJANGO_ONLY = {
    "isolation_level",
    "server_side_binding",
    "pool",
    "assume_role",
    "cursor_factory",
    "prepare_threshold",
}


def database_settings(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for a libpq URL, with host, port, user and password in their
    own fields even when the URL names them in its query (`postgres://user@/db?host=/dir`)."""
    config = environ.Env.db_url_config(url)
    options = config.setdefault("OPTIONS", {})
    for key, field in _FIELDS.items():
        if key in options:
            config[field] = str(options.pop(key))
    # libpq reads a percent-encoded host in a URL (`postgres://%2Fdir/db`) as the socket path.
    config["HOST"] = unquote(config.get("HOST") or "")
    return config


def libpq_options(settings_dict: dict[str, Any]) -> dict[str, Any]:
    """The OPTIONS libpq understands (sslmode, connect_timeout, ...), as strings."""
    options = settings_dict.get("OPTIONS") or {}
    return {key: str(value) for key, value in options.items() if key not in _DJANGO_ONLY}


def sqlalchemy_url(settings_dict: dict[str, Any]) -> str:
    """A postgresql+psycopg URL for the same database (Unix socket directories included)."""
    from sqlalchemy.engine import URL

    host = settings_dict.get("HOST") or None
    port = int(settings_dict["PORT"]) if settings_dict.get("PORT") else None
    query = libpq_options(settings_dict)
    if host and host.startswith("/"):
        # A socket directory travels as ?host=, and its port (the socket's file name) with it.
        query["host"], host = host, None
        if port is not None:
            query["port"], port = str(port), None
    return URL.create(
        "postgresql+psycopg",
        username=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=host,
        port=port,
        database=settings_dict["NAME"],
        query=query,
    ).render_as_string(hide_password=False)


def psycopg_connect(settings_dict: dict[str, Any]) -> psycopg.Connection:
    """A plain autocommit psycopg connection, outside Django's transactions."""
    return psycopg.connect(
        **libpq_options(settings_dict),
        dbname=settings_dict["NAME"],
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or None,
        port=settings_dict.get("PORT") or None,
        autocommit=True,
    )
