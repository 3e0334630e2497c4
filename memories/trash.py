"""The studio's trash: deleted memories' whole rows, kept for the agent's `trash_days`.

The trash lives in the studio database (never in a runtime schema): a runtime another
process owns must not grow tables it does not know. Writes to it happen in memories.actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.db.models import QuerySet
from django.utils import timezone

from agents.models import Agent
from memories.models import TrashedMemory

PAGE = 100
# The most trashed memories one restore or purge may name (a form posts their ids).
MOST_AT_ONCE = 1_000


def expiry(agent: Agent, now: datetime | None = None) -> datetime | None:
    """When memories deleted now leave the trash; None when the agent keeps no trash."""
    if not agent.trash_days:
        return None
    return (now or timezone.now()) + timedelta(days=agent.trash_days)


def keep(
    agent: Agent,
    rows: Sequence[dict[str, Any]],
    *,
    reason: str,
    actor: Any,
    prune_job: Any = None,
) -> list[TrashedMemory]:
    """Put deleted rows (the export format, memories.runtime.memories.stored_row) in the trash."""
    until = expiry(agent)
    if until is None or not rows:
        return []
    person = actor if actor is not None and actor.is_authenticated else None
    return TrashedMemory.objects.bulk_create(
        [
            TrashedMemory(
                agent=agent,
                memory_id=row["memory_id"],
                user_id=row["user_id"],
                row=row,
                reason=reason,
                prune_job=prune_job,
                actor=person,
                actor_name=person.get_username() if person else "system",
                expires_at=until,
            )
            for row in rows
        ],
        batch_size=1000,
    )


def move_owner(agent: Agent, source: str | None, target: str) -> int:
    """Trashed memories of `source` now belong to `target` (a user_id move), their stored
    rows too, so a restore puts them back where the moved ones went. Returns how many."""
    entries = TrashedMemory.objects.filter(agent=agent)
    entries = (
        entries.filter(user_id__isnull=True) if source is None else entries.filter(user_id=source)
    )
    moved = []
    for entry in entries.iterator(chunk_size=1000):
        entry.user_id = target
        entry.row = {**entry.row, "user_id": target}
        moved.append(entry)
    TrashedMemory.objects.bulk_update(moved, ["user_id", "row"], batch_size=1000)
    return len(moved)


def undo_ids(agent: Agent, memory_ids: Sequence[str]) -> list[int]:
    """The trash entries an "Undo" puts back: the newest of each memory just deleted.
    Plain SQL: every delete's toast asks, and the ORM took longer to build it than to run it."""
    if not memory_ids:
        return []
    with connections[router.db_for_read(TrashedMemory)].cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT ON (memory_id) id FROM {TrashedMemory._meta.db_table} "
            "WHERE agent_id = %s AND memory_id = ANY(%s) ORDER BY memory_id, id DESC",
            [agent.pk, list(memory_ids)],
        )
        return sorted(pk for (pk,) in cursor.fetchall())


@dataclass(frozen=True)
class TrashPage:
    items: list[TrashedMemory]
    total: int
    next_after: int | None


def trash_page(agent: Agent, *, after: int | None = None, limit: int = PAGE) -> TrashPage:
    """The newest trashed memories first (ids grow with deletion time), keyset-paginated."""
    rows = TrashedMemory.objects.filter(agent=agent)
    total = rows.count()
    if after is not None:
        rows = rows.filter(id__lt=after)
    items = list(rows.order_by("-id")[: limit + 1])
    next_after = items[limit - 1].pk if len(items) > limit else None
    return TrashPage(items[:limit], total, next_after)


def expired(now: datetime | None = None) -> QuerySet[TrashedMemory]:
    return TrashedMemory.objects.filter(expires_at__lte=now or timezone.now())


def emptying_interval() -> timedelta:
    return timedelta(minutes=settings.TRASH_EMPTY_MINUTES)
