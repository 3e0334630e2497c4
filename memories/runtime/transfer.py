"""Moving memories in and out of agno_memories in the runtime's own field names: exports in
memory_id chunks, checked imports (typed rows, or an export's rows exactly as stored) and
the trash's restores. The row format itself (EXPORT_FIELDS, stored_row) is
memories.runtime.memories', which the deletes that fill the trash share."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from django.db.models import JSONField, Value

from agents.models import Agent
from memories.models import Memory
from memories.runtime.access import RuntimeAccessError, Tables, in_agent_schema, walk_without_table
from memories.runtime.memories import EXPORT_FIELDS, stored_row, topics_value, with_null_topics
from memories.runtime.schema import ensure_runtime_tables
from studio import stored_json


class MemoryExists(RuntimeAccessError):
    """A restore found memories with the same ids in the runtime again: nothing was restored."""

    def __init__(self, memory_ids: Sequence[str]) -> None:
        self.memory_ids = list(memory_ids)
        shown = ", ".join(self.memory_ids[:5]) + (" …" if len(self.memory_ids) > 5 else "")
        self.message = (
            f"Nothing was restored: the runtime has a memory with the same id again ({shown}). "
            "Delete or keep that one first; the trashed copy stays in the trash."
        )
        super().__init__(self.message)


def restore_memories(agent: Agent, rows: Sequence[dict[str, Any]]) -> bool:
    """Put trashed rows back exactly as they were stored, all or none; raises MemoryExists
    when any id is in the runtime again. Returns True if the runtime's tables were created."""
    if not rows:
        return False
    created_tables = False
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            created_tables = ensure_runtime_tables(tables.location)
        ids = [row["memory_id"] for row in rows]
        taken = list(
            tables.Memory.objects.select_for_update()
            .filter(memory_id__in=ids)
            .values_list("memory_id", flat=True)
        )
        if taken:
            raise MemoryExists(sorted(taken))
        _restore_memories(tables, rows)
    return created_tables


def iter_memories_for_export(
    agent: Agent, user_id: str | None = None, chunk: int = 1000, *, one_user: bool = False
) -> Iterator[dict[str, Any]]:
    """Every memory of an agent as stored, in memory_id chunks; with `one_user` (or a
    user_id given), only that user's, user_id None being the runtime's NULL. A memory whose
    topics are SQL NULL has no `topics` key; JSON null is None."""
    one_user = one_user or user_id is not None
    after: str | None = None  # not "": a memory_id may be the empty string
    while True:
        batch = export_rows_after(agent, after, chunk, user_id=user_id, one_user=one_user)
        yield from batch
        if len(batch) < chunk:
            return
        after = batch[-1]["memory_id"]


def export_rows_after(
    agent: Agent,
    after: str | None,
    limit: int,
    *,
    user_id: str | None = None,
    one_user: bool = False,
) -> list[dict[str, Any]]:
    """The next memories after `after` (None: from the first) in memory_id order, as stored:
    a memory whose topics are SQL NULL has no `topics` key; JSON null is None. A table gone
    mid-walk is TablesGone (runtime.memories_after)."""
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            return walk_without_table(after)
        rows = with_null_topics(tables.Memory.objects.all())
        if after is not None:
            rows = rows.filter(memory_id__gt=after)
        if one_user:
            rows = rows.filter(user_id=user_id)
        batch = list(rows.order_by("memory_id")[:limit])
    return [stored_row(memory) for memory in batch]


def _json_value(value: Any) -> Any:
    # Django writes Python None to a JSONField as SQL NULL; JSON null needs saying so.
    return Value(None, output_field=JSONField()) if value is None else value


def _stored_state(memory: Memory, topics_sql_null: bool) -> str:
    """Every column as one comparable string: JSON types kept (True is not 1)."""
    columns = {name: getattr(memory, name) for name in EXPORT_FIELDS}
    columns["topics"] = "SQL NULL" if topics_sql_null else ["JSON", columns["topics"]]
    return stored_json.dumps(columns, sort_keys=True)


def _restore_memories(tables: Tables, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Write exported rows exactly as they were stored: every column, times included.
    A row without `topics` restores SQL NULL. Runs inside in_agent_schema."""
    existing = {
        m.memory_id: m
        for m in with_null_topics(tables.Memory.objects.select_for_update()).filter(
            memory_id__in=[row["memory_id"] for row in rows]
        )
    }
    fresh, updated = [], 0
    for row in rows:
        wanted = tables.Memory(**{name: row.get(name) for name in EXPORT_FIELDS})
        sql_null = "topics" not in row
        current = existing.get(row["memory_id"])
        if current is not None and _stored_state(current, current.topics_sql_null) == (
            _stored_state(wanted, sql_null)
        ):
            continue
        columns = {name: row.get(name) for name in EXPORT_FIELDS if name != "memory_id"}
        columns["memory"] = _json_value(row["memory"])
        columns["topics"] = None if sql_null else _json_value(row["topics"])
        if current is None:
            fresh.append(tables.Memory(memory_id=row["memory_id"], **columns))
        else:
            tables.Memory.objects.filter(memory_id=row["memory_id"]).update(**columns)
            updated += 1
    tables.Memory.objects.bulk_create(fresh, batch_size=1000)
    return len(fresh), updated


def upsert_memories(
    agent: Agent, rows: Sequence[dict[str, Any]], *, exact: bool = False
) -> tuple[int, int]:
    """Insert or update validated rows by memory_id; returns (added, updated). One transaction.
    `exact`: rows of an export, restored as stored; otherwise typed rows, stamped now."""
    added = updated = 0
    if not rows:
        return 0, 0
    with in_agent_schema(agent) as tables:
        if not tables.memories:
            ensure_runtime_tables(tables.location)
        if exact:
            return _restore_memories(tables, rows)
        existing = {
            m.memory_id: m
            for m in tables.Memory.objects.select_for_update().filter(
                memory_id__in=[row["memory_id"] for row in rows]
            )
        }
        now = int(time.time())
        fresh = []
        for row in rows:
            current = existing.get(row["memory_id"])
            if current is None:
                fresh.append(
                    tables.Memory(
                        memory_id=row["memory_id"],
                        memory=row["memory"],
                        topics=row["topics"] or None,
                        input=row["input"] or None,
                        feedback=row.get("feedback") or None,
                        agent_id=row.get("agent_id") or None,
                        team_id=row.get("team_id") or None,
                        user_id=row["user_id"],
                        created_at=row.get("created_at") or now,
                        updated_at=row.get("updated_at") or row.get("created_at") or now,
                    )
                )
            elif (current.memory, current.topic_list, current.input or "") != (
                row["memory"],
                row["topics"],
                row["input"] or "",
            ):
                tables.Memory.objects.filter(memory_id=current.memory_id).update(
                    memory=row["memory"],
                    topics=topics_value(row["topics"]),
                    input=row["input"] or None,
                    updated_at=now,
                )
                updated += 1
        for memory in fresh:
            if not memory.topics:
                memory.topics = topics_value([])
        tables.Memory.objects.bulk_create(fresh)
        added = len(fresh)
    return added, updated


def memory_owners(agent: Agent, memory_ids: Sequence[str]) -> dict[str, str | None]:
    with in_agent_schema(agent) as tables:
        if not tables.memories or not memory_ids:
            return {}
        return dict(
            tables.Memory.objects.filter(memory_id__in=list(memory_ids)).values_list(
                "memory_id", "user_id"
            )
        )
