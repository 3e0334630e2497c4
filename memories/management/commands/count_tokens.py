from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import tokens


class Command(BaseCommand):
    help = (
        "Count every user's memory tokens (agno's exact block, tiktoken cl100k_base) for the lists."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", help="one agent's slug; every agent when left out")
        parser.add_argument("--missing", action="store_true", help="only users not counted yet")

    def handle(self, *args: Any, **options: Any) -> None:
        agents = Agent.objects.all()
        if options["agent"]:
            agents = agents.filter(slug=options["agent"])
            if not agents:
                raise CommandError(f"There is no agent “{options['agent']}”.")
        for agent in agents:
            counted = tokens.count_agent_tokens(agent, only_missing=options["missing"])
            self.stdout.write(f"{agent.slug}: {counted} users counted")
