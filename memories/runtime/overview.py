"""How much each agent holds, for the agents list: exact counts when small, the planner's
estimates at scale, and many agents read together (two queries per runtime connection)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import DatabaseError, connections, transaction

from agents.models import Agent
from memories.runtime.access import Tables
from memories.runtime.location import Location, RuntimeConnectionMissing, location_of

# Above this many rows (by the planner's estimate) the agents list shows estimated counts.
EXACT_COUNT_LIMIT = 200_000


@dataclass(frozen=True)
class AgentOverview:
    tables: Tables
    memory_count: int = 0
    user_count: int = 0
    last_update: int | None = None
    estimated: bool = False


def agent_overview(agent: Agent) -> AgentOverview:
    """One agent's figures, read as agent_overviews reads every agent's."""
    location = location_of(agent)
    return _overviews_on(location.replica_alias or location.alias, [(agent, location)])[agent.pk]


def agent_overviews(agents: Sequence[Agent]) -> dict[int, AgentOverview | Exception]:
    """agent_overview for many agents in two queries per runtime connection, however many
    agents share it (the agents list asked three per agent). An agent whose connection is
    missing or cannot be read maps to that exception, and the others are still answered."""
    results: dict[int, AgentOverview | Exception] = {}
    by_alias: dict[str, list[tuple[Agent, Location]]] = defaultdict(list)
    for agent in agents:
        try:
            location = location_of(agent)
        except RuntimeConnectionMissing as error:
            results[agent.pk] = error
            continue
        by_alias[location.replica_alias or location.alias].append((agent, location))
    for alias, members in by_alias.items():
        try:
            with transaction.atomic(using=alias):  # a failure leaves no aborted transaction
                results.update(_overviews_on(alias, members))
        except DatabaseError:
            # One agent's table may be unreadable (grants, a drifted layout) or the server
            # down: ask agent by agent, so only the agents that fail carry the error.
            for agent, location in members:
                try:
                    with transaction.atomic(using=alias):
                        results.update(_overviews_on(alias, [(agent, location)]))
                except DatabaseError as error:
                    results[agent.pk] = error
    return results


def _overviews_on(alias: str, members: list[tuple[Agent, Location]]) -> dict[int, AgentOverview]:
    """Qualified names throughout, so no search_path is set: which tables exist and the
    planner's row estimate first, then one UNION ALL of each agent's figures."""
    roles = ("memories", "sessions", "runs")
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass(m) IS NOT NULL, to_regclass(s) IS NOT NULL, "
            "to_regclass(r) IS NOT NULL, (SELECT reltuples::bigint FROM pg_class "
            "WHERE oid = to_regclass(m)) FROM unnest(%s::text[], %s::text[], %s::text[]) "
            "WITH ORDINALITY AS t(m, s, r, n) ORDER BY n",
            [[location.qualified(role) for _, location in members] for role in roles],
        )
        found = cursor.fetchall()
        parts, params = [], []
        for n, ((_, location), (memories, _, _, planner_rows)) in enumerate(
            zip(members, found, strict=True)
        ):
            if not memories:
                continue
            table = location.qualified("memories")
            if planner_rows < EXACT_COUNT_LIMIT:
                parts.append(
                    f"SELECT {n}, count(*), count(DISTINCT user_id), "
                    f"max(coalesce(updated_at, created_at)), false FROM {table}"
                )
                continue
            # At scale, the planner's statistics: exact counts would scan a million rows.
            parts.append(
                f"SELECT {n}, {int(planner_rows)}::bigint, (SELECT (CASE WHEN n_distinct > 0 "
                f"THEN n_distinct ELSE -n_distinct * {int(planner_rows)} END)::bigint "
                "FROM pg_stats WHERE schemaname = %s AND tablename = %s AND attname = 'user_id'), "
                f"(SELECT max(updated_at) FROM {table}), true"
            )
            params += [location.schema, location.names.memories]
        figures = {}
        if parts:
            cursor.execute(" UNION ALL ".join(parts), params)
            figures = {row[0]: row[1:] for row in cursor.fetchall()}
    overviews = {}
    for n, ((agent, location), (memories, sessions, runs, _)) in enumerate(
        zip(members, found, strict=True)
    ):
        tables = Tables(location.schema, memories, sessions, runs, location, alias)
        if n not in figures:
            overviews[agent.pk] = AgentOverview(tables)
            continue
        count, users, last, estimated = figures[n]
        overviews[agent.pk] = AgentOverview(tables, count, users or 0, last, estimated)
    return overviews
