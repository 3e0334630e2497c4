from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import actions, runtime


class Command(BaseCommand):
    help = "Erase every memory, session and run of one user_id, in one agent or all (--yes to act)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user_id")
        parser.add_argument("--agent", help="an agent's slug; all agents when left out")
        parser.add_argument(
            "--yes", action="store_true", help="erase; without it, only show counts"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_id = options["user_id"]
        agents = Agent.objects.all()
        if options["agent"]:
            agents = agents.filter(slug=options["agent"])
            if not agents:
                raise CommandError(f"There is no agent “{options['agent']}”.")
        if not options["yes"]:
            for agent in agents:
                f = runtime.user_footprint(agent, user_id)
                self.stdout.write(
                    f"{agent.slug}: {f.memories} memories, {f.sessions} sessions, {f.runs} runs"
                )
            self.stdout.write("Nothing was erased. Run again with --yes to erase the above.")
            return
        try:
            forgotten = actions.forget_user(actor=None, agents=agents, user_id=user_id)
        except (actions.ReadOnlyAgents, actions.PartialForget) as error:
            raise CommandError(error.message) from None
        for agent, f in forgotten:
            self.stdout.write(
                f"{agent.slug}: erased {f.memories} memories, {f.sessions} sessions, {f.runs} runs"
            )
