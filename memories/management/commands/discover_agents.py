from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from memories.runtime.discovery import discover_schemas
from memories.runtime.location import RuntimeConnectionMissing
from memories.stamps import read_stamp


class Command(BaseCommand):
    help = (
        "List the schemas of a runtime connection that hold agno's tables (default or renamed, "
        "known by their columns), with their counts and whether an agent is registered there."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--connection",
            help="a RUNTIME_DATABASES name; every configured connection when left out",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        names = (
            [options["connection"]] if options["connection"] else list(settings.RUNTIME_CONNECTIONS)
        )
        for name in names:
            try:
                found = discover_schemas(name)
            except RuntimeConnectionMissing as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"{name}: {len(found)} schema{'s' if len(found) != 1 else ''}")
            for entry in found:
                tables = ", ".join(f"{role}={table}" for role, table in entry.tables.items())
                studio = (
                    f" (Agent Studio agent {entry.agent_studio_id})"
                    if entry.agent_studio_id
                    else ""
                )
                registered = (
                    f"registered as {entry.registered.slug}"
                    if entry.registered
                    else "not registered"
                )
                approx = "≈" if entry.estimated else ""
                # At scale only the memories are estimated; distinct users are not counted.
                users = "users not counted" if entry.estimated else f"{entry.users} users"
                self.stdout.write(
                    f"  {entry.schema}{studio}: {approx}{entry.memories} memories, "
                    f"{users}, {entry.sessions} sessions, last write "
                    f"{_when(entry.last_write)}; {tables}; {registered}"
                )


def _when(stamp: int | None) -> str:
    if stamp is None:
        return "never"
    read = read_stamp(stamp)
    if read.moment is None:
        return read.note
    return f"{read.moment:%Y-%m-%d %H:%M} UTC" + (f" ({read.note})" if read.note else "")
