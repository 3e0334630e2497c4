"""The database router: runtime models go where the agent being read lives.

`in_agent_schema` sets the current runtime alias for the block it runs; the unmanaged runtime
models (memories, sessions, runs) follow it. Every studio table lives in "default" only, and
`migrate` creates nothing in a runtime database.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

current_runtime_alias: ContextVar[str | None] = ContextVar("current_runtime_alias", default=None)


def is_runtime_model(model: type) -> bool:
    return getattr(model, "is_runtime_table", False)


class RuntimeRouter:
    def db_for_read(self, model: type, **hints: Any) -> str | None:
        if is_runtime_model(model):
            return current_runtime_alias.get() or "default"
        return None

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        return self.db_for_read(model, **hints)

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"
