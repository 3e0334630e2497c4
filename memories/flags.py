"""Sensitive-data flags: which memories look like secrets or personal identifiers.

The flags are studio rows (never the text). The agent-wide scan walks memories in
memory_id order in batches; the user page scans one user on the spot; actions drop or
refresh the flags of the memories they change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections, router, transaction
from django.utils import timezone

from agents.models import Agent
from memories import runtime
from memories.models import Memory, SensitiveFlag, SensitiveScan
from memories.sensitive import scan as scan_texts
from studio.sql_rows import fetch, select_list

SCAN_BATCH = 1_000
T = TypeVar("T")
_NO_USER = object()  # store_flags without a user whose other flags go too


def store_flags(
    agent: Agent,
    memories: list,
    found: dict[str, list[str]],
    *,
    user_id: Any = _NO_USER,
    gone: Sequence[str] = (),
) -> None:
    """Flags for the scanned `memories` as `found` says, in one statement whatever the count:
    flags no longer found go (with `user_id`, every flag of that user not found, too; `gone`
    names memories that no longer exist), and the found ones are upserted on (agent,
    memory_id). A data-modifying CTE: the delete and the upsert touch disjoint rows."""
    scanned = [m.memory_id for m in memories] + list(gone)
    if user_id is _NO_USER:
        also, user_params = "", []
    elif user_id is None:
        also, user_params = " OR user_id IS NULL", []
    else:
        also, user_params = " OR user_id = %s", [user_id]
    flagged = [memory for memory in memories if memory.memory_id in found]
    table = SensitiveFlag._meta.db_table
    sql = (
        f"WITH gone AS (DELETE FROM {table} WHERE agent_id = %s "
        f"AND (memory_id = ANY(%s){also}) AND NOT (memory_id = ANY(%s))) "
        f"INSERT INTO {table} (agent_id, memory_id, user_id, kinds, memory_changed_at, found_at) "
        "SELECT %s, f.memory_id, f.user_id, f.kinds::jsonb, f.changed, now() "
        "FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) "
        "AS f(memory_id, user_id, kinds, changed) "
        "ON CONFLICT (agent_id, memory_id) DO UPDATE SET user_id = EXCLUDED.user_id, "
        "kinds = EXCLUDED.kinds, memory_changed_at = EXCLUDED.memory_changed_at, "
        "found_at = EXCLUDED.found_at"
    )
    params = [
        agent.pk,
        scanned,
        *user_params,
        list(found),
        agent.pk,
        [m.memory_id for m in flagged],
        [m.user_id for m in flagged],
        [json.dumps(found[m.memory_id]) for m in flagged],
        [m.last_changed_at for m in flagged],
    ]
    with connections[router.db_for_write(SensitiveFlag)].cursor() as cursor:
        cursor.execute(sql, params)


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


def scan_user(
    agent: Agent, user_id: str, then: Callable[[dict[str, list[str]]], T] | None = None
) -> tuple[dict[str, list[str]], T | None]:
    """Scan every memory of one user now (the user page's "sensitive" filter). `then(found)`
    runs in the same visit to the runtime (the page of what was found), before the flags are
    stored; returns what was found and what `then` returned."""
    with runtime.in_agent_schema(agent):
        memories = runtime.user_memories_all(agent, user_id)
        found = scan_texts((m.memory_id, m.text) for m in memories)
        result = then(found) if then else None
    with transaction.atomic():
        store_flags(agent, memories, found, user_id=user_id)
    return found, result


# An agent's flags per kind as one JSON object, for the agent_id parameter: the flagged
# page carries it on its rows, sensitive_counts asks it alone.
_KIND_COUNTS = (
    "(SELECT jsonb_object_agg(kind, n) FROM (SELECT kind, count(*) AS n "
    f"FROM {SensitiveFlag._meta.db_table}, jsonb_array_elements_text(kinds) AS kind "
    "WHERE agent_id = %s GROUP BY kind) AS c)"
)


@dataclass
class FlaggedPage:
    rows: list[tuple[SensitiveFlag, Memory]]
    next_cursor: str | None
    counts: dict[str, int]  # flags per kind, agent-wide


def flagged_page(agent: Agent, after: str | None, limit: int = 25) -> FlaggedPage:
    """Flagged memories, newest first, with their current rows and the agent's counts per
    kind (riding on the page's query); stale flags are rechecked on the spot."""
    table = SensitiveFlag._meta.db_table
    where, params = "agent_id = %s", [agent.pk]
    if after:
        changed, memory_id = runtime.decode_cursor(after, (int, str))
        where += " AND (memory_changed_at, memory_id) < (%s, %s)"
        params += [changed, memory_id]
    flags = fetch(
        SensitiveFlag,
        f"SELECT {select_list(SensitiveFlag)}, {_KIND_COUNTS} AS kind_counts FROM {table} "
        f"WHERE {where} ORDER BY memory_changed_at DESC, memory_id DESC LIMIT %s",
        [agent.pk, *params, limit + 1],
        extras=["kind_counts"],
    )
    page = runtime.keyset_page(flags, limit, lambda flag: (flag.memory_changed_at, flag.memory_id))
    counts = _kind_counts(page.items[0].kind_counts) if page.items else {}
    if not page.items and after:
        counts = sensitive_counts(agent)  # past the last page: no row to ride on
    rows = runtime.memories_by_id(agent, [f.memory_id for f in page.items])
    stale = []
    for flag in page.items:
        memory = rows.get(flag.memory_id)
        if memory is None or memory.last_changed_at != flag.memory_changed_at:
            stale.append(flag)
            for kind in flag.kinds:
                counts[kind] = counts.get(kind, 0) - 1
    found: dict[str, list[str]] = {}
    if stale:  # deleted or changed since the scan: look again, in one statement
        changed = [rows[f.memory_id] for f in stale if f.memory_id in rows]
        found = scan_texts((m.memory_id, m.text) for m in changed)
        store_flags(agent, changed, found, gone=[f.memory_id for f in stale])
        for flag in stale:
            if flag.memory_id in found:  # still sensitive: it stays on the list
                memory = rows[flag.memory_id]
                flag.kinds, flag.memory_changed_at = found[flag.memory_id], memory.last_changed_at
                for kind in flag.kinds:
                    counts[kind] = counts.get(kind, 0) + 1
    # In the page's order: a rechecked memory keeps its place rather than going last.
    result = [
        (flag, rows[flag.memory_id])
        for flag in page.items
        if flag not in stale or flag.memory_id in found
    ]
    return FlaggedPage(result, page.next_cursor, {k: n for k, n in counts.items() if n > 0})


def _kind_counts(value: Any) -> dict[str, int]:
    """Counts per kind from the page's jsonb_object_agg (text or decoded), most first."""
    if isinstance(value, str):
        value = json.loads(value)
    return dict(sorted((value or {}).items(), key=lambda item: (-item[1], item[0])))


def sensitive_counts(agent: Agent) -> dict[str, int]:
    """Flags per kind, agent-wide, counted by Postgres (the command's summary)."""
    with connections[router.db_for_read(SensitiveFlag)].cursor() as cursor:
        cursor.execute(f"SELECT {_KIND_COUNTS}", [agent.pk])
        return _kind_counts(cursor.fetchone()[0])


def rescan(agent: Agent, memory: Memory) -> None:
    """After an edit: the memory's flag follows its new text."""
    store_flags(agent, [memory], scan_texts([(memory.memory_id, memory.text)]))


def flags_for(agent: Agent, memory_ids: Sequence[str]) -> dict[str, list[str]]:
    """The kinds flagged on these memories (a page's rows), one query; none asked, none run."""
    if not memory_ids:
        return {}
    # Plain SQL (kinds still decoded from JSON): on every user page, and the ORM took three
    # times as long as the query to build it.
    rows = fetch(
        SensitiveFlag,
        f"SELECT {select_list(SensitiveFlag)} FROM {SensitiveFlag._meta.db_table} "
        "WHERE agent_id = %s AND memory_id = ANY(%s)",
        [agent.pk, list(memory_ids)],
    )
    return {row.memory_id: row.kinds for row in rows}


def drop_flags(agent: Agent, memory_ids: Sequence[str]) -> None:
    """The deleted memories' flags go with them. Plain SQL: nothing refers to a flag, so the
    ORM's delete (a collector, then the same DELETE) only added the time to build it."""
    if not memory_ids:
        return
    with connections[router.db_for_write(SensitiveFlag)].cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {SensitiveFlag._meta.db_table} "
            "WHERE agent_id = %s AND memory_id = ANY(%s)",
            [agent.pk, list(memory_ids)],
        )


def rescan_ids(agent: Agent, memory_ids: Sequence[str], chunk: int = SCAN_BATCH) -> None:
    """After an import: the written memories are scanned now, as an added one is."""
    for start in range(0, len(memory_ids), chunk):
        memories = list(runtime.memories_by_id(agent, memory_ids[start : start + chunk]).values())
        store_flags(agent, memories, scan_texts((m.memory_id, m.text) for m in memories))
