"""Django's database sessions, read with plain SQL: every page's first query."""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.models import Session
from django.utils import timezone

from studio.sql_rows import fetch_one, select_list

_KEY_CHARS = frozenset(VALID_KEY_CHARS)


class SessionStore(db.SessionStore):
    """The same table, cookie and expiry as `django.contrib.sessions.backends.db`; only the
    read differs: plain SQL (studio.sql_rows) instead of `objects.get()`, whose compile took
    longer than the query.
    Writes, flushes and clearsessions are Django's own."""

    def _validate_session_key(self, key: str | None) -> bool:
        # Django makes keys of these characters only; anything else in the cookie (a NUL
        # byte, which Postgres refuses in text) is no session rather than a 500.
        return bool(key) and len(key) >= 8 and set(key) <= _KEY_CHARS

    def _get_session_from_db(self) -> Session | None:
        session = fetch_one(
            self.model,
            f"SELECT {select_list(self.model)} FROM {self.model._meta.db_table} "
            "WHERE session_key = %s AND expire_date > %s",
            [self.session_key, timezone.now()],
        )
        if session is None:
            self._session_key = None
        return session
