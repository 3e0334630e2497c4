"""The cost panel: tokens across an agent's users, what they cost a month, and its charts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from agents.models import Agent
from memories import runtime
from memories.models import UserTokens

HISTOGRAM_BUCKETS = (0, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000)
PER_DAY_DAYS = 90  # the span of the memories-per-day chart


@dataclass(frozen=True)
class CostInputs:
    conversations_per_month: int = 10_000
    turns_per_conversation: int = 6
    price_per_million: float = 2.50  # USD per million input tokens
    extraction_tokens_per_call: int = 1_500  # agentic mode: the memory model's input per call

    @classmethod
    def for_agent(cls, agent: Agent) -> CostInputs:
        saved = agent.cost_inputs if isinstance(agent.cost_inputs, dict) else {}
        return cls(**{k: v for k, v in saved.items() if k in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MonthlyCost:
    memory_tokens: int
    memory_cost: float
    extraction_calls: int
    extraction_tokens: int
    extraction_cost: float

    @property
    def total(self) -> float:
        return self.memory_cost + self.extraction_cost


def monthly_cost(inputs: CostInputs, tokens_per_user: float, agentic: bool) -> MonthlyCost:
    """Memories ride in the system message of every turn. In agentic mode each call of the
    agent's memory tool is one more model call, which reads the memories too; none when the
    agent does not call it. The calculator estimates one such call per conversation."""
    turns = inputs.conversations_per_month * inputs.turns_per_conversation
    memory_tokens = round(tokens_per_user * turns)
    calls = inputs.conversations_per_month if agentic else 0
    extraction_tokens = round(calls * (inputs.extraction_tokens_per_call + tokens_per_user))
    per_token = inputs.price_per_million / 1_000_000
    return MonthlyCost(
        memory_tokens,
        memory_tokens * per_token,
        calls,
        extraction_tokens,
        extraction_tokens * per_token,
    )


@dataclass
class CostOverview:
    users_counted: int
    total_tokens: int
    average_tokens: float
    heaviest: list[UserTokens]
    histogram: list[tuple[str, int]]
    per_day: list[tuple[int, int]]
    oldest_count: Any
    over_budget: int
    per_day_days: int = PER_DAY_DAYS


def cost_overview(agent: Agent) -> CostOverview:
    rows = UserTokens.objects.filter(agent=agent)
    # Totals, the oldest count, the histogram's buckets and the users over budget in one
    # aggregate (it was 12 queries, one a bucket).
    edges = [*HISTOGRAM_BUCKETS, None]
    ranges = list(enumerate(zip(edges[:-1], edges[1:], strict=True)))
    buckets = {
        f"bucket{n}": Count(
            "id",
            filter=Q(tokens__gte=low) if high is None else Q(tokens__gte=low, tokens__lt=high),
        )
        for n, (low, high) in ranges
    }
    over = {"over": Count("id", filter=agent.over_budget_tokens())} if agent.token_budget else {}
    totals = rows.aggregate(
        users=Count("id"), total=Sum("tokens"), oldest=Min("refreshed_at"), **buckets, **over
    )
    users, tokens = totals["users"] or 0, totals["total"] or 0
    histogram = [
        (f"{low:,}+" if high is None else f"{low:,}–{high - 1:,}", totals[f"bucket{n}"])
        for n, (low, high) in ranges
    ]
    return CostOverview(
        users_counted=users,
        total_tokens=tokens,
        average_tokens=tokens / users if users else 0.0,
        # The agent rides along so each row's is_over_budget reads no further rows.
        heaviest=list(rows.select_related("agent").order_by("-tokens", "user_id")[:10]),
        histogram=histogram,
        per_day=_every_day(
            runtime.memories_created_per_day(agent, days=PER_DAY_DAYS), days=PER_DAY_DAYS
        ),
        oldest_count=totals["oldest"],
        over_budget=totals.get("over", 0),
    )


def _every_day(counts: list[tuple[int, int]], days: int) -> list[tuple[int, int]]:
    """One bar per day, quiet days included, so the chart's x-axis is time."""
    today = int(timezone.now().timestamp()) // 86_400 * 86_400
    by_day = dict(counts)
    return [
        (day, by_day.get(day, 0)) for day in range(today - (days - 1) * 86_400, today + 1, 86_400)
    ]
