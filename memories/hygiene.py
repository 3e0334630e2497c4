"""Memory hygiene: what memories cost in context, pruning with a preview, the sensitive scan."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Max, Sum
from django.utils import timezone

from agents.models import Agent
from memories import audit, runtime
from memories.context_cost import EMPTY, count_tokens, memory_block
from memories.models import (
    AuditEvent,
    PruneCandidate,
    PruneJob,
    SensitiveFlag,
    SensitiveScan,
    UserTokens,
)
from memories.sensitive import scan as scan_texts

# Tokens


def context_block(agent: Agent, user_id: str) -> tuple[str, int]:
    """The exact block agno puts in every system message for this user, and its tokens;
    refreshes the user's cached figure on the way."""
    texts = runtime.memories_for_context(agent, user_id)
    block = memory_block(texts)
    tokens = count_tokens(block)
    _store_tokens(agent, user_id, tokens if texts else 0, len(texts))
    return block, tokens


def refresh_user_tokens(agent: Agent, user_id: str) -> int:
    """Recount one user; 0 for a user without memories (agno's empty line is not theirs)."""
    block, tokens = context_block(agent, user_id)
    return 0 if block == EMPTY else tokens


def _store_tokens(agent: Agent, user_id: str, tokens: int, memories: int) -> None:
    if not memories:
        UserTokens.objects.filter(agent=agent, user_id=user_id).delete()
        return
    UserTokens.objects.update_or_create(
        agent=agent, user_id=user_id, defaults={"tokens": tokens, "memories": memories}
    )


def forget_tokens(agent: Agent, user_ids: set[str]) -> None:
    """After a bulk change (import, prune): recount small sets now, drop the rest to recount."""
    if len(user_ids) <= 50:
        for user_id in user_ids:
            refresh_user_tokens(agent, user_id)
    else:
        UserTokens.objects.filter(agent=agent, user_id__in=user_ids).delete()


def count_agent_tokens(agent: Agent, *, batch: int = 500, only_missing: bool = False) -> int:
    """Recount every user of an agent (manage.py count_tokens); returns users counted."""
    counted, after = 0, None
    while True:
        page = runtime.agent_users(agent, after=after, limit=batch)
        known = set()
        if only_missing:
            known = set(
                UserTokens.objects.filter(
                    agent=agent, user_id__in=[r.user_id for r in page.items]
                ).values_list("user_id", flat=True)
            )
        for row in page.items:
            if row.memory_count and row.user_id not in known:
                refresh_user_tokens(agent, row.user_id)
                counted += 1
        if not page.next_cursor:
            return counted
        after = page.next_cursor


def token_map(agent: Agent, user_ids: list[str]) -> dict[str, UserTokens]:
    return {t.user_id: t for t in UserTokens.objects.filter(agent=agent, user_id__in=user_ids)}


def heaviest_users(
    agent: Agent, *, after: str | None = None, over_budget: bool = False, limit: int = 25
) -> runtime.Page[runtime.UserRow]:
    """Users by counted tokens, most first (keyset on tokens and user_id)."""
    rows = UserTokens.objects.filter(agent=agent)
    if over_budget:
        rows = rows.filter(tokens__gt=agent.token_budget) if agent.token_budget else rows.none()
    if after:
        tokens, user_id = runtime.decode_cursor(after, (int, str))
        rows = rows.filter(tokens__lt=tokens) | rows.filter(tokens=tokens, user_id__gt=user_id)
    chosen = list(rows.order_by("-tokens", "user_id")[: limit + 1])
    next_cursor = None
    if len(chosen) > limit:
        chosen = chosen[:limit]
        next_cursor = runtime.encode_cursor(chosen[-1].tokens, chosen[-1].user_id)
    users = runtime.user_rows(agent, [t.user_id for t in chosen])
    for row, counted in zip(users, chosen, strict=True):
        row.counted_tokens = counted.tokens
    return runtime.Page(users, next_cursor)


