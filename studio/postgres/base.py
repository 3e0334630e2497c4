"""Django's Postgres backend with two changes for persistent connections.

- The health check costs no round trip on a connection the server answered moments ago
  and has said nothing to since. With CONN_HEALTH_CHECKS, Django sends `SELECT 1` on every
  reused connection before each request's first query: about a tenth of a request's wall
  time under load here. A server that ends a connection (a restart, pg_terminate_backend,
  an idle timeout) sends its FATAL message and closes the socket, so the socket has
  something to read; only a connection lost silently (a NAT or balancer forgetting it, a
  failover to another host) shows nothing, and those happen to connections left idle, so
  one not answered for RECENT_SECONDS is asked as before.
- A prepared statement whose table changed shape under it (a column's type altered or the
  table recreated, by the runtime's own migrations, say) fails with "cached plan must not
  change result type" until the connection forgets it. Outside a transaction the cursor
  forgets the connection's prepared statements and runs the statement again; inside one,
  the rollback that follows makes psycopg forget them.
- A `json` value is read with studio.stored_json.loads, which never raises on depth (psycopg's
  json.loads refuses a value nested ~900 deep). `jsonb` stays text, as Django has it: its
  JSONFields decode it, the runtime's with the same loads (StoredJSONField).
"""

from __future__ import annotations

import functools
import select
import time
from typing import Any

from django.db.backends.postgresql import base
from psycopg import Connection, errors, pq
from psycopg.adapt import AdaptersMap
from psycopg.types.json import JsonBinaryLoader, JsonLoader

from studio import stored_json

# A connection the server answered this recently, with nothing since, is taken as alive.
RECENT_SECONDS = 10.0


def _note_answer(connection: Connection) -> None:
    connection._studio_answered_at = time.monotonic()  # type: ignore[attr-defined]


def _result_type_changed(error: errors.FeatureNotSupported) -> bool:
    # By where Postgres raised it, not by its message, which follows the server's language.
    return error.diag.source_function == "RevalidateCachedQuery"


class StoredJsonLoader(JsonLoader):
    _loads = staticmethod(stored_json.loads)


class StoredJsonBinaryLoader(JsonBinaryLoader):
    _loads = staticmethod(stored_json.loads)


@functools.cache
def _with_stored_json(adapters: AdaptersMap) -> AdaptersMap:
    # One map per Django template (itself one per time zone), as Django caches its own.
    extended = AdaptersMap(adapters)
    extended.register_loader("json", StoredJsonLoader)
    extended.register_loader("json", StoredJsonBinaryLoader)
    return extended


class PreparingCursor(base.ServerBindingCursor):
    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        try:
            result = super().execute(query, params, **kwargs)
        except errors.FeatureNotSupported as error:
            idle = self.connection.info.transaction_status == pq.TransactionStatus.IDLE
            if not (_result_type_changed(error) and idle):
                raise
            # Refused before it ran, outside a transaction: nothing happened, so run it once
            # more. psycopg drops its own record of every prepared statement on DEALLOCATE ALL.
            self.connection.execute("DEALLOCATE ALL")
            result = super().execute(query, params, **kwargs)
        _note_answer(self.connection)
        return result


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if params.get("cursor_factory") is base.ServerBindingCursor:
            params["cursor_factory"] = PreparingCursor
        if "context" in params:
            params["context"] = _with_stored_json(params["context"])
        return params

    def init_connection_state(self) -> None:
        super().init_connection_state()
        if self.connection is not None and self.connection.prepare_threshold is not None:
            # A prepared statement is still planned for its parameters on every run: after
            # five runs Postgres may settle on one generic plan, and for an optional filter
            # (`%s::text IS NULL OR user_id > %s`) that plan scans the whole index.
            with self.connection.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_custom_plan")

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        answered_at = getattr(connection, "_studio_answered_at", None)
        if (
            pgconn.transaction_status == pq.TransactionStatus.IDLE
            and answered_at is not None
            and time.monotonic() - answered_at < RECENT_SECONDS
            and not _readable(pgconn.socket)
        ):
            return True
        # Bytes waiting (the server's goodbye, or a notice), a transaction open, or quiet for
        # a while: ask, as Django does.
        usable = super().is_usable()
        if usable:
            _note_answer(connection)
        return usable


def _readable(socket: int) -> bool:
    # poll(), not select(): select() refuses descriptors past 1023, which a busy worker
    # reaches.
    poller = select.poll()
    poller.register(socket, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))
