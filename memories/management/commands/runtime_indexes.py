from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories.runtime.indexes import INDEXES, ensure_runtime_indexes
from memories.runtime.location import read_only_reason


class Command(BaseCommand):
    help = (
        "Add the indexes the dashboard's pages need on each agent's runtime tables "
        "(idempotent, built concurrently, no column changed)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", help="one agent's slug; every agent when left out")
        parser.add_argument("--list", action="store_true", help="only list the indexes and why")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for index in INDEXES:
                self.stdout.write(f"{index.table}.{index.name}: {index.why}")
            return
        agents = Agent.objects.all()
        if options["agent"]:
            agents = agents.filter(slug=options["agent"])
            if not agents:
                raise CommandError(f"There is no agent “{options['agent']}”.")
        for agent in agents:
            reason = read_only_reason(agent)
            if reason:
                # Building an index is a write: the runtime's owner adds them (--list).
                self.stdout.write(f"{agent.slug} ({agent.db_schema}): skipped. {reason}")
                continue
            built = ensure_runtime_indexes(agent)
            state = f"built {', '.join(built)}" if built else "nothing to do"
            self.stdout.write(f"{agent.slug} ({agent.db_schema}): {state}")
