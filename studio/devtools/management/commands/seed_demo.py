from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from studio.devtools.demo import seed


class Command(BaseCommand):
    help = "Load the demo agents, people, memories and sessions (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = seed()
        if not any(counts.values()):
            self.stdout.write("Demo data already loaded.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                "Demo data added: {agents} agents, {people} people, {memories} memories, "
                "{sessions} sessions.".format(**counts)
            )
        )
