from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, rw_agent_for_user
from agents.agno_bridge import agent_options, unsupported_settings
from agents.forms import MemorySettingsForm
from agents.models import Agent
from memories import actions, runtime, tokens, users
from memories.context_cost import ENCODING_NAME
from memories.forms import UserSearchForm
from studio.feedback import first_error, flash, toast


@require_GET
def agent_list(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("agents.view_agent"):
        raise PermissionDenied("You need the Viewer or Editor role to see agents.")
    rows = [(agent, runtime.agent_overview(agent)) for agent in Agent.objects.all()]
    estimated = any(overview.estimated for _, overview in rows)
    return render(request, "agents/list.html", {"rows": rows, "estimated": estimated})


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
            tokens.attach_counted_tokens(agent, page.items)
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
    agent, can_write = agent_for_user(request, slug)
    context = {"agent": agent, "can_write": can_write, **_users_context(request, agent)}
    status = 400 if context.get("users_error") else 200
    if request.htmx and request.htmx.target == "users":
        return render(request, "agents/memory_tab.html#users-table", context, status=status)
    context["form"] = MemorySettingsForm.for_settings(agent.memory_settings)
    context["settings"] = agent.memory_settings
    context.update(_bridge_context(request, agent))
    return render(request, "agents/memory_tab.html", context, status=status)


@require_POST
def update_memory_settings(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    form = MemorySettingsForm(request.POST)
    if not form.is_valid():
        context = {
            "agent": agent,
            "can_write": True,
            "form": form,
            "settings": agent.memory_settings,
        }
        if request.htmx:
            response = render(request, "agents/memory_tab.html#settings-panel", context, status=422)
            return toast(response, "Nothing was saved: " + first_error(form), "error")
        context.update(_users_context(request, agent))
        return render(request, "agents/memory_tab.html", context, status=422)

    change = actions.change_settings(
        actor=request.user, agent=agent, requested=form.requested_settings()
    )
    level = "warning" if change.notes else "success"
    if not request.htmx:
        flash(request, change.message, level)
        return redirect("agents:memory_tab", slug=agent.slug)
    context = {
        "agent": agent,
        "can_write": True,
        "form": MemorySettingsForm.for_settings(change.settings),
        "settings": change.settings,
        "notes": change.notes,
    }
    response = render(request, "agents/memory_tab.html#settings-panel", context)
    return toast(response, change.message, level)


@never_cache  # the answer shows the new token: no cache or back button may keep it
@require_POST
def rotate_bridge_token(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    token = actions.rotate_bridge_token(actor=request.user, agent=agent)
    context = {
        "agent": agent,
        "can_write": True,
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


@require_GET
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
            "user_id_kind": agent.user_id_kind,
            "agno_settings": agent.agno_settings,
            "agent_kwargs": agent_options(agent.agno_settings),
            "unsupported": unsupported_settings(agent.agno_settings),
            "updated_at": agent.updated_at.isoformat(),
        },
        json_dumps_params={"indent": 2},
    )
