"""The test suite's settings: the development settings, served over plain http on localhost.

Production defaults (HTTPS redirect, secure cookies, hashed static files) follow DEBUG being
off; tests that check production behaviour set its environment in a subprocess instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "True")

# A second real Postgres server stands in for a production runtime: its own data directory and
# socket. Tests point agents at it through RUNTIME_CONNECTIONS (tests/conftest.py); the two
# extra logins are mirrors of it with a role that may only read (a read-only role, a replica).
from studio.embedded_postgres import embedded_database  # noqa: E402
from studio.settings import *  # noqa: E402, F403

_runtime_server = embedded_database(BASE_DIR / ".data" / "runtime-postgres")  # noqa: F405
# MIGRATE False: creating the test database runs no migration there, not even its bookkeeping.
DATABASES["remote"] = {**_runtime_server, "CONN_MAX_AGE": 0, "TEST": {"MIGRATE": False}}  # noqa: F405
for _alias in ("remote_ro", "remote_replica"):
    DATABASES[_alias] = {  # noqa: F405
        **_runtime_server,
        "USER": "ms_reader",
        "CONN_MAX_AGE": 0,
        "TEST": {"MIRROR": "remote"},
    }
