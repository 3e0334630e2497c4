"""The sensitive-data finder: flagged memories agent-wide, the scan, and deleting them."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, can_write, rw_agent_for_user, studio_agent_for_user
from agents.models import Agent
from memories import actions, flags, runtime
from memories.forms import BulkDeleteForm
from memories.models import Job, SensitiveScan
from studio.feedback import first_error, flash, toast
from studio.responses import bad_request

SENSITIVE_PAGE = "memories/sensitive.html"


def _flagged_context(agent: Agent, can_write: bool, after: str | None) -> dict:
    """The flagged list with the scan's progress and the counts per kind."""
    page = flags.flagged_page(agent, after)
    state = SensitiveScan.objects.filter(agent=agent).first()
    running = state is not None and state.is_running
    return {
        "agent": agent,
        "can_write": can_write,
        "rows": page.rows,
        "next_cursor": page.next_cursor,
        "state": state,
        "counts": page.counts,
        # Linked only while the scan runs.
        "scan_job": (
            Job.objects.filter(agent=agent, kind=Job.Kind.SENSITIVE_SCAN).first()
            if running
            else None
        ),
    }


def _flagged(request: HttpRequest, agent: Agent, writable: bool) -> HttpResponse:
    """The whole page, or just the flagged list for htmx (the scan's polling included)."""
    try:
        context = _flagged_context(agent, writable, request.GET.get("after") or None)
    except runtime.InvalidCursor as error:
        return bad_request(request, error.message)
    context["can_scan"] = can_write(request)  # scanning writes only the studio's flags
    template = f"{SENSITIVE_PAGE}#flagged" if request.htmx else SENSITIVE_PAGE
    return render(request, template, context)


@require_GET
def sensitive(request: HttpRequest, slug: str) -> HttpResponse:
    agent, writable = agent_for_user(request, slug)
    return _flagged(request, agent, writable)


@require_POST
def scan_sensitive(request: HttpRequest, slug: str) -> HttpResponse:
    """Start the agent-wide scan on the workers; the list polls until it is done."""
    agent, writable = studio_agent_for_user(request, slug)  # flags are the studio's own
    actions.start_sensitive_scan(actor=request.user, agent=agent)
    if not request.htmx:
        flash(request, "The scan runs in the background; flagged memories appear as it goes.")
        return redirect("memories:sensitive", slug=agent.slug)
    return _flagged(request, agent, writable)


@require_POST
def delete_flagged(request: HttpRequest, slug: str) -> HttpResponse:
    """Delete flagged memories (one by click, or all selected); only flagged ones qualify."""
    agent = rw_agent_for_user(request, slug)
    data = request.POST.copy()
    data.setdefault("user_id", "-")
    form = BulkDeleteForm(data)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    try:
        count = actions.delete_flagged_memories(
            actor=request.user, agent=agent, memory_ids=form.cleaned_data["memory_ids"]
        )
    except actions.NotFlagged as error:
        return bad_request(request, error.message)
    message = f"{count} flagged memor{'y' if count == 1 else 'ies'} deleted."
    if not request.htmx:
        flash(request, message)
        return redirect("memories:sensitive", slug=agent.slug)
    context = {**_flagged_context(agent, True, None), "can_scan": True}
    return toast(render(request, f"{SENSITIVE_PAGE}#flagged", context), message)
