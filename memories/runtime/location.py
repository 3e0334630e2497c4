"""Where one agent's runtime tables are: which connection, which schema, which table names.

An agent names its connection (a RUNTIME_DATABASES name, or "default", the studio's own
database) beside its schema and its PostgresDb table names. Everything that reaches the
runtime starts from `location_of(agent)`, so a renamed table or a separate server is one
setting away, never a code path of its own.
"""

from __future__ import annotations

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
