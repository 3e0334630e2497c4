"""Duplicates: repeated memories of one user or of every user of an agent, and removing them."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, rw_agent_for_user
from agents.models import Agent
from memories import actions, duplicates, runtime
from memories.forms import DuplicatesForm, RemoveDuplicatesForm
from memories.trash_views import undo_for
from memories.users import user_label
from studio.feedback import first_error, flash
from studio.responses import bad_request

PAGE = "memories/duplicates.html"


def _scope_query(form: DuplicatesForm) -> str:
    """The page's own query, so a removal comes back to what the person was looking at."""
    params: dict[str, Any] = {"threshold": form.cleaned_data["threshold"]}
    if form.cleaned_data.get("no_user_id"):
        params["no_user_id"] = "1"
    elif not form.all_users:
        params["user_id"] = form.cleaned_data["user_id"]
    if form.cleaned_data.get("exact_only"):
        params["exact_only"] = "1"
    return urlencode(params)


def _report(agent: Agent, form: DuplicatesForm) -> duplicates.DuplicateReport:
    return duplicates.find_duplicates(
        agent,
        user_id=form.user_id_value,
        all_users=form.all_users,
        threshold=form.cleaned_data["threshold"],
        near=not form.cleaned_data.get("exact_only"),
    )


@require_GET
def duplicates_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The groups, the newest of each kept by default, and the tokens removal saves."""
    agent, can_write = agent_for_user(request, slug)
    form = DuplicatesForm(request.GET)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    context = {
        "agent": agent,
        "can_write": can_write,
        "form": form,
        "report": _report(agent, form),
        "all_users": form.all_users,
        "user_id": form.user_id_value,
        "scope_label": "every user" if form.all_users else user_label(form.user_id_value),
        "query": _scope_query(form),
    }
    return render(request, PAGE, context)


@require_POST
def remove_duplicates(request: HttpRequest, slug: str) -> HttpResponse:
    """Remove the chosen repeats, the groups found again now so nothing stale is removed."""
    agent = rw_agent_for_user(request, slug)
    form = RemoveDuplicatesForm(request.POST)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    merge = form.cleaned_data["merge_topics"]
    try:
        removals = duplicates.plan_removal(
            _report(agent, form), form.cleaned_data["remove"], merge_topics=merge
        )
        removed = actions.remove_duplicates(
            actor=request.user, agent=agent, removals=removals, merge_topics=merge
        )
    except duplicates.RemovalRefused as error:
        return bad_request(request, str(error), status=409)
    except (runtime.ForeignMemories, runtime.StaleMemory, runtime.MemoryNotFound) as error:
        return bad_request(
            request, f"{error.message} Nothing was removed; look at the groups again.", status=409
        )
    saved = sum(duplicates.line_tokens(m) for r in removals for m in r.remove)
    undo = undo_for(agent, [m.memory_id for r in removals for m in r.remove])
    flash(
        request,
        f"Removed {removed} repeated memories, saving about {saved:,} tokens per turn.",
        undo=undo,
    )
    return redirect(f"{reverse('memories:duplicates', args=[agent.slug])}?{_scope_query(form)}")
