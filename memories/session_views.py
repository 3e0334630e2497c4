"""A user's sessions, one session's transcript, and deleting a session with its runs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, rw_agent_for_user
from memories import actions, runtime
from memories.forms import SessionIdForm
from memories.views import NO_USER, user_id_in, user_url
from studio.feedback import flash, toast
from studio.responses import bad_request, page_or_partial

NO_SESSION = "Say which session: the link is missing its session_id."


def session_id_in(request: HttpRequest) -> str | None:
    """The session a URL names, in its query string (forms post to that URL)."""
    form = SessionIdForm(request.GET)
    return form.cleaned_data["session_id"] if form.is_valid() else None


@require_GET
def user_sessions(request: HttpRequest, slug: str) -> HttpResponse:
    agent, can_write = agent_for_user(request, slug)
    key = user_id_in(request.GET)
    if key is None:
        return bad_request(request, NO_USER)
    user_id = key.user_id
    try:
        page = runtime.user_sessions(agent, user_id, after=request.GET.get("after") or None)
    except runtime.InvalidCursor as error:
        return bad_request(request, error.message)
    context = {
        "agent": agent,
        "user_id": user_id,
        "page": page,
        "can_write": can_write,
        "next_url": user_url(agent, user_id, "memories:sessions", after=page.next_cursor or ""),
        "user_url": user_url(agent, user_id),
    }
    return page_or_partial(
        request, "memories/sessions.html", context, {"session-list": "session-list"}
    )


@require_GET
def transcript(request: HttpRequest, slug: str) -> HttpResponse:
    agent, can_write = agent_for_user(request, slug)
    session_id = session_id_in(request)
    if session_id is None:
        return bad_request(request, NO_SESSION)
    with runtime.in_agent_schema(agent):
        session = runtime.get_session(agent, session_id)
        runs = runtime.session_runs(agent, session_id) if session else []
    if session is None:
        message = "No such session in this agent: it may have been deleted."
        return bad_request(request, message, status=404)
    context = {
        "agent": agent,
        "can_write": can_write,
        "session": session,
        "runs": runs,
        "user_url": user_url(agent, session.user_id),
    }
    return render(request, "memories/transcript.html", context)


@require_POST
def delete_session(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    session_id = session_id_in(request)
    if session_id is None:
        return bad_request(request, NO_SESSION)
    try:
        user_id, runs = actions.delete_session(
            actor=request.user, agent=agent, session_id=session_id
        )
    except runtime.SessionNotFound as error:
        return bad_request(request, error.message, status=404)
    message = f"Session deleted with its {runs} run{'s' if runs != 1 else ''}."
    if request.htmx:
        return toast(HttpResponse(""), message)
    flash(request, message)
    return redirect(user_url(agent, user_id, "memories:sessions"))
