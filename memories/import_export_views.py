"""Moving memories in and out (JSON Lines export, checked import) and agent-wide search."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from agents.access import agent_for_user, rw_agent_for_user
from agents.models import Agent
from memories import actions, import_export, runtime
from memories.forms import MAX_TOPICS, ImportForm, UserSearchForm
from memories.views import UserKey, page_url, user_id_in
from studio.feedback import first_error, flash
from studio.responses import bad_request, page_or_partial


@require_GET
def export_memories(request: HttpRequest, slug: str) -> HttpResponse:
    agent, _ = agent_for_user(request, slug)
    # One user's memories (NULL and empty user_ids included) when the link names one.
    one_user = "user_id" in request.GET or "no_user_id" in request.GET
    key = user_id_in(request.GET) if one_user else UserKey(None)
    if key is None:
        return bad_request(request, "That user_id cannot be exported: it is too long or malformed.")
    user_id = key.user_id
    actions.export_started(actor=request.user, agent=agent, user_id=user_id)
    response = StreamingHttpResponse(
        import_export.export_lines(agent, user_id, one_user=one_user),
        content_type="application/x-ndjson; charset=utf-8",
    )
    name = f"{agent.slug}-user-memories.jsonl" if one_user else f"{agent.slug}-memories.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_http_methods(["GET", "POST"])
def import_memories(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    form = ImportForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"agent": agent, "form": form, "max_topics": MAX_TOPICS}
    if request.method == "GET" or not form.is_valid():
        status = 200 if request.method == "GET" else 422
        return render(request, "memories/import.html", context, status=status)
    upload = form.cleaned_data["file"]
    # A large file is always written by the workers: no request holds a big transaction.
    large = upload.size > settings.IMPORT_IN_BACKGROUND_BYTES
    if (form.cleaned_data["background"] or large) and not form.cleaned_data["dry_run"]:
        return _import_in_background(request, agent, form, context)
    try:
        report = actions.import_memories(
            actor=request.user,
            agent=agent,
            data=upload.read(),
            filename=upload.name,
            user_id=form.cleaned_data["user_id"] or None,
            valid_rows_only=form.cleaned_data["valid_rows_only"],
            dry_run=form.cleaned_data["dry_run"],
        )
    except import_export.ImportFileError as error:
        form.add_error("file", str(error))
        return render(request, "memories/import.html", context, status=422)
    context["report"] = report
    status = 200 if report.written or report.ok else 422
    return render(request, "memories/import.html", context, status=status)


def _import_in_background(
    request: HttpRequest, agent: Agent, form: ImportForm, context: dict[str, Any]
) -> HttpResponse:
    """Check every row now; the workers write the accepted ones in batches."""
    upload = form.cleaned_data["file"]
    try:
        report, job = actions.start_import(
            actor=request.user,
            agent=agent,
            data=upload.read(),
            filename=upload.name,
            user_id=form.cleaned_data["user_id"] or None,
            valid_rows_only=form.cleaned_data["valid_rows_only"],
        )
    except import_export.ImportFileError as error:
        form.add_error("file", str(error))
        return render(request, "memories/import.html", context, status=422)
    if job is None:  # rejected rows and no "valid rows only": nothing queued
        context["report"] = report
        return render(request, "memories/import.html", context, status=422)
    flash(request, f"Importing {len(report.accepted):,} memories in the background.")
    return redirect(f"{reverse('memories:agent_jobs', args=[agent.slug])}#job-{job.pk}")


@require_GET
def search_memories(request: HttpRequest, slug: str) -> HttpResponse:
    """Search memory text across every user of an agent."""
    agent, can_write = agent_for_user(request, slug)
    form = UserSearchForm(request.GET)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    query, after = form.cleaned_data["q"], form.cleaned_data["after"] or None
    try:
        page = runtime.search_memories(agent, query, after=after)
    except runtime.InvalidCursor as error:
        return bad_request(request, error.message)
    context = {
        "agent": agent,
        "can_write": can_write,
        "query": query,
        "page": page,
        "next_url": page_url("memories:search", agent, q=query, after=page.next_cursor or ""),
    }
    return page_or_partial(
        request, "memories/search.html", context, {"search-results": "search-results"}
    )
