"""Sensitive-data flags: which memories look like secrets or personal identifiers.

The flags are studio rows (never the text). The agent-wide scan walks memories in
memory_id order in batches; the user page scans one user on the spot; actions drop or
refresh the flags of the memories they change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from memories import runtime
from memories.models import Memory, SensitiveFlag, SensitiveScan
from memories.sensitive import scan as scan_texts

SCAN_BATCH = 1_000
_NO_USER = object()  # store_flags without a user whose other flags go too


def store_flags(
    agent: Agent, memories: list, found: dict[str, list[str]], *, user_id: Any = _NO_USER
) -> None:
    """Flags for the scanned `memories` as `found` says, in two queries whatever the count:
    flags no longer found go (with `user_id`, every flag of that user not found, too), and
    the found ones are written in one upsert on (agent, memory_id)."""
    scanned = [m.memory_id for m in memories]
    stale = SensitiveFlag.objects.filter(agent=agent, memory_id__in=scanned)
    if user_id is not _NO_USER:
        stale = stale | SensitiveFlag.objects.filter(agent=agent, user_id=user_id)
    stale.exclude(memory_id__in=list(found)).delete()
    flagged = [
        SensitiveFlag(
            agent=agent,
            memory_id=memory.memory_id,
            user_id=memory.user_id,
            kinds=found[memory.memory_id],
            memory_changed_at=memory.last_changed_at,
        )
        for memory in memories
        if memory.memory_id in found
    ]
    if flagged:
        SensitiveFlag.objects.bulk_create(
            flagged,
            update_conflicts=True,
            unique_fields=["agent", "memory_id"],
            update_fields=["user_id", "kinds", "memory_changed_at", "found_at"],
        )


def scan_next_batch(agent: Agent, batch: int = SCAN_BATCH) -> SensitiveScan:
    """Scan the next memories of the agent in memory_id order; restarts after the last."""
    state, _ = SensitiveScan.objects.get_or_create(agent=agent)
    if state.finished_at:
        state.after_memory_id, state.scanned, state.finished_at = "", 0, None
        state.started_at = timezone.now()
    # Nothing scanned yet: start before memory_id "", which `> ''` would skip.
    after = state.after_memory_id if state.scanned else None
    memories = runtime.memories_after(agent, after, batch)
    found = scan_texts((m.memory_id, m.text) for m in memories)
    with transaction.atomic():
        store_flags(agent, memories, found)
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
        store_flags(agent, memories, found, user_id=user_id)
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
    page = runtime.keyset_page(
        flags.order_by("-memory_changed_at", "-memory_id")[: limit + 1],
        limit,
        lambda flag: (flag.memory_changed_at, flag.memory_id),
    )
    chosen, next_cursor = page.items, page.next_cursor
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
            store_flags(agent, [memory], scan_texts([(memory.memory_id, memory.text)]))
    return result, next_cursor


def sensitive_counts(agent: Agent) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kinds in SensitiveFlag.objects.filter(agent=agent).values_list("kinds", flat=True):
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def rescan(agent: Agent, memory: Memory) -> None:
    """After an edit: the memory's flag follows its new text."""
    store_flags(agent, [memory], scan_texts([(memory.memory_id, memory.text)]))


def flags_for(agent: Agent, memory_ids: Sequence[str]) -> dict[str, list[str]]:
    """The kinds flagged on these memories (a page's rows), one query; none asked, none run."""
    if not memory_ids:
        return {}
    # Plain SQL through raw() (kinds still decoded from JSON): on every user page, and the
    # ORM took three times as long as the query to build it.
    rows = SensitiveFlag.objects.raw(
        f"SELECT id, memory_id, kinds FROM {SensitiveFlag._meta.db_table} "
        "WHERE agent_id = %s AND memory_id = ANY(%s)",
        [agent.pk, list(memory_ids)],
    )
    return {row.memory_id: row.kinds for row in rows}


def drop_flags(agent: Agent, memory_ids: Sequence[str]) -> None:
    SensitiveFlag.objects.filter(agent=agent, memory_id__in=list(memory_ids)).delete()


def rescan_ids(agent: Agent, memory_ids: Sequence[str], chunk: int = SCAN_BATCH) -> None:
    """After an import: the written memories are scanned now, as an added one is."""
    for start in range(0, len(memory_ids), chunk):
        memories = list(runtime.memories_by_id(agent, memory_ids[start : start + chunk]).values())
        store_flags(agent, memories, scan_texts((m.memory_id, m.text) for m in memories))
