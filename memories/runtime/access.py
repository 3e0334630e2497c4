"""How the runtime package reaches an agent's schema, pages through it, and reports trouble.

Each agent keeps its runtime tables in its own Postgres schema, on its own connection, under
the table names its PostgresDb uses. `in_agent_schema(agent)` opens a transaction on that
connection and sets the search_path to that schema alone with set_config(..., true), so the
unmanaged models serve every agent, nothing leaks to the next request on a pooled connection,
and no studio table can be resolved through an agent's schema: a studio query inside
`in_agent_schema` fails loudly instead of reading a look-alike table the runtime's owner created.
Raw SQL names tables as {memories}, {sessions} and {runs} and goes through `tables.sql()`.
Reads in plain SQL go through `read_runtime` (or `read_rows`): outside a transaction they run
alone with schema-qualified names, one round trip a statement instead of four.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.db import ProgrammingError, connections, transaction
from psycopg import errors as pg_errors

from agents.models import Agent, TableNames
from memories.models import Memory, Run, RuntimeSession, runtime_model
from memories.runtime.location import (
    WRITE_PRIVILEGES,
    Location,
    forget_tables,
    known_tables,
    location_of,
    remember_privileges,
    remember_tables,
)
from memories.runtime.routing import current_runtime_alias
from memories.runtime.schema import quoted_schema

T = TypeVar("T")
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200


class RuntimeAccessError(Exception):
    """Base for what the runtime layer reports to views and actions."""

    message = "The runtime's tables could not be read."


class InvalidCursor(RuntimeAccessError):
    message = "This page link is malformed or out of date. Start again from the first page."


class MemoryNotFound(RuntimeAccessError):
    message = "This memory no longer exists: it was deleted, or belongs to another user."


class StaleMemory(RuntimeAccessError):
    message = "This memory changed since you opened it. Its current text is shown; edit again."

    def __init__(self, current: Any) -> None:
        super().__init__(self.message)
        self.current = current


class ForeignMemories(RuntimeAccessError):
    message = (
        "Some of the selected memories do not belong to this user in this agent. "
        "Nothing was deleted; reload the page and select again."
    )


class SessionNotFound(RuntimeAccessError):
    message = "This session no longer exists: it was deleted, or belongs to another agent."


class TablesGone(RuntimeAccessError):
    message = (
        "The agent's memory table is gone since this work started (dropped or renamed in "
        "the runtime), so it stopped: what it did so far is incomplete."
    )


def walk_without_table(after: str | None) -> list[Any]:
    """What a walk in id order reads where its table is missing: nothing yet to walk before
    it began (`after` None), and TablesGone once it has read rows, which is no end of them."""
    if after is not None:
        raise TablesGone(TablesGone.message)
    return []


@dataclass(frozen=True)
class Tables:
    """Which runtime tables exist where the agent's PostgresDb writes, and how to reach them:
    an agent that never ran has none."""

    schema: str
    memories: bool
    sessions: bool
    runs: bool
    location: Location | None = None
    via: str = ""  # the alias this block reads: the primary's, or its replica's
    # Names carry the schema (read_runtime's reads, without a search_path).
    qualified: bool = False

    @property
    def any(self) -> bool:
        return self.memories or self.sessions

    @property
    def names(self) -> TableNames:
        return self.location.names if self.location else TableNames()

    @property
    def alias(self) -> str:
        return self.via or (self.location.alias if self.location else "default")

    def sql(self, text: str) -> str:
        """SQL written with {memories}, {sessions} and {runs} for the agent's table names."""
        for role in ("memories", "sessions", "runs"):
            if self.qualified and self.location:
                name = self.location.qualified(role)
            else:
                name = f'"{getattr(self.names, role)}"'
            text = text.replace("{" + role + "}", name)
        return text

    def cursor(self) -> Any:
        return connections[self.alias].cursor()

    @property
    def Memory(self) -> type[Memory]:  # noqa: N802 - a model class, named like one
        return runtime_model("memories", self.names.memories)

    @property
    def Session(self) -> type[RuntimeSession]:  # noqa: N802
        return runtime_model("sessions", self.names.sessions)

    @property
    def Run(self) -> type[Run]:  # noqa: N802
        return runtime_model("runs", self.names.runs)


