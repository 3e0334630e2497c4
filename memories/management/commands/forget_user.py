from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.models import Agent
from memories import audit, runtime
from memories.models import AuditEvent


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
        for agent in agents:
            if not options["yes"]:
                f = runtime.user_footprint(agent, user_id)
                self.stdout.write(
                    f"{agent.slug}: {f.memories} memories, {f.sessions} sessions, {f.runs} runs"
                )
                continue
            with transaction.atomic():
                f = runtime.forget_user(agent, user_id)
                audit.record(
                    None,
                    agent,
                    AuditEvent.Action.USER_FORGOTTEN,
                    user_id=user_id,
                    details={
                        "memories": f.memories,
                        "sessions": f.sessions,
                        "runs": f.runs,
                        "via": "command",
                    },
                )
            self.stdout.write(
                f"{agent.slug}: erased {f.memories} memories, {f.sessions} sessions, {f.runs} runs"
            )
        if not options["yes"]:
            self.stdout.write("Nothing was erased. Run again with --yes to erase the above.")
