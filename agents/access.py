"""The pair every view starts with: the agent if the person may see it, and if they may write."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from agents.models import Agent
from memories.runtime.location import read_only_reason

VIEW_PERMISSION = "agents.view_agent"
WRITE_PERMISSION = "agents.operate_agent"


def can_write(request: HttpRequest) -> bool:
    return request.user.has_perm(WRITE_PERMISSION)


def agent_for_user(request: HttpRequest, slug: str) -> tuple[Agent, bool]:
    """The agent and whether this person may change it; 404 if unknown, 403 if not a viewer."""
    agent = get_object_or_404(Agent, slug=slug)
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied("You need the Viewer or Editor role to see agents.")
    writable = can_write(request)
    if writable:
        # A read-only runtime hides the write controls and says why, whatever the role.
        agent.read_only_reason = read_only_reason(agent)
        writable = not agent.read_only_reason
    return agent, writable


def rw_agent_for_user(request: HttpRequest, slug: str) -> Agent:
    agent, writable = agent_for_user(request, slug)
    if not writable:
        reason = getattr(agent, "read_only_reason", "")
        raise PermissionDenied(reason or "Your role can view memories but not change them.")
    return agent
