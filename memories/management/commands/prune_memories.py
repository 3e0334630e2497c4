from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from memories import actions, pruning
from memories.forms import PruneForm
from studio.feedback import first_error


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
        parser.add_argument("--user-id", help='only this user_id\'s memories ("": the empty one)')
        parser.add_argument(
            "--no-user-id", action="store_true", help="only the memories stored with no user_id"
        )
        parser.add_argument("--batch-size", type=int, default=pruning.PRUNE_BATCH)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        agent = Agent.objects.filter(slug=options["agent"]).first()
        if agent is None:
            raise CommandError(f"There is no agent “{options['agent']}”.")
        # The page's form decides what criteria are valid, so both refuse the same input.
        data = {
            name: "" if options[name] is None else options[name]
            for name in ("older_than_days", "keep_newest", "topic")
        }
        if options["user_id"] is not None:
            data["user_id"] = options["user_id"]
        if options["no_user_id"]:
            data["no_user_id"] = "1"
        form = PruneForm(data)
        if not form.is_valid():
            raise CommandError(first_error(form))
        criteria = form.criteria()
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
