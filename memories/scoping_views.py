"""The user_id doctor: an agent's suspicious user_ids (as the last scoping check found them),
and moving memories to the right one."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, can_write, rw_agent_for_user, studio_agent_for_user
from agents.models import Agent
from memories import actions, reports, scoping
from memories.forms import MoveUserForm
from memories.users import user_label
from memories.views import user_url
from studio.feedback import first_error, flash
from studio.responses import bad_request

MOVE_PAGE = "memories/move.html"
PAGE = "memories/scoping.html"
ROWS_SHOWN = reports.SCOPING_ROWS  # those with a suggestion come first; the rest are a count
PAGE_ROWS = 100  # a page of them: 1,000 rows took a quarter of a second to draw


def _scoping_page(request: HttpRequest, agent: Agent, writable: bool) -> HttpResponse:
    """A page of the stored report (one studio query), whole or as the partial htmx polls."""
    start = request.GET.get("start", "0")
    # The length first: int() refuses a string of more than 4,300 digits with a ValueError.
    if (
        not start.isascii()
        or not start.isdigit()
        or len(start) > len(str(ROWS_SHOWN))
        or int(start) >= ROWS_SHOWN
    ):
        return bad_request(request, f"“start” is a row number from 0 to {ROWS_SHOWN - 1}.")
    report = reports.scoping_report(agent)
    problems = reports.problems_of(report)[:ROWS_SHOWN]
    # A link kept from a longer report (a check since found fewer): its last page instead.
    start = min(int(start), (max(len(problems), 1) - 1) // PAGE_ROWS * PAGE_ROWS)
    url = reverse("memories:scoping", args=[agent.slug])
    context = {
        "agent": agent,
        "can_write": writable,
        "can_check": can_write(request),  # a check writes only the studio's report
        "report": report,
        "problems": problems[start : start + PAGE_ROWS],
        "first_row": start + 1,
        "last_row": min(start + PAGE_ROWS, len(problems)),
        "previous_start": max(0, start - PAGE_ROWS) if start else None,
        "next_start": start + PAGE_ROWS if start + PAGE_ROWS < len(problems) else None,
        "kept": len(problems),
        "more": max(0, (report.total if report else 0) - len(problems)),
        "total": report.total if report else 0,
        "check_url": reverse("memories:check_scoping", args=[agent.slug]),
        "poll_url": f"{url}?start={start}" if start else url,  # polling keeps the page shown
    }
    return render(request, f"{PAGE}#report" if request.htmx else PAGE, context)


@require_GET
def scoping_problems(request: HttpRequest, slug: str) -> HttpResponse:
    """Every user_id no registered person has as this agent's key, with the likely person,
    as the last check found them."""
    agent, writable = agent_for_user(request, slug)
    return _scoping_page(request, agent, writable)


@require_POST
def check_scoping(request: HttpRequest, slug: str) -> HttpResponse:
    """Check every user_id again on the workers; the page polls until the check is done."""
    agent, writable = studio_agent_for_user(request, slug)
    actions.start_scoping_check(actor=request.user, agent=agent)
    if not request.htmx:
        flash(request, "The check runs in the background; this page shows it when it is done.")
        return redirect("memories:scoping", slug=agent.slug)
    return _scoping_page(request, agent, writable)


@require_GET
def move_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """What moving a user_id's memories to another does, before anything moves."""
    agent, can_write = agent_for_user(request, slug)
    form = MoveUserForm(request.GET)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    source, target = form.user_id_value, form.cleaned_data["to"]
    preview = scoping.preview_move(agent, source, target)
    suggestion, note = (None, "")
    if source:
        suggestion, note = scoping.RegisteredIndex(agent).suggest(source)
    context = {
        "agent": agent,
        "can_write": can_write,
        "preview": preview,
        "suggestion": suggestion if suggestion and suggestion.target == target else None,
        "note": note,
        "sessions": form.cleaned_data["sessions"],
        "source_label": user_label(source),
    }
    return render(request, MOVE_PAGE, context)


@require_POST
def move_user(request: HttpRequest, slug: str) -> HttpResponse:
    """Move now in one transaction, or hand a large move to the workers."""
    agent = rw_agent_for_user(request, slug)
    form = MoveUserForm(request.POST)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    source, target = form.user_id_value, form.cleaned_data["to"]
    sessions = form.cleaned_data["sessions"]
    preview = scoping.preview_move(agent, source, target)
    if not preview.memories and not (sessions and preview.sessions):
        return bad_request(request, f"{user_label(source)} has nothing to move.", status=409)
    if preview.runs_in_a_job:
        job = actions.start_move(
            actor=request.user,
            agent=agent,
            source=source,
            target=target,
            sessions=sessions,
            total=preview.memories,
        )
        flash(request, f"Moving {preview.memories:,} memories to {target}: a worker is on it.")
        return redirect(f"{reverse('memories:agent_jobs', args=[agent.slug])}#job-{job.pk}")
    moved = actions.move_user_memories(
        actor=request.user, agent=agent, source=source, target=target, sessions=sessions
    )
    extra = f" and {moved.sessions} sessions" if sessions else ""
    flash(request, f"Moved {moved.memories} memories{extra} to {target}.")
    return redirect(user_url(agent, target))