def attach_counted_tokens(agent: Agent, rows: list[runtime.UserRow]) -> None:
    counted = token_map(agent, [row.user_id for row in rows])
    for row in rows:
        if row.user_id in counted:
            row.counted_tokens = counted[row.user_id].tokens


# The cost panel

HISTOGRAM_BUCKETS = (0, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000)


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
    """Memories ride in the system message of every turn; agentic mode adds one extraction
    call per conversation, which reads the memories too."""
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


def cost_overview(agent: Agent) -> CostOverview:
    rows = UserTokens.objects.filter(agent=agent)
    totals = rows.aggregate(users=Count("id"), tokens=Sum("tokens"), oldest=Max("refreshed_at"))
    users, tokens = totals["users"] or 0, totals["tokens"] or 0
    histogram = []
    edges = [*HISTOGRAM_BUCKETS, None]
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        bucket = (
            rows.filter(tokens__gte=low)
            if high is None
            else rows.filter(tokens__gte=low, tokens__lt=high)
        )
        label = f"{low:,}+" if high is None else f"{low:,}–{high - 1:,}"
        histogram.append((label, bucket.count()))
    budget = agent.token_budget
    return CostOverview(
        users_counted=users,
        total_tokens=tokens,
        average_tokens=tokens / users if users else 0.0,
        heaviest=list(rows.order_by("-tokens", "user_id")[:10]),
        histogram=histogram,
        per_day=_every_day(runtime.memories_created_per_day(agent), days=90),
        oldest_count=rows.order_by("refreshed_at").values_list("refreshed_at", flat=True).first(),
        over_budget=rows.filter(tokens__gt=budget).count() if budget else 0,
    )


def _every_day(counts: list[tuple[int, int]], days: int) -> list[tuple[int, int]]:
    """One bar per day, quiet days included, so the chart's x-axis is time."""
    today = int(timezone.now().timestamp()) // 86_400 * 86_400
    by_day = dict(counts)
    return [
        (day, by_day.get(day, 0)) for day in range(today - (days - 1) * 86_400, today + 1, 86_400)
    ]


def bar_chart(points: list[tuple[str, int]], width: int = 640, height: int = 160) -> dict[str, Any]:
    """Bars for an inline SVG the template draws: no chart library, no script."""
    peak = max((value for _, value in points), default=0) or 1
    gap = 4
    bar = max(2.0, (width - gap * len(points)) / max(1, len(points)))
    bars = []
    for index, (label, value) in enumerate(points):
        h = 0 if not value else max(2.0, (height - 20) * value / peak)
        bars.append(
            {
                "x": round(index * (bar + gap), 1),
                "y": round(height - 20 - h, 1),
                "w": round(bar, 1),
                "h": round(h, 1),
                "label": label,
                "value": value,
            }
        )
    return {"width": width, "height": height, "bars": bars, "peak": peak}


# Pruning

PRUNE_BATCH = 2_000


@dataclass(frozen=True)
class PruneCriteria:
    older_than_days: int | None = None  # not updated for this many days
    keep_newest: int | None = None  # per user
    topic: str = ""
    user_id: str = ""

    def is_empty(self) -> bool:
        return not (
            self.older_than_days or self.keep_newest is not None or self.topic or self.user_id
        )

    def describe(self) -> str:
        parts = []
        if self.older_than_days:
            parts.append(f"not updated for {self.older_than_days} days")
        if self.keep_newest is not None:
            parts.append(f"beyond the newest {self.keep_newest} of each user")
        if self.topic:
            parts.append(f"with topic “{self.topic}”")
        if self.user_id:
            parts.append(f"of user “{self.user_id}”")
        return ", ".join(parts)


