from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import hygiene


class Command(BaseCommand):
    help = "Scan an agent's memories for secrets and personal identifiers, in batches."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", required=True)
        parser.add_argument("--batch-size", type=int, default=hygiene.SCAN_BATCH)

    def handle(self, *args: Any, **options: Any) -> None:
        agent = Agent.objects.filter(slug=options["agent"]).first()
        if agent is None:
            raise CommandError(f"There is no agent “{options['agent']}”.")
        state = hygiene.scan_next_batch(agent, options["batch_size"])
        while not state.finished_at:
            state = hygiene.scan_next_batch(agent, options["batch_size"])
        counts = hygiene.sensitive_counts(agent)
        self.stdout.write(f"Scanned {state.scanned} memories; flagged: {counts or 'none'}.")
