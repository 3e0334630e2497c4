from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import flags


class Command(BaseCommand):
    help = "Scan an agent's memories for secrets and personal identifiers, in batches."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", help="one agent's slug; every agent when left out")
        parser.add_argument("--batch-size", type=int, default=flags.SCAN_BATCH)

    def handle(self, *args: Any, **options: Any) -> None:
        agents = Agent.objects.all()
        if options["agent"]:
            agents = agents.filter(slug=options["agent"])
            if not agents:
                raise CommandError(f"There is no agent “{options['agent']}”.")
        for agent in agents:
            state = flags.scan_next_batch(agent, options["batch_size"])
            while not state.finished_at:
                state = flags.scan_next_batch(agent, options["batch_size"])
            counts = flags.sensitive_counts(agent)
            self.stdout.write(
                f"{agent.slug}: scanned {state.scanned}; flagged: {counts or 'none'}."
            )
