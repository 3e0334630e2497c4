from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Time the sensitive scan and the token sweep, and their peak memory, at given sizes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--memories", type=int, nargs="+", default=[20_000, 100_000])
        parser.add_argument(
            "--only",
            choices=["scan", "sweep"],
            default="",
            help="run one job only (the scan takes about 2 ms a memory)",
        )
        parser.add_argument(
            "--child", action="store_true", help="measure one size here and print it as JSON"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["child"]:
            from studio.devtools.job_benchmark import measure

            self.stdout.write(json.dumps(measure(options["memories"][0], options["only"])))
            return
        for size in options["memories"]:
            out = subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "job_benchmark",
                    "--child",
                    "--memories",
                    str(size),
                    *(["--only", options["only"]] if options["only"] else []),
                ],
                cwd=settings.BASE_DIR,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                raise CommandError(f"The {size:,} run failed:\n{out.stderr[-2000:]}")
            self.stdout.write(out.stdout.strip().splitlines()[-1])