def _candidate_sql(criteria: PruneCriteria, now: int) -> tuple[str, list[Any]]:
    conditions, params = ["TRUE"], []
    if criteria.user_id:
        conditions.append("m.user_id = %s")
        params.append(criteria.user_id)
    if criteria.topic:
        conditions.append("m.topics @> %s::jsonb")
        params.append(json.dumps([criteria.topic]))
    if criteria.older_than_days:
        conditions.append("coalesce(m.updated_at, m.created_at) < %s")
        params.append(now - criteria.older_than_days * 86_400)
    source = "agno_memories m"
    if criteria.keep_newest is not None:
        # Rank every memory of each user, newest first; those past K are candidates.
        source = (
            "(SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY "
            "coalesce(updated_at, created_at) DESC, memory_id DESC) AS rank FROM agno_memories"
            + (" WHERE user_id = %s" if criteria.user_id else "")
            + ") m"
        )
        if criteria.user_id:
            params.insert(0, criteria.user_id)
        conditions.append("m.rank > %s")
        params.append(criteria.keep_newest)
    sql = (
        "SELECT m.memory_id, m.user_id, coalesce(m.updated_at, m.created_at), m.memory #>> '{}' "
        f"FROM {source} WHERE {' AND '.join(conditions)}"
    )
    return sql, params


def preview_prune(
    agent: Agent, criteria: PruneCriteria, actor: AbstractBaseUser | None
) -> PruneJob:
    """Fix the exact memories a prune will delete, and what it saves; deletes nothing."""
    now = int(timezone.now().timestamp())
    sql, params = _candidate_sql(criteria, now)
    with transaction.atomic():
        job = PruneJob.objects.create(agent=agent, actor=actor, criteria=asdict(criteria))
        users: set[str] = set()
        planned = tokens = 0
        with runtime.reach(agent) as tables:
            if tables.memories:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    while rows := cursor.fetchmany(5_000):
                        PruneCandidate.objects.bulk_create(
                            PruneCandidate(
                                job=job,
                                memory_id=memory_id,
                                user_id=user_id,
                                memory_changed_at=changed,
                            )
                            for memory_id, user_id, changed, _ in rows
                        )
                        planned += len(rows)
                        users.update(row[1] for row in rows)
                        # Each memory is a "\n- text" line of the block it leaves.
                        tokens += sum(count_tokens(f"\n- {row[3]}") for row in rows)
        job.planned, job.users, job.tokens_saved = planned, len(users), tokens
        job.save(update_fields=["planned", "users", "tokens_saved"])
    return job


def prune_affected_users(job: PruneJob, limit: int = 20) -> list[tuple[str, int]]:
    """The users a previewed prune touches most: (user_id, memories going)."""
    rows = (
        job.candidates.values("user_id").annotate(n=Count("id")).order_by("-n", "user_id")[:limit]
    )
    return [(row["user_id"], row["n"]) for row in rows]


def run_prune_batch(
    job: PruneJob, actor: AbstractBaseUser | None, batch: int = PRUNE_BATCH
) -> PruneJob:
    """Delete the next batch in its own short transaction; memories changed since the preview
    are kept. The last batch records the audit event and recounts tokens."""
    with transaction.atomic():
        job = PruneJob.objects.select_for_update().get(pk=job.pk)
        if job.finished_at:
            return job
        if job.confirmed_at is None:
            job.confirmed_at = timezone.now()
        ids = list(job.candidates.order_by("id").values_list("id", flat=True)[:batch])
        deleted: list[tuple[str, str]] = []
        if ids:
            with runtime.reach(job.agent), connection.cursor() as cursor:
                cursor.execute(
                    "WITH batch AS (DELETE FROM public.memories_prunecandidate WHERE id = ANY(%s) "
                    "RETURNING memory_id, memory_changed_at) "
                    "DELETE FROM agno_memories m USING batch b WHERE m.memory_id = b.memory_id "
                    "AND coalesce(m.updated_at, m.created_at) = b.memory_changed_at "
                    "RETURNING m.memory_id, m.user_id",
                    [ids],
                )
                deleted = cursor.fetchall()
        job.deleted += len(deleted)
        job.skipped += len(ids) - len(deleted)
        affected = {user_id for _, user_id in deleted}
        if not ids or not job.candidates.exists():
            job.finished_at = timezone.now()
            audit.record(
                actor,
                job.agent,
                AuditEvent.Action.MEMORIES_PRUNED,
                user_id=job.criteria.get("user_id") or "",
                details={
                    "planned": job.planned,
                    "deleted": job.deleted,
                    "kept_changed": job.skipped,
                    "users": job.users,
                    "criteria": PruneCriteria(**job.criteria).describe(),
                },
            )
        job.save()
    if affected:
        forget_tokens(job.agent, affected)
    return job


