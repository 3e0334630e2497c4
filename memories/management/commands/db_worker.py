"""`manage.py db_worker` as django-tasks-db runs it, after handing stalled jobs on.

A worker killed mid-batch leaves its job without a queued task; a starting worker queues one
(and starts any missing token sweep, and the trash's periodic emptying) before it takes tasks.
Running workers do the same at the end of every periodic pass (a failed or cancelled one
queues its next pass too), so a crash or a new agent is picked up without a restart.
"""

from __future__ import annotations

from typing import Any

from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from memories import jobs


class Command(DatabaseWorkerCommand):
    help = "Run a database background worker (after reviving stalled jobs)"

    def handle(self, *args: Any, **options: Any) -> None:
        revived = jobs.ensure_schedules()
        if options.get("verbosity", 1) > 0:
            self.stdout.write(f"Revived {len(revived)} stalled jobs.")
        super().handle(*args, **options)
