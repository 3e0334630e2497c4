"""Duplicates: repeated memories of one user or of every user of an agent, as the last search
of that scope found them, and removing them."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, can_write, rw_agent_for_user, studio_agent_for_user
from agents.models import Agent
from memories import actions, duplicates, reports, runtime
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
    """The groups as they are now: a removal checks what it removes against these, never
    against a stored search that agno's writes may have overtaken."""
    return duplicates.find_duplicates(
        agent,
        user_id=form.user_id_value,
        all_users=form.all_users,
        threshold=form.cleaned_data["threshold"],
        near=not form.cleaned_data.get("exact_only"),
    )


def _duplicates_page(
    request: HttpRequest, agent: Agent, writable: bool, form: DuplicatesForm
) -> HttpResponse:
    """The stored search of the scope asked for (one studio query, and one runtime read for
    its memories as they are now), whole or as the partial htmx polls."""
    scope = reports.DuplicateScope.from_form(form)
    stored = reports.duplicate_report(agent, scope)
    found = reports.duplicates_of(agent, stored)
    found.threshold = scope.threshold
    url = reverse("memories:duplicates", args=[agent.slug])
    context = {
        "agent": agent,
        "can_write": writable,
        "can_check": can_write(request),  # a search writes only the studio's report
        "form": form,
        "report": stored,
        "found": found,
        "all_users": form.all_users,
        "user_id": form.user_id_value,
        "threshold": scope.threshold,
        "near": scope.near,
        "scope_label": "every user" if form.all_users else user_label(form.user_id_value),
        "query": _scope_query(form),
        "poll_url": f"{url}?{_scope_query(form)}",
        "check_url": reverse("memories:search_duplicates", args=[agent.slug]),
    }
    return render(request, f"{PAGE}#report" if request.htmx else PAGE, context)


@require_GET
def duplicates_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The groups the last search of this scope found, the newest of each kept by default,
    and the tokens removal saves."""
    agent, writable = agent_for_user(request, slug)
    form = DuplicatesForm(request.GET)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    return _duplicates_page(request, agent, writable, form)


@require_POST
def search_duplicates(request: HttpRequest, slug: str) -> HttpResponse:
    """Search the scope again on the workers; the page polls until the search is done."""
    agent, writable = studio_agent_for_user(request, slug)
    form = DuplicatesForm(request.POST)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    actions.start_duplicate_search(
        actor=request.user, agent=agent, scope=reports.DuplicateScope.from_form(form)
    )
    if not request.htmx:
        flash(request, "The search runs in the background; this page shows it when it is done.")
        return redirect(f"{reverse('memories:duplicates', args=[agent.slug])}?{_scope_query(form)}")
    return _duplicates_page(request, agent, writable, form)


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