# The sensitive scan

SCAN_BATCH = 1_000


def _store_flags(agent: Agent, memories: list, found: dict[str, list[str]]) -> None:
    scanned = [m.memory_id for m in memories]
    SensitiveFlag.objects.filter(agent=agent, memory_id__in=scanned).exclude(
        memory_id__in=found
    ).delete()
    for memory in memories:
        if memory.memory_id in found:
            SensitiveFlag.objects.update_or_create(
                agent=agent,
                memory_id=memory.memory_id,
                defaults={
                    "user_id": memory.user_id or "",
                    "kinds": found[memory.memory_id],
                    "memory_changed_at": memory.last_changed_at,
                },
            )


def scan_next_batch(agent: Agent, batch: int = SCAN_BATCH) -> SensitiveScan:
    """Scan the next memories of the agent in memory_id order; restarts after the last."""
    state, _ = SensitiveScan.objects.get_or_create(agent=agent)
    if state.finished_at:
        state.after_memory_id, state.scanned, state.finished_at = "", 0, None
        state.started_at = timezone.now()
    memories = runtime.memories_after(agent, state.after_memory_id, batch)
    found = scan_texts((m.memory_id, m.text) for m in memories)
    with transaction.atomic():
        _store_flags(agent, memories, found)
        state.scanned += len(memories)
        if memories:
            state.after_memory_id = memories[-1].memory_id
        if len(memories) < batch:
            state.finished_at = timezone.now()
        state.save()
    return state


def scan_user(agent: Agent, user_id: str) -> dict[str, list[str]]:
    """Scan every memory of one user now (the user page's "sensitive" filter)."""
    memories = runtime.user_memories_all(agent, user_id)
    found = scan_texts((m.memory_id, m.text) for m in memories)
    with transaction.atomic():
        SensitiveFlag.objects.filter(agent=agent, user_id=user_id).exclude(
            memory_id__in=found
        ).delete()
        _store_flags(agent, memories, found)
    return found


def flagged_page(
    agent: Agent, after: str | None, limit: int = 25
) -> tuple[list[tuple[Any, Any]], str | None]:
    """Flagged memories, newest first, with their current rows; stale flags are rechecked."""
    flags = SensitiveFlag.objects.filter(agent=agent)
    if after:
        changed, memory_id = runtime.decode_cursor(after, (int, str))
        flags = flags.filter(memory_changed_at__lt=changed) | flags.filter(
            memory_changed_at=changed, memory_id__lt=memory_id
        )
    chosen = list(flags.order_by("-memory_changed_at", "-memory_id")[: limit + 1])
    next_cursor = None
    if len(chosen) > limit:
        chosen = chosen[:limit]
        next_cursor = runtime.encode_cursor(chosen[-1].memory_changed_at, chosen[-1].memory_id)
    rows = runtime.memories_by_id(agent, [f.memory_id for f in chosen])
    result, stale = [], []
    for flag in chosen:
        memory = rows.get(flag.memory_id)
        if memory is None or memory.last_changed_at != flag.memory_changed_at:
            stale.append(flag)
            continue
        result.append((flag, memory))
    for flag in stale:  # deleted or changed since the scan: look again
        memory = rows.get(flag.memory_id)
        if memory is None:
            flag.delete()
        else:
            _store_flags(agent, [memory], scan_texts([(memory.memory_id, memory.text)]))
    return result, next_cursor


def sensitive_counts(agent: Agent) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kinds in SensitiveFlag.objects.filter(agent=agent).values_list("kinds", flat=True):
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    return counts
