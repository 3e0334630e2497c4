"""`migrate`, refusing runtime databases: the agents' runtime owns them, and the studio's
tables (agents, registry, audit, jobs, accounts) live in the studio's database only."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate


class Command(DjangoMigrate):
    def handle(self, *args: Any, **options: Any) -> None:
        database = options.get("database") or "default"
        runtime_aliases = {
            alias
            for connection in settings.RUNTIME_CONNECTIONS.values()
            for alias in (connection.alias, connection.replica_alias)
            if alias and alias != "default"
        }
        if database in runtime_aliases:
            raise CommandError(
                f"“{database}” is a runtime connection: the agents' runtime owns that database "
                "and Memory Studio creates nothing there. Run migrate without --database."
            )
        super().handle(*args, **options)
