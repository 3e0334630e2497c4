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

# The same server as a deployment names it (RUNTIME_DATABASES, RUNTIME_REPLICAS,
# RUNTIME_READ_ONLY), read by the settings' own runtime_databases(): Unix-socket URLs; "socket_ro"
# marked read-only; "lagging" reading its lists from a database of its own that stands in for a
# replica behind the primary. Tests add SOCKET_RUNTIME_CONNECTIONS to RUNTIME_CONNECTIONS.
from urllib.parse import quote  # noqa: E402

from studio.postgres import use_studio_backend  # noqa: E402
from studio.runtime_databases import runtime_databases  # noqa: E402


def _socket_url(database: str) -> str:
    socket = quote(_runtime_server["HOST"], safe="/")
    return f"postgres://{_runtime_server['USER']}@/{database}?host={socket}"


_primary = _socket_url(_runtime_server["NAME"])
_timeout = "&options=-c%20statement_timeout%3D4321"  # an option of the URL's own, kept
_socket_entries, SOCKET_RUNTIME_CONNECTIONS = runtime_databases(
    DATABASES["default"],  # noqa: F405
    databases=f"socket={_primary} socket_ro={_primary}{_timeout} lagging={_primary}",
    replicas=f"lagging={_socket_url('lagging')}",
    read_only="socket_ro",
)
SOCKET_RUNTIME_CONNECTIONS.pop("default")
# A runtime whose server is down: nothing listens on port 9 of this machine.
_dead_entries, DEAD_RUNTIME_CONNECTIONS = runtime_databases(
    DATABASES["default"],  # noqa: F405
    databases="dead=postgres://nobody@127.0.0.1:9/gone?connect_timeout=2",
    replicas="",
    read_only="",
)
DEAD_RUNTIME_CONNECTIONS.pop("default")
_socket_entries.update(_dead_entries)
for _alias, _entry in _socket_entries.items():
    # The primaries are the runtime server's test database; the replica gets one of its own.
    _entry["CONN_MAX_AGE"] = 0
    # (A mirror's NAME only is copied: "dead" keeps its dead address.)
    _entry["TEST"] = {"MIGRATE": False} if _alias == "lagging_replica" else {"MIRROR": "remote"}
    DATABASES[_alias] = _entry  # noqa: F405
# The entries above, on the same backend and options as the settings' own.
use_studio_backend(DATABASES, prepared=DB_PREPARED_STATEMENTS)  # noqa: F405
