"""An agent's trash: deleted memories kept for its trash_days, restored or deleted for good."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, rw_agent_for_user
from agents.models import Agent
from memories import actions, runtime, trash
from memories.forms import TrashPageForm, TrashSelectionForm
from studio.feedback import first_error, flash, toast
from studio.responses import bad_request, page_or_partial

TRASH_PAGE = "memories/trash.html"


def undo_for(agent: Agent, memory_ids: list[str]) -> dict[str, Any] | None:
    """What a delete's toast offers: the trash entries just made, or nothing without a trash."""
    trashed = trash.undo_ids(agent, memory_ids)
    if not trashed:
        return None
    return {"url": reverse("memories:restore_trash", args=[agent.slug]), "trashed": trashed}


def _context(agent: Agent, writable: bool, after: int | None = None) -> dict[str, Any]:
    return {"agent": agent, "can_write": writable, "page": trash.trash_page(agent, after=after)}


@require_GET
def trash_list(request: HttpRequest, slug: str) -> HttpResponse:
    agent, writable = agent_for_user(request, slug)
    form = TrashPageForm(request.GET)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    context = _context(agent, writable, form.cleaned_data["after"])
    return page_or_partial(request, TRASH_PAGE, context, {"trash": "trash"})


def _back(request: HttpRequest, agent: Agent, form: TrashSelectionForm) -> HttpResponse:
    """Where a plain form goes afterwards: the page the Undo came from, or the trash."""
    wanted = form.cleaned_data.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, {request.get_host()}):
        return redirect(wanted)
    return redirect("memories:trash", slug=agent.slug)


@require_POST
def restore_trash(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    form = TrashSelectionForm(request.POST)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    try:
        count = actions.restore_from_trash(
            actor=request.user, agent=agent, trashed_ids=form.cleaned_data["trashed"]
        )
    except (actions.TrashGone, actions.RestoredTwice) as error:
        return bad_request(request, error.message, status=409)
    except runtime.MemoryExists as error:
        return bad_request(request, error.message, status=409)
    message = f"{count} memor{'y' if count == 1 else 'ies'} restored."
    if not request.htmx:
        flash(request, message)
        return _back(request, agent, form)
    response = page_or_partial(request, f"{TRASH_PAGE}#trash", _context(agent, True), {})
    return toast(response, message)


@require_POST
def purge_trash(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    form = TrashSelectionForm(request.POST)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    try:
        count = actions.purge_trash(
            actor=request.user, agent=agent, trashed_ids=form.cleaned_data["trashed"]
        )
    except actions.TrashGone as error:
        return bad_request(request, error.message, status=409)
    message = f"{count} memor{'y' if count == 1 else 'ies'} deleted for good."
    if not request.htmx:
        flash(request, message)
        return redirect("memories:trash", slug=agent.slug)
    response = page_or_partial(request, f"{TRASH_PAGE}#trash", _context(agent, True), {})
    return toast(response, message)
