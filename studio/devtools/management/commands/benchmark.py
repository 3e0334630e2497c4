from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from studio.devtools.benchmark import benchmark
from studio.devtools.figures import write_json


class Command(BaseCommand):
    help = (
        "Build a scratch agent schema at scale and time our pages against Django admin, "
        "AgentOS, PostgresDb and raw SQL on the same data (needs the test requirements)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--memories", type=int, default=1_000_000)
        parser.add_argument("--users", type=int, default=100_000)
        parser.add_argument("--sessions", type=int, default=200_000)
        parser.add_argument("--repeat", type=int, default=30, help="timed requests per figure")
        parser.add_argument(
            "--no-baseline", action="store_true", help="skip the run without runtime_indexes"
        )
        parser.add_argument("--json", help="where to write the results (default benchmarks/)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["memories"] < 20_000 or options["users"] < 100:
            raise CommandError("Use at least 20,000 memories and 100 users (one user has 10,000).")
        results = benchmark(
            memories=options["memories"],
            users=options["users"],
            sessions=options["sessions"],
            repeat=options["repeat"],
            with_baseline=not options["no_baseline"],
            out=self.stdout,
        )
        target = options["json"] or str(
            Path(settings.BASE_DIR) / "benchmarks" / f"benchmark-{options['memories']}.json"
        )
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        write_json(results, target)
        self.stdout.write(self.style.SUCCESS(f"Results written to {target}"))
