"""The pair every view starts with: the agent if the person may see it, and if they may write.

Two kinds of write: the runtime's rows (memories, sessions), which a read-only runtime refuses
whatever the role, and what the studio keeps about an agent in its own database (Memory-tab
settings, the bridge token, cost inputs, sensitive flags, exports), which only the role decides.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from agents.models import Agent
from memories.runtime.location import read_only_reason
from studio.sql_rows import fetch_one, select_list

VIEW_PERMISSION = "agents.view_agent"
WRITE_PERMISSION = "agents.operate_agent"


def can_write(request: HttpRequest) -> bool:
    """Whether this person's role may change things; the runtime's rows need more (below)."""
    return request.user.has_perm(WRITE_PERMISSION)


def agent_by_slug(slug: str) -> Agent | None:
    """Every agent page starts here, so the lookup is plain SQL (studio.sql_rows): the ORM
    spent longer compiling `Agent.objects.get(slug=…)` than Postgres spent answering it."""
    sql = f"SELECT {select_list(Agent)} FROM {Agent._meta.db_table} WHERE slug = %s"
    return fetch_one(Agent, sql, [slug])


def agent_for_user(request: HttpRequest, slug: str) -> tuple[Agent, bool]:
    """The agent and whether this person may change its runtime rows; 404 if unknown, 403 if
    not a viewer."""
    agent = agent_by_slug(slug)
    if agent is None:
        raise Http404("No agent has this address.")
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


def studio_agent_for_user(request: HttpRequest, slug: str) -> tuple[Agent, bool]:
    """For a change the studio keeps in its own database: the agent if the role allows it (a
    read-only runtime does not matter here), and whether its runtime rows may be changed too."""
    agent, writable = agent_for_user(request, slug)
    if not can_write(request):
        raise PermissionDenied("Your role can view these settings but not change them.")
    return agent, writable
