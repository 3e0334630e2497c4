"""Every read and write of the Agno runtime's tables, split by what it touches.

- access: reaching an agent's schema, cursors, keyset pages, the errors reported
- memories: agno_memories (pages, lookups, writes, the export row format)
- transfer: moving memories in and out (export, import, the trash's restores)
- sessions: agno_sessions and agno_runs
- users: the user_ids the runtime holds, counts, forgetting
- prune: prune candidates and their batched deletion
- schema, indexes: the runtime's DDL and the dashboard's additive indexes

No SQL over runtime tables lives anywhere else. Writes are called by memories.actions only.
The names most callers need are importable from here.
"""

from memories.runtime.access import (
    PAGE_SIZE,
    ForeignMemories,
    InvalidCursor,
    MemoryNotFound,
    Page,
    RuntimeAccessError,
    SessionNotFound,
    StaleMemory,
    Tables,
    decode_cursor,
    encode_cursor,
    in_agent_schema,
    keyset_page,
)
from memories.runtime.memories import (
    MEMORY_SORTS,
    context_reads,
    get_memory,
    memories_after,
    memories_by_id,
    memories_created_per_day,
    memories_for_context,
    memory_topics,
    newest_memory_time,
    recent_memories,
    search_memories,
    user_memories,
    user_memories_all,
)
from memories.runtime.overview import AgentOverview, agent_overview, agent_overviews
from memories.runtime.sessions import SessionRow, get_session, session_runs, user_sessions
from memories.runtime.transfer import MemoryExists, iter_memories_for_export, memory_owners
from memories.runtime.users import UserFootprint, UserSummary, user_footprint, user_summary

__all__ = [
    "MEMORY_SORTS",
    "MemoryExists",
    "PAGE_SIZE",
    "AgentOverview",
    "ForeignMemories",
    "InvalidCursor",
    "MemoryNotFound",
    "Page",
    "RuntimeAccessError",
    "SessionNotFound",
    "SessionRow",
    "StaleMemory",
    "Tables",
    "UserFootprint",
    "UserSummary",
    "agent_overview",
    "agent_overviews",
    "decode_cursor",
    "encode_cursor",
    "get_memory",
    "get_session",
    "iter_memories_for_export",
    "keyset_page",
    "memories_after",
    "memories_by_id",
    "memories_created_per_day",
    "context_reads",
    "memories_for_context",
    "newest_memory_time",
    "memory_owners",
    "memory_topics",
    "recent_memories",
    "in_agent_schema",
    "search_memories",
    "session_runs",
    "user_footprint",
    "user_memories",
    "user_memories_all",
    "user_sessions",
    "user_summary",
]
