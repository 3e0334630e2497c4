from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import import_export


class Command(BaseCommand):
    help = "Write an agent's (or one user's) memories as JSON Lines in the runtime's field names."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", required=True, help="the agent's slug")
        parser.add_argument("--user-id", help="only this user's memories")
        parser.add_argument("--output", "-o", help="a file; standard output when left out")

    def handle(self, *args: Any, **options: Any) -> None:
        agent = Agent.objects.filter(slug=options["agent"]).first()
        if agent is None:
            raise CommandError(f"There is no agent “{options['agent']}”.")
        lines = import_export.export_lines(agent, options["user_id"])
        if options["output"]:
            count = -1  # the first line is the export's header, not a memory
            with open(options["output"], "w", encoding="utf-8") as handle:
                for line in lines:
                    handle.write(line)
                    count += 1
            self.stderr.write(f"Exported {count} memories to {options['output']}.")
        else:
            for line in lines:
                sys.stdout.write(line)
