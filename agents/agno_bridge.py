"""The Memory tab's settings as keyword arguments of `agno.agent.Agent` (agno 3.1).

Running agents call `agno_agent_kwargs(payload["agno_settings"], db_schema=...,
db_url=..., tables=payload["tables"])` on what the settings endpoint returns, so they and the
dashboard agree on every switch and on the tables the memories are in.
No Django here: a running agent can import this module (and memory_settings) alone.
"""

from __future__ import annotations

from typing import Any

from agents.memory_settings import MemorySettings

# Settings with no agno 3.1 counterpart: said plainly rather than guessed.
UNSUPPORTED = {
    "agent_memories": (
        "agno 3.1 has no org-wide memory switch on Agent. Its `learning` (LearningMachine) "
        "is a different feature, so this setting is kept for the dashboard only and not "
        "passed to the agent."
    ),
    "agentic_agent_memories": "Depends on agent memories, which agno 3.1 does not offer.",
}


# PostgresDb's table-name keywords; blank or absent means agno's default.
TABLE_KEYS = ("memory_table", "session_table", "runs_table")


def agent_options(agno_settings: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON-safe part of the kwargs: everything but the db and compression objects."""
    s = MemorySettings.from_json(agno_settings)
    memories_in_context = s.memories_enabled
    return {
        # History: earlier runs of the session, read back from session storage.
        "add_history_to_context": s.session_storage,
        "num_history_runs": s.num_history_runs,
        "max_tool_calls_from_history": s.max_tool_calls_from_history or None,
        # Manual mode: memories are read into context, never written by the agent.
        # Agentic mode: the agent gets the tool to write them itself.
        "add_memories_to_context": memories_in_context,
        "enable_agentic_memory": s.agentic_memory,
        "update_memory_on_run": False,
        "enable_session_summaries": s.session_summaries,
        "compress_tool_results": s.compress_tool_results_threshold > 0,
        "compress_tool_results_limit": s.compress_tool_results_threshold or None,
        "stores_sessions": s.session_storage,
    }


def unsupported_settings(agno_settings: dict[str, Any] | None) -> dict[str, str]:
    s = MemorySettings.from_json(agno_settings)
    return {name: reason for name, reason in UNSUPPORTED.items() if getattr(s, name)}


def agno_agent_kwargs(
    agno_settings: dict[str, Any] | None,
    *,
    db_schema: str,
    db_url: str,
    tables: dict[str, str] | None = None,
) -> dict:
    """Keyword arguments for agno.agent.Agent(**kwargs), with the db on the agent's schema and
    its renamed tables (`tables`: PostgresDb's memory_table/session_table/runs_table)."""
    from agno.compression.manager import CompressionManager
    from agno.db.postgres import PostgresDb

    options = agent_options(agno_settings)
    limit = options.pop("compress_tool_results_limit")
    stores_sessions = options.pop("stores_sessions")
    kwargs: dict[str, Any] = dict(options)
    names = {key: tables[key] for key in TABLE_KEYS if (tables or {}).get(key)}
    kwargs["db"] = (
        PostgresDb(db_url=db_url, db_schema=db_schema, **names) if stores_sessions else None
    )
    if kwargs["compress_tool_results"]:
        kwargs["compression_manager"] = CompressionManager(compress_tool_results_limit=limit)
    return kwargs
