"""A benchmark's figures: how one is timed, which peers it is divided by, and how a run is
reported (the printed table and the JSON). studio.devtools.benchmark is what it times."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    name: str
    group: str
    samples_ms: list[float] = field(default_factory=list)
    queries: int | None = None
    sql_ms: float | None = None  # time spent in all of the page's queries
    runtime_sql_ms: float | None = None  # in its queries of the runtime's tables
    peak_kb: float | None = None  # Python memory allocated at the peak of one request

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(name: str, group: str, call: Callable[[], Any], repeat: int) -> Figure:
    for _ in range(3):  # warm caches and connections, as a running server would be
        call()
    figure = Figure(name, group)
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        figure.samples_ms.append((time.perf_counter() - started) * 1000)
    return figure


PEERS = {
    "inline edit: save (10,000-memory user)": ["AgentOS: /memories?user_id (25)"],
    "memories: first page": [
        "raw SQL: a user's 25 newest memories",
        "AgentOS: /memories?user_id (25)",
        "PostgresDb.get_user_memories (25)",
        "admin: memories by user_id",
    ],
    "memories: deep page": [
        "raw SQL: a user's 25 newest memories",
        "AgentOS: /memories?user_id (25)",
    ],
    "memories: text search": [
        "raw SQL: a user's 25 newest memories",
        "AgentOS: /memories?user_id (25)",
    ],
    "memories: topic filter": [
        "raw SQL: a user's 25 newest memories",
        "AgentOS: /memories?user_id (25)",
    ],
    "users: first page": ["raw SQL: 25 users with counts", "AgentOS: /user_memory_stats (25)"],
    "users: deep keyset page": [
        "raw SQL: 25 users with counts",
        "AgentOS: /user_memory_stats (25)",
    ],
    "users: prefix search": ["raw SQL: 25 users with counts", "AgentOS: /user_memory_stats (25)"],
    "users: first page, all counted": ["raw SQL: 25 users with counts"],
    "users: prefix search, all counted": ["raw SQL: 25 users with counts"],
    "search across the agent": [
        "raw SQL: text search across the agent",
        "AgentOS: /memories?search_content",
        "admin: text search",
    ],
}


def report_table(figures: list[Figure], label: str) -> list[str]:
    by_name = {f.name: f for f in figures}
    lines = [
        f"{'figure':<42} {'p50 ms':>8} {'p95 ms':>8} {'queries':>7} {'sql ms':>7}  ratios (p50)"
    ]
    for figure in figures:
        ratios = []
        for peer in PEERS.get(figure.name, []):
            if peer in by_name and by_name[peer].p50 > 0:
                ratios.append(f"{figure.p50 / by_name[peer].p50:.1f}x {peer}")
        queries = "" if figure.queries is None else str(figure.queries)
        sql_ms = "" if figure.sql_ms is None else f"{figure.sql_ms:.1f}"
        runtime_ms = "" if figure.runtime_sql_ms is None else f"{figure.runtime_sql_ms:.1f}"
        peak = "" if figure.peak_kb is None else f"{figure.peak_kb:.0f}"
        lines.append(
            f"{figure.name:<42} {figure.p50:>8.1f} {figure.p95:>8.1f} {queries:>7} {sql_ms:>7} "
            f"{runtime_ms:>7} {peak:>7}  " + "; ".join(ratios)
        )
    return [f"== {label} =="] + lines


def figure_rows(figures: list[Figure]) -> list[dict[str, Any]]:
    """A phase's figures as the JSON records them."""
    return [
        {
            "name": f.name,
            "group": f.group,
            "p50_ms": round(f.p50, 2),
            "p95_ms": round(f.p95, 2),
            "queries": f.queries,
            "sql_ms": None if f.sql_ms is None else round(f.sql_ms, 2),
        }
        for f in figures
    ]


def write_json(results: dict, path: str) -> None:
    with open(path, "w") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
