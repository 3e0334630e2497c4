"""Audit events for every write. They name what changed, never a memory's text."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from agents.models import Agent
from memories.models import AuditEvent


def record(
    actor: AbstractBaseUser | AnonymousUser | None,
    agent: Agent | None,
    action: str,
    *,
    user_id: str | None = "",
    memory_id: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    person = actor if actor is not None and actor.is_authenticated else None
    if user_id is None:
        # The runtime's rows without a user_id: the event says so rather than naming "".
        details = {**(details or {}), "user_id_null": True}
        user_id = ""
    return AuditEvent.objects.create(
        actor=person,
        actor_name=person.get_username() if person else "system",
        agent=agent,
        agent_slug=agent.slug if agent else "",
        action=action,
        user_id=user_id,
        memory_id=memory_id,
        details=details or {},
    )
