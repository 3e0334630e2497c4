from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import actions, import_export


class Command(BaseCommand):
    help = (
        "Import memories from JSON Lines or CSV: every row is checked first and nothing is "
        "written unless all pass (or --valid-rows). Re-importing never duplicates."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="a .jsonl or .csv file")
        parser.add_argument("--agent", required=True, help="the agent's slug")
        parser.add_argument("--user-id", help="every row is for this user")
        parser.add_argument(
            "--valid-rows", action="store_true", help="import the valid rows anyway"
        )
        parser.add_argument("--dry-run", action="store_true", help="check only, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        agent = Agent.objects.filter(slug=options["agent"]).first()
        if agent is None:
            raise CommandError(f"There is no agent “{options['agent']}”.")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            report = actions.import_memories(
                actor=None,
                agent=agent,
                data=path.read_bytes(),
                filename=path.name,
                user_id=options["user_id"],
                valid_rows_only=options["valid_rows"],
                dry_run=options["dry_run"],
            )
        except import_export.ImportFileError as error:
            raise CommandError(str(error)) from error
        for line, reason in report.rejected:
            self.stderr.write(f"line {line}: {reason}")
        self.stdout.write(f"{len(report.accepted)} valid, {len(report.rejected)} rejected.")
        if report.written:
            self.stdout.write(
                self.style.SUCCESS(f"Written: {report.added} added, {report.updated} updated.")
            )
        else:
            self.stdout.write("Nothing was written.")
            if report.rejected and not options["dry_run"]:
                raise CommandError("Some rows were rejected; fix them or use --valid-rows.")
