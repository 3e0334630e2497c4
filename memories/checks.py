"""`manage.py check` reports each agent's runtime schema: missing, ready, partial or drifted."""

from __future__ import annotations

import sys
from typing import Any

from django.core import checks
from django.db import DatabaseError


@checks.register("runtime")
def check_agent_schemas(app_configs: Any = None, **kwargs: Any) -> list:
    # A warning, not an error: a drifted agent must not stop runserver or migrate for the rest.
    from agents.models import Agent
    from memories.runtime.schema import schema_state

    messages: list[checks.CheckMessage] = []
    try:
        agents = list(Agent.objects.order_by("slug"))
    except DatabaseError:
        return []  # no database yet, or not migrated: migrate reports that itself
    states = []
    for agent in agents:
        state = schema_state(agent)
        if state.status == "drifted":
            messages.append(
                checks.Warning(
                    f"Agent “{agent.slug}” (schema {agent.db_schema}): runtime tables drifted: "
                    f"{'; '.join(state.problems)}.",
                    hint="The runtime owns these tables; compare with agno-runtime-schema.sql.",
                    id="memories.W001",
                )
            )
        else:
            label = "missing (the agent has not run)" if state.status == "missing" else state.status
            states.append(f"{agent.slug} ({agent.db_schema}) {label}")
    # The healthy states are news only to someone who asked (manage.py check); every other
    # command would print them before its own output.
    if states and sys.argv[1:2] == ["check"]:
        messages.append(
            checks.Info("Agent schemas: " + "; ".join(states) + ".", id="memories.I001")
        )
    return messages