@dataclass
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None


def schema_of(agent: Agent | str) -> str:
    return agent.db_schema if isinstance(agent, Agent) else agent


@contextmanager
def in_agent_schema(
    agent: Agent | str, *, replica: bool = False, savepoint: bool = True
) -> Iterator[Tables]:
    """Run the block in one transaction on the agent's runtime connection, with its schema
    as the whole search_path. `replica`: a list or search page, which may read the
    connection's replica; writes and what a confirmation shows always read the primary.
    `savepoint=False`: inside a caller's transaction, no savepoint of its own (two round
    trips fewer) for a write whose failure fails the caller's whole transaction anyway."""
    location = location_of(agent)
    alias = location.replica_alias if replica and location.replica_alias else location.alias
    connection = connections[alias]
    quoted = quoted_schema(location.schema)
    current: Tables | None = getattr(connection, "_runtime_tables", None)
    if current is not None and current.location == location and connection.in_atomic_block:
        yield current  # already there: nested calls share the transaction and the lookup
        return
    outer = current_runtime_alias.get()
    if replica and outer is not None and _reaches(outer, location):
        alias, connection = outer, connections[outer]  # inside a primary block: stay there
        current = getattr(connection, "_runtime_tables", None)
        if current is not None and current.location == location and connection.in_atomic_block:
            yield current
            return
    nested = connection.in_atomic_block
    with transaction.atomic(using=alias, savepoint=savepoint):
        with connection.cursor() as cursor:
            # The same round trip learns whether the studio may write there (read_only_reason).
            cursor.execute(
                "SELECT current_setting('search_path'), set_config('search_path', %(path)s, true), "
                f"{_TABLES_LOOKUP}",
                {"path": quoted, **_lookup_params(location)},
            )
            previous, _, *found = cursor.fetchone()
        memories, sessions, runs = _learn(alias, location, found)
        tables = Tables(location.schema, memories, sessions, runs, location, alias)
        connection._runtime_tables = tables
        token = current_runtime_alias.set(alias)
        # Nothing is prepared while the path is the agent's: the block's SQL names tables
        # unqualified, so one statement's text would serve every agent's tables, whatever
        # their columns' types (studio.postgres).
        raw = connection.connection
        threshold, raw.prepare_threshold = raw.prepare_threshold, None
        try:
            yield tables
        finally:
            raw.prepare_threshold = threshold
            connection._runtime_tables = current
            current_runtime_alias.reset(token)
        if nested:
            # SET LOCAL outlives a released savepoint: put the caller's path back.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('search_path', %s, true)", [previous])


_MISSING = (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName)


# Which tables exist and whether the studio may write there: in_agent_schema's and
# _known_tables' lookup, read back by _learn.
_TABLES_LOOKUP = f"to_regclass(%(m)s), to_regclass(%(s)s), to_regclass(%(r)s), {WRITE_PRIVILEGES}"


def _lookup_params(location: Location) -> dict[str, str]:
    return {role[0]: location.qualified(role) for role in ("memories", "sessions", "runs")}


def _learn(alias: str, location: Location, found: Sequence[Any]) -> tuple[bool, bool, bool]:
    """Remember what a lookup found (which tables exist, and on the primary the write
    privileges) and answer whether memories, sessions and runs exist."""
    *tables, writable = found
    if alias == location.alias:
        remember_privileges(location, writable)
    memories, sessions, runs = (table is not None for table in tables)
    remember_tables(alias, location, memories, sessions, runs)
    return memories, sessions, runs


def _known_tables(alias: str, location: Location) -> Tables:
    """The agent's tables as last found on `alias` (runtime.location.known_tables), with
    schema-qualified names; looked up now, in one autocommit statement, when not known."""
    present = known_tables(alias, location)
    if present is None:
        with connections[alias].cursor() as cursor:
            cursor.execute(f"SELECT {_TABLES_LOOKUP}", _lookup_params(location))
            present = _learn(alias, location, cursor.fetchone())
    return Tables(location.schema, *present, location, alias, qualified=True)


