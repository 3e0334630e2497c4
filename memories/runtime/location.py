"""Where one agent's runtime tables are: which connection, which schema, which table names.

An agent names its connection (a RUNTIME_DATABASES name, or "default", the studio's own
database) beside its schema and its PostgresDb table names. Everything that reaches the
runtime starts from `location_of(agent)`, so a renamed table or a separate server is one
setting away, never a code path of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import connections

from agents.models import Agent, TableNames, validate_schema_name


class RuntimeConnectionMissing(Exception):
    """The agent names a connection this deployment does not configure."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"This agent's runtime connection “{name}” is not configured here. Add it to "
            "RUNTIME_DATABASES (name=postgres://…) or choose another connection for the agent."
        )


@dataclass(frozen=True)
class Location:
    schema: str
    names: TableNames
    alias: str  # the Django database alias of the primary
    replica_alias: str | None = None
    read_only: bool = False

    def quoted(self, role: str) -> str:
        """A runtime table by role ("memories", "sessions", "runs", "versions"), quoted."""
        return f'"{getattr(self.names, role)}"'

    def qualified(self, role: str) -> str:
        return f'"{self.schema}".{self.quoted(role)}'

    @property
    def connection(self):  # noqa: ANN201 - Django's DatabaseWrapper
        return connections[self.alias]


def location_of(agent: Agent | str) -> Location:
    """An Agent, or a bare schema name: the agno defaults on the studio's own database."""
    if not isinstance(agent, Agent):
        validate_schema_name(agent)
        return Location(agent, TableNames(), "default")
    validate_schema_name(agent.db_schema)
    connection = settings.RUNTIME_CONNECTIONS.get(agent.connection or "default")
    if connection is None:
        raise RuntimeConnectionMissing(agent.connection)
    return Location(
        agent.db_schema,
        agent.table_names,
        connection.alias,
        connection.replica_alias,
        connection.read_only,
    )


# Whether the studio may write an agent's runtime tables: configured read-only, or a role
# without INSERT/UPDATE/DELETE there. Checked at most once a minute per table and process.
PRIVILEGE_CHECK_SECONDS = 60
_privileges_seen: dict[tuple[str, str, str], tuple[float, bool]] = {}


def read_only_reason(agent: Agent) -> str:
    """Why Memory Studio cannot change this agent's memories ("" when it can)."""
    location = location_of(agent)
    if location.read_only:
        return (
            f"The runtime connection “{agent.connection}” is read-only to Memory Studio "
            "(RUNTIME_READ_ONLY): review its memories here; only the agent changes them."
        )
    if not _may_write(location):
        return (
            f"Memory Studio's database role may not insert, update or delete in "
            f"{location.schema}.{location.names.memories}, so its memories are shown "
            "read-only. Grant those privileges to change them here."
        )
    return ""


def read_only_agents(agents: Iterable[Agent]) -> list[tuple[Agent, str]]:
    """The agents among these whose runtime Memory Studio may not change, each with why."""
    return [(agent, reason) for agent in agents if (reason := read_only_reason(agent))]


# True when the memory table is missing: the first write creates it, and CREATE decides.
WRITE_PRIVILEGES = (
    "to_regclass(%(m)s) IS NULL OR (has_table_privilege(to_regclass(%(m)s), 'INSERT') "
    "AND has_table_privilege(to_regclass(%(m)s), 'UPDATE') "
    "AND has_table_privilege(to_regclass(%(m)s), 'DELETE'))"
)


def remember_privileges(location: Location, writable: bool) -> None:
    """Every visit to the agent's primary learns its privileges for free (in_agent_schema)."""
    key = (location.alias, location.schema, location.names.memories)
    _privileges_seen[key] = (time.monotonic(), bool(writable))


def _may_write(location: Location) -> bool:
    key = (location.alias, location.schema, location.names.memories)
    seen = _privileges_seen.get(key)
    if seen is not None and time.monotonic() - seen[0] < PRIVILEGE_CHECK_SECONDS:
        return seen[1]
    with location.connection.cursor() as cursor:
        cursor.execute(f"SELECT {WRITE_PRIVILEGES}", {"m": location.qualified("memories")})
        writable = bool(cursor.fetchone()[0])
    remember_privileges(location, writable)
    return writable


# Which of an agent's runtime tables exist, per database alias: learned by every
# in_agent_schema visit (its lookup asks anyway) or by read_runtime's own lookup, trusted for
# this long, and set when the studio creates them (schema.ensure_runtime_tables). Only
# where the memory and session tables both exist does read_runtime skip in_agent_schema,
# whose lookup then sees a table agno creates at once.
PRESENCE_SECONDS = 60
_tables_seen: dict[tuple[str, Location], tuple[float, tuple[bool, bool, bool]]] = {}


def remember_tables(
    alias: str, location: Location, memories: bool, sessions: bool, runs: bool
) -> None:
    _tables_seen[(alias, location)] = (time.monotonic(), (memories, sessions, runs))


def known_tables(alias: str, location: Location) -> tuple[bool, bool, bool] | None:
    """Whether the memory, session and runs tables exist, as last found on `alias`."""
    seen = _tables_seen.get((alias, location))
    if seen is None or time.monotonic() - seen[0] > PRESENCE_SECONDS:
        return None
    return seen[1]


def forget_tables(location: Location) -> None:
    for key in [key for key in _tables_seen if key[1] == location]:
        _tables_seen.pop(key, None)


def tables_created(location: Location) -> None:
    """The studio just created the agent's tables on its primary: known there, and looked
    up afresh on a replica. Should that transaction roll back, the first read fails on its
    own and read_runtime forgets them again."""
    forget_tables(location)
    remember_tables(location.alias, location, True, True, True)
