from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST, require_safe

from agents.access import agent_for_user, can_write, studio_agent_for_user
from agents.agno_bridge import TABLE_KEYS, agent_options, unsupported_settings
from agents.forms import DiscoverForm, MemoryTabForm, RegisterDiscoveredForm
from agents.models import Agent
from memories import actions, flags, runtime, tokens, users
from memories.context_cost import ENCODING_NAME
from memories.forms import UserSearchForm
from memories.runtime.discovery import discover_schemas
from memories.runtime.location import RuntimeConnectionMissing
from studio.feedback import first_error, flash, toast
from studio.responses import bad_request

logger = logging.getLogger(__name__)


@require_GET
def agent_list(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("agents.view_agent"):
        raise PermissionDenied("You need the Viewer or Editor role to see agents.")
    agents = list(Agent.objects.all())
    overviews = runtime.agent_overviews(agents)
    rows = [(agent, *_overview(agent, overviews[agent.pk])) for agent in agents]
    estimated = any(overview and overview.estimated for _, overview, _ in rows)
    return render(request, "agents/list.html", {"rows": rows, "estimated": estimated})


def _overview(
    agent: Agent, found: runtime.AgentOverview | Exception
) -> tuple[runtime.AgentOverview | None, str]:
    """An agent's counts, or why its runtime cannot be read now: one unreachable runtime
    (its own server down, its connection not configured) leaves the others listed."""
    if isinstance(found, RuntimeConnectionMissing):
        return None, str(found)
    if isinstance(found, Exception):
        logger.warning("Runtime of %s unreadable: %s", agent.slug, found)
        return None, (
            f"Its runtime connection “{agent.connection}” cannot be read right now; "
            "the other agents are unaffected."
        )
    return found, ""


@require_GET
def discover_agents(request: HttpRequest) -> HttpResponse:
    """Schemas in a runtime connection that hold agno's tables, registered or not."""
    if not request.user.has_perm("agents.view_agent"):
        raise PermissionDenied("You need the Viewer or Editor role to see agents.")
    names = list(settings.RUNTIME_CONNECTIONS)
    form = DiscoverForm(request.GET, connections=names)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    connection = form.cleaned_data["connection"]
    try:
        found = discover_schemas(connection)
    except DatabaseError:
        logger.warning("Discovery on %s failed", connection, exc_info=True)
        message = f"The runtime connection “{connection}” cannot be read right now."
        return bad_request(request, message, status=503)
    context = {
        "form": form,
        "connection": connection,
        "connections": names,
        "found": found,
        "can_register": can_write(request),
    }
    return render(request, "agents/discover.html", context)


@require_POST
def register_discovered(request: HttpRequest) -> HttpResponse:
    if not can_write(request):
        raise PermissionDenied("Your role can view agents but not register them.")
    form = RegisterDiscoveredForm(request.POST)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    data = form.cleaned_data
    if data["connection"] not in settings.RUNTIME_CONNECTIONS:
        return bad_request(request, f"There is no runtime connection “{data['connection']}”.")
    # Found again now: only a schema that holds agno's tables becomes an agent.
    found = {s.schema: s for s in discover_schemas(data["connection"])}.get(data["schema"])
    if found is None:
        return bad_request(request, f"No agno tables were found in “{data['schema']}”.", 404)
    if found.registered:
        return redirect(found.registered.get_absolute_url())
    try:
        agent = actions.register_agent(
            actor=request.user,
            connection=data["connection"],
            schema=found.schema,
            tables=found.tables,
            name=data["name"],
        )
    except actions.SchemaTaken as error:
        return bad_request(request, error.message, status=409)
    flash(request, f"{agent.name} is registered: its memories are below.")
    return redirect(agent.get_absolute_url())


def _users_context(request: HttpRequest, agent: Agent) -> dict:
    search = UserSearchForm(request.GET)
    if not search.is_valid():
        return {"search": search, "users": runtime.Page([]), "users_error": search.errors}
    data = search.cleaned_data
    try:
        if data["sort"] in ("tokens", "over"):
            page = tokens.heaviest_users(
                agent, after=data["after"] or None, over_budget=data["sort"] == "over"
            )
        else:
            page = users.agent_users(agent, after=data["after"] or None, prefix=data["q"])
    except runtime.InvalidCursor as error:
        return {"search": search, "users": runtime.Page([]), "users_error": error.message}
    return {
        "search": search,
        "users": page,
        "query": data["q"],
        "sort": data["sort"],
        # How the Tokens column counts, as memories.tokens and memories.users do.
        "encoding": ENCODING_NAME,
        "chars_per_token": users.CHARS_PER_TOKEN,
    }


@require_GET
def memory_tab(request: HttpRequest, slug: str) -> HttpResponse:
    agent, writable = agent_for_user(request, slug)
    context = {
        "agent": agent,
        "can_write": writable,
        "can_change_settings": can_write(request),
        **_users_context(request, agent),
    }
    status = 400 if context.get("users_error") else 200
    if request.htmx and request.htmx.target == "users":
        return render(request, "agents/memory_tab.html#users-table", context, status=status)
    context["form"] = MemoryTabForm.for_settings(agent.memory_settings)
    context["settings"] = agent.memory_settings
    context.update(_bridge_context(request, agent))
    return render(request, "agents/memory_tab.html", context, status=status)


RECENT_SHOWN = 10


@require_GET
def recent_memories(request: HttpRequest, slug: str) -> HttpResponse:
    """The newest memories across all users, polled while the Memory tab is visible: when
    nothing changed since `seen`, an empty 204 (htmx swaps nothing)."""
    agent, can_write = agent_for_user(request, slug)
    memories = runtime.recent_memories(agent, RECENT_SHOWN)
    newest = runtime.encode_cursor(memories[0].sort_key, memories[0].memory_id) if memories else ""
    if request.htmx and request.GET.get("seen") == newest:
        return HttpResponse(status=204)
    kinds = flags.flags_for(agent, [m.memory_id for m in memories])
    context = {
        "agent": agent,
        # Flagged ones are masked as on the sensitive list; only an Editor gets the reveal.
        "can_write": can_write,
        "recent": [(memory, kinds.get(memory.memory_id)) for memory in memories],
        "seen": newest,
    }
    return render(request, "agents/memory_tab.html#recent", context)


@require_POST
def update_memory_settings(request: HttpRequest, slug: str) -> HttpResponse:
    agent, writable = studio_agent_for_user(request, slug)
    form = MemoryTabForm(request.POST)
    if not form.is_valid():
        context = {
            "agent": agent,
            "can_write": writable,
            "can_change_settings": True,
            "form": form,
            "settings": agent.memory_settings,
        }
        if request.htmx:
            response = render(request, "agents/memory_tab.html#settings-panel", context, status=422)
            return toast(response, "Nothing was saved: " + first_error(form), "error")
        context.update(_users_context(request, agent))
        return render(request, "agents/memory_tab.html", context, status=422)

    change = actions.change_settings(
        actor=request.user,
        agent=agent,
        requested=form.requested_settings(),
        shown=form.shown_settings(),
    )
    level = "warning" if change.notes else "success"
    if not request.htmx:
        flash(request, change.message, level)
        return redirect("agents:memory_tab", slug=agent.slug)
    context = {
        "agent": agent,
        "can_write": writable,
        "can_change_settings": True,
        "form": MemoryTabForm.for_settings(change.settings),
        "settings": change.settings,
        "notes": change.notes,
    }
    response = render(request, "agents/memory_tab.html#settings-panel", context)
    return toast(response, change.message, level)


@never_cache  # the answer shows the new token: no cache or back button may keep it
@require_POST
def rotate_bridge_token(request: HttpRequest, slug: str) -> HttpResponse:
    agent, writable = studio_agent_for_user(request, slug)
    token = actions.rotate_bridge_token(actor=request.user, agent=agent)
    context = {
        "agent": agent,
        "can_write": writable,
        "can_change_settings": True,
        "new_token": token,
        **_bridge_context(request, agent),
    }
    if request.htmx:
        response = render(request, "agents/memory_tab.html#bridge-panel", context)
        return toast(response, "New token made. Copy it now: it is shown only once.", "warning")
    return render(request, "agents/bridge_token.html", context)


def _bridge_context(request: HttpRequest, agent: Agent) -> dict:
    return {
        "bridge_url": request.build_absolute_uri(reverse("agents:settings_api", args=[agent.slug])),
        "bridge_options": agent_options(agent.agno_settings),
        "bridge_unsupported": unsupported_settings(agent.agno_settings),
    }


@never_cache  # an answer to one agent's token, for no cache to keep
@require_safe  # GET and HEAD
def settings_api(request: HttpRequest, slug: str) -> HttpResponse:
    """Read-only settings for running agents, authenticated by the agent's bearer token."""
    agent = Agent.objects.filter(slug=slug).first()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if agent is None or scheme.lower() != "bearer" or not agent.bridge_token_matches(token.strip()):
        # One answer for unknown agents and wrong tokens: no probing which slugs exist.
        response = JsonResponse(
            {"error": "Send the agent's settings token as `Authorization: Bearer <token>`."},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="memory-studio"'
        return response
    return JsonResponse(
        {
            "agent": agent.slug,
            "name": agent.name,
            "db_schema": agent.db_schema,
            # PostgresDb's table names where the agent renames them ({} for agno's defaults).
            "tables": {key: getattr(agent, key) for key in TABLE_KEYS if getattr(agent, key, "")},
            "user_id_kind": agent.user_id_kind,
            "agno_settings": agent.agno_settings,
            "agent_kwargs": agent_options(agent.agno_settings),
            "unsupported": unsupported_settings(agent.agno_settings),
            "updated_at": agent.updated_at.isoformat(),
        },
        json_dumps_params={"indent": 2},
    )
