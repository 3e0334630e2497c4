"""The benchmark's data: one agent schema filled to size in the shapes agno writes, by SQL
(generate_series) so a million memories load in seconds."""

from __future__ import annotations

import time

from django.db import connection

from memories.runtime.schema import ensure_runtime_tables

HEAVY_USER = "heavy@example.com"
HEAVY_MEMORIES = 10_000
RARE_WORD = "passport"  # in one memory of 1,000: what an operator hunts for
TOPICS = ["billing", "preferences", "product", "support"]
FACTS = [
    "prefers concise answers",
    "renewal is in november",
    "uses the api daily",
    "asked about invoices",
    "likes video walkthroughs",
    "works in sales operations",
]


def build_schema(schema: str, memories: int, users: int, sessions: int) -> dict[str, float]:
    """The runtime's tables filled set-based: seconds per step."""
    timings: dict[str, float] = {}
    ensure_runtime_tables(schema)
    now = int(time.time())
    user_expr = (
        "CASE WHEN g <= {heavy} THEN %(heavy)s "
        "ELSE 'user' || lpad(((g::bigint * 7919) %% %(users)s)::text, 6, '0') || '@example.com' END"
    )
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            f"""
            INSERT INTO "{schema}".agno_memories
                (memory_id, memory, input, agent_id, user_id, topics, created_at, updated_at)
            SELECT md5('m' || g)::uuid::text,
                   to_jsonb('Fact ' || g || ': ' || (%(facts)s::text[])[1 + g %% 6]
                            || CASE WHEN g %% 1000 = 7 THEN ' and shared a {RARE_WORD} number'
                                    ELSE '' END || '.'),
                   CASE WHEN g %% 3 = 0 THEN 'Something the user said in run ' || g END,
                   'bench',
                   {user_expr.format(heavy=HEAVY_MEMORIES)},
                   CASE WHEN g %% 4 = 0 THEN 'null'::jsonb
                        ELSE jsonb_build_array((%(topics)s::text[])[1 + g %% 4], 'topic' || (g %% 50))
                   END,
                   %(now)s - (g * 37 %% 7776000), %(now)s - (g * 37 %% 7776000) + (g %% 3600)
            FROM generate_series(1, %(n)s) AS g
            """,
            {
                "facts": FACTS,
                "topics": TOPICS,
                "now": now,
                "n": memories,
                "heavy": HEAVY_USER,
                "users": users,
            },
        )
        timings["memories"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(
            f"""
            INSERT INTO "{schema}".agno_sessions
                (session_id, session_type, agent_id, user_id, session_data, summary, created_at, updated_at)
            SELECT 'session-' || g, 'agent', 'bench', {user_expr.format(heavy=200)},
                   '{{}}'::jsonb,
                   CASE WHEN g %% 5 = 0 THEN jsonb_build_object('summary', 'Talked about renewal') END,
                   %(now)s - g * 13, %(now)s - g * 13 + 600
            FROM generate_series(1, %(n)s) AS g
            """,
            {"now": now, "n": sessions, "heavy": HEAVY_USER, "users": users},
        )
        cursor.execute(
            f"""
            INSERT INTO "{schema}".agno_runs
                (run_id, session_id, run_type, agent_id, user_id, status, run_index, run_data,
                 created_at, updated_at)
            SELECT s.session_id || '-run-' || r, s.session_id, 'agent', 'bench', s.user_id,
                   'COMPLETED', r,
                   jsonb_build_object('messages', jsonb_build_array(
                       jsonb_build_object('role', 'user', 'content', 'Question ' || r),
                       jsonb_build_object('role', 'assistant', 'content', 'Answer ' || r))),
                   s.created_at + r * 60, s.created_at + r * 60 + 5
            FROM "{schema}".agno_sessions s, generate_series(0, 1) AS r
            WHERE s.user_id = %(heavy)s OR s.session_id LIKE 'session-%%0'
            """,
            {"heavy": HEAVY_USER},
        )
        timings["sessions_and_runs"] = time.perf_counter() - started
        started = time.perf_counter()
        # What autovacuum does soon after a bulk load: statistics and the visibility map.
        cursor.execute(
            f'VACUUM ANALYZE "{schema}".agno_memories, "{schema}".agno_sessions, "{schema}".agno_runs'
        )
        timings["vacuum_analyze"] = time.perf_counter() - started
    return timings