def read_runtime(agent: Agent | str, read: Callable[[Tables], T], *, replica: bool) -> T:
    """What `read(tables)` reads from the agent's tables, with no transaction around it when
    none is open: a list, a row or an edit form is one statement, and in_agent_schema added
    three round trips to it (BEGIN, the search_path and table lookup, COMMIT).

    `read` reaches the tables in plain SQL only, through `tables.sql()` and `tables.alias`
    (studio.sql_rows' fetch with `using=tables.alias`, or `tables.cursor()`), never through
    the ORM, which would resolve the unqualified runtime models outside the agent's schema.
    Outside a transaction, where the memory and session tables were found (known_tables),
    it is given them with schema-qualified names and its statements run in autocommit, each
    its own snapshot as under READ COMMITTED in a transaction. A table dropped since it was
    found fails that statement on its own, and `read` runs again in in_agent_schema, which
    looks again. Where a table is missing, and inside a transaction (where a failed
    statement would abort the caller's), it runs in in_agent_schema at once."""
    location = location_of(agent)
    alias = location.replica_alias if replica and location.replica_alias else location.alias
    if not connections[alias].in_atomic_block and current_runtime_alias.get() is None:
        tables = _known_tables(alias, location)
        if tables.memories and tables.sessions:
            try:
                return read(tables)
            except ProgrammingError as error:
                if not isinstance(error.__cause__, _MISSING):
                    raise
                forget_tables(location)
    with in_agent_schema(agent, replica=replica) as tables:
        return read(tables)


def read_rows(
    agent: Agent | str, build: Callable[[Tables], str | None], params: Any, *, replica: bool
) -> list[tuple]:
    """The rows of one read-only statement (read_runtime). `build` writes it for the tables
    it is given ({memories}, {sessions}, {runs}), or answers None when they hold nothing."""

    def read(tables: Tables) -> list[tuple]:
        sql = build(tables)
        if sql is None:
            return []
        with tables.cursor() as cursor:
            cursor.execute(tables.sql(sql), params)
            return cursor.fetchall()

    return read_runtime(agent, read, replica=replica)


def _reaches(alias: str, location: Location) -> bool:
    current = getattr(connections[alias], "_runtime_tables", None)
    return current is not None and current.location == location


# Cursors: the sort key and the id of the last row shown, opaque to the person.


# A cursor holds stored ids, which the runtime does not bound: a Postgres btree keeps an id
# of up to ~2.7 KB compressed, far more as text. Forms accept any cursor up to this size, so
# one built here from any stored row is always taken back.
MAX_CURSOR_CHARS = 4_000_000


def encode_cursor(*values: Any) -> str:
    # ensure_ascii=False: non-Latin ids cost their UTF-8 bytes, not six characters each.
    raw = json.dumps(list(values), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, types: Sequence[type]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeError, RecursionError) as error:
        # RecursionError: a hand-made cursor of deeply nested JSON.
        raise InvalidCursor(InvalidCursor.message) from error
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, types, strict=True)
        )
        # Postgres text holds no NUL; a lone surrogate cannot be encoded for it either.
        or any(isinstance(v, str) and not _storable(v) for v in values)
    ):
        raise InvalidCursor(InvalidCursor.message)
    return values


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def keyset_page(rows: Iterable[T], limit: int, key: Callable[[T], tuple[Any, ...]]) -> Page[T]:
    """One page from the `limit + 1` rows a keyset query fetched: the extra row only says
    that a next page exists, and the cursor is the sort key of the last row shown."""
    rows = list(rows)  # a queryset is evaluated once, here
    items = rows[:limit]
    if len(rows) > limit:
        return Page(items, encode_cursor(*key(items[-1])))
    return Page(items)


def page_limit(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE_SIZE))


def same_user(user_id: str | None, placeholder: str = "%(u)s", column: str = "user_id") -> str:
    """The SQL condition for one user: the runtime stores some memories with user_id NULL,
    which `=` never matches (IS NULL also keeps the user_id index in use)."""
    return f"{column} IS NULL" if user_id is None else f"{column} = {placeholder}"


def like_escaped(text: str) -> str:
    """Text for a LIKE pattern, its wildcards taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
