from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from studio import embedded_postgres


class Command(BaseCommand):
    help = "Show or stop the embedded Postgres under .data/ (not used when DATABASE_URL is set)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["status", "stop"])

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = settings.EMBEDDED_POSTGRES_DIR
        if options["action"] == "stop":
            stopped = embedded_postgres.stop(data_dir)
            self.stdout.write("Stopped." if stopped else "Not running.")
        else:
            self.stdout.write(f"Data directory: {data_dir}")
