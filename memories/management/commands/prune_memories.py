from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import actions, pruning


class Command(BaseCommand):
    help = (
        "Prune memories by age, count, topic or user: a preview first, then deletion in "
        "batches (each its own short transaction). --dry-run only previews."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agent", required=True)
        parser.add_argument("--older-than-days", type=int, help="not updated for N days")
        parser.add_argument("--keep-newest", type=int, help="keep the newest K per user")
        parser.add_argument("--topic", default="")
        parser.add_argument("--user-id", default="")
        parser.add_argument("--batch-size", type=int, default=pruning.PRUNE_BATCH)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        agent = Agent.objects.filter(slug=options["agent"]).first()
        if agent is None:
            raise CommandError(f"There is no agent “{options['agent']}”.")
        criteria = pruning.PruneCriteria(
            older_than_days=options["older_than_days"],
            keep_newest=options["keep_newest"],
            topic=options["topic"],
            user_id=options["user_id"],
        )
        if criteria.is_empty():
            raise CommandError(
                "Give at least one of --older-than-days, --keep-newest, --topic, --user-id."
            )
        if not 1 <= options["batch_size"] <= 50_000:
            raise CommandError("--batch-size is from 1 to 50,000.")
        job = pruning.preview_prune(agent, criteria, None)
        self.stdout.write(
            f"Memories {criteria.describe()}: {job.planned} of {job.users} users, "
            f"about {job.tokens_saved} tokens."
        )
        if options["dry_run"]:
            job.delete()
            self.stdout.write("Dry run: nothing was deleted.")
            return
        while not job.finished_at:
            job = actions.run_prune_batch(actor=None, job=job, batch=options["batch_size"])
            self.stdout.write(f"  {job.deleted + job.skipped}/{job.planned}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {job.deleted}; kept {job.skipped} that changed after the preview."
            )
        )
