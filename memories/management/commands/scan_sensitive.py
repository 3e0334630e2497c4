from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import flags
from memories.runtime.access import TablesGone


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
        stopped = []
        for agent in agents:
            try:
                state = flags.scan_next_batch(agent, options["batch_size"])
                while not state.finished_at:
                    state = flags.scan_next_batch(agent, options["batch_size"])
            except TablesGone as error:  # one agent's tables gone: the others are still scanned
                self.stderr.write(f"{agent.slug}: {error.message}")
                stopped.append(agent.slug)
                continue
            counts = flags.sensitive_counts(agent)
            self.stdout.write(
                f"{agent.slug}: scanned {state.scanned}; flagged: {counts or 'none'}."
            )
        if stopped:
            raise CommandError(f"The scan stopped for {', '.join(stopped)}; see above.")
