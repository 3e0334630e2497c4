from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.access import agent_for_user, can_write, rw_agent_for_user
from agents.models import Agent
from memories import audit, hygiene, runtime, transfer
from memories.audit_log import audit_page
from memories.forms import (
    BulkDeleteForm,
    EditMemoryForm,
    EndUserForm,
    ForgetUserForm,
    ImportForm,
    MemoryFilterForm,
    MemoryForm,
    UserForm,
    UserSearchForm,
)
from memories.models import AuditEvent, Memory
from memories.sensitive import KINDS
from studio.feedback import first_error, flash, toast

USER_PAGE = "memories/user.html"


def page_url(name: str, agent: Agent, **params: str) -> str:
    """A page's URL with its query; user_ids of any shape survive the round trip."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{reverse(name, args=[agent.slug])}?{query}"


def user_url(agent: Agent, user_id: str, **params: str) -> str:
    return page_url("memories:user", agent, user_id=user_id, **params)


def _bad_request(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    if request.htmx:
        return toast(
            HttpResponse(message, status=status, content_type="text/plain"), message, "error"
        )
    return render(request, "error.html", {"message": message, "status": status}, status=status)


def _user_id(data: QueryDict) -> str | None:
    form = UserForm(data)
    return form.cleaned_data["user_id"] if form.is_valid() else None


def _user_context(request: HttpRequest, agent: Agent, can_write: bool, user_id: str) -> dict:
    """Everything the user page shows besides the memory list itself."""
    summary = runtime.user_summary(agent, user_id)
    registered, other_kind = runtime.registered_user(agent, user_id)
    return {
        "agent": agent,
        "can_write": can_write,
        "user_id": user_id,
        "summary": summary,
        "person": registered,
        "other_kind_person": other_kind,
        "timezone": (registered or other_kind).timezone if (registered or other_kind) else "",
        "sorts": runtime.MEMORY_SORTS,
        **_row_urls(agent, user_id),
    }


def _row_urls(agent: Agent, user_id: str) -> dict[str, Any]:
    """Built once per page: rows append the memory_id rather than reversing four URLs each."""
    return {
        "memory_base": reverse("memories:row", args=[agent.slug, "-"])[:-2],
        "user_query": urlencode({"user_id": user_id}),
    }


def _list_context(
    request: HttpRequest, agent: Agent, can_write: bool, user_id: str, filters: dict
) -> dict:
    """A page of the list under `filters`, with the user's summary: one schema switch in all."""
    f = {
        "q": filters.get("q", ""),
        "topic": filters.get("topic", ""),
        "sort": filters.get("sort") or "-updated",
        "after": filters.get("after", ""),
        "sensitive": bool(filters.get("sensitive")),
    }
    # The sensitive filter scans this user's memories now, so it is never out of date.
    flags = hygiene.scan_user(agent, user_id) if f["sensitive"] else {}
    with runtime.reach(agent):
        page = runtime.user_memories(
            agent,
            user_id,
            after=f["after"] or None,
            search=f["q"],
            topic=f["topic"],
            sort=f["sort"],
            only_ids=list(flags) if f["sensitive"] else None,
        )
        context = _user_context(request, agent, can_write, user_id)
    next_url = user_url(
        agent,
        user_id,
        q=f["q"],
        topic=f["topic"],
        sort=f["sort"],
        after=page.next_cursor or "",
        sensitive="1" if f["sensitive"] else "",
    )
    return {
        **context,
        "page": page,
        "filters": f,
        "filtered": bool(f["q"] or f["topic"] or f["sensitive"]),
        "next_url": next_url,
        "flags": {memory_id: [KINDS[k] for k in kinds] for memory_id, kinds in flags.items()},
    }


def _is_unknown_user(context: dict) -> bool:
    summary = context["summary"]
    known = context["person"] or context["other_kind_person"]
    return not known and not summary.memory_count and not summary.session_count


@require_GET
def user_memories(request: HttpRequest, slug: str) -> HttpResponse:
    agent, can_write = agent_for_user(request, slug)
    user_id = _user_id(request.GET)
    if user_id is None:
        return _bad_request(request, "Say which user: the link is missing its user_id.")
    filters = MemoryFilterForm(request.GET)
    if not filters.is_valid():
        return _bad_request(request, first_error(filters))
    try:
        context = _list_context(request, agent, can_write, user_id, filters.cleaned_data)
    except runtime.InvalidCursor as error:
        return _bad_request(request, error.message)
    if _is_unknown_user(context):
        message = (
            f"No memories, sessions or registration for user_id “{user_id}” in {agent.name}. "
            "Check the spelling, or register the user to seed memories."
        )
        return render(request, "error.html", {"status": 404, "message": message}, status=404)
    if request.htmx and request.htmx.target == "memory-list":
        return render(request, f"{USER_PAGE}#memory-list", context)
    context["add_form"] = MemoryForm()
    return render(request, USER_PAGE, context)


@require_GET
def memory_topics(request: HttpRequest, slug: str) -> HttpResponse:
    """The topic filter's options, fetched when the operator reaches for the filter."""
    agent, _ = agent_for_user(request, slug)
    user_id = _user_id(request.GET)
    if user_id is None:
        return _bad_request(request, "Say which user: the link is missing its user_id.")
    context = {
        "topics": runtime.memory_topics(agent, user_id),
        "current": request.GET.get("topic", ""),
    }
    return render(request, f"{USER_PAGE}#topic-options", context)


@require_POST
def add_memory(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    user_id = _user_id(request.POST)
    if user_id is None:
        return _bad_request(request, "Say which user: the form is missing its user_id.")
    form = MemoryForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            response = render(
                request,
                f"{USER_PAGE}#add-form",
                {"agent": agent, "user_id": user_id, "add_form": form},
                status=422,
            )
            response["HX-Retarget"] = "#add-form"
            response["HX-Reswap"] = "outerHTML"
            return toast(response, "Nothing was added: " + first_error(form), "error")
        context = _user_context(request, agent, True, user_id)
        context.update(add_form=form, page=runtime.Page([]), filters={}, show_add=True)
        return render(request, USER_PAGE, context, status=422)
    data = form.cleaned_data
    with transaction.atomic():
        memory, created_tables = runtime.add_memory(
            agent, user_id, text=data["text"], topics=data["topics"], input_text=data["input"]
        )
        if created_tables:
            audit.record(request.user, agent, AuditEvent.Action.TABLES_CREATED)
        audit.record(
            request.user,
            agent,
            AuditEvent.Action.MEMORY_ADDED,
            user_id=user_id,
            memory_id=memory.memory_id,
            details={"topics": len(data["topics"]), "characters": len(data["text"])},
        )
    hygiene.refresh_user_tokens(agent, user_id)
    message = "Memory added." + (
        " The agent's runtime tables were created for it." if created_tables else ""
    )
    if request.htmx:
        context = _list_context(request, agent, True, user_id, {})
        context["add_form"] = MemoryForm()
        return toast(render(request, f"{USER_PAGE}#list-changed", context), message)
    flash(request, message)
    return redirect(user_url(agent, user_id))


def _row_context(agent: Agent, user_id: str, memory: Memory, can_write: bool) -> dict:
    registered, other_kind = runtime.registered_user(agent, user_id)
    person = registered or other_kind
    return {
        "agent": agent,
        "user_id": user_id,
        "memory": memory,
        "can_write": can_write,
        "timezone": person.timezone if person else "",
        **_row_urls(agent, user_id),
    }


@require_GET
def memory_row(request: HttpRequest, slug: str, memory_id: str) -> HttpResponse:
    """One row as shown in the list: what Cancel puts back after an inline edit."""
    agent, can_write = agent_for_user(request, slug)
    user_id = _user_id(request.GET)
    if user_id is None:
        return _bad_request(request, "Say which user: the link is missing its user_id.")
    try:
        memory = runtime.get_memory(agent, user_id, memory_id)
    except runtime.MemoryNotFound as error:
        return _bad_request(request, error.message, status=404)
    if not request.htmx:
        return redirect(user_url(agent, user_id))
    return render(
        request, f"{USER_PAGE}#memory-row", _row_context(agent, user_id, memory, can_write)
    )


@require_http_methods(["GET", "POST"])
def edit_memory(request: HttpRequest, slug: str, memory_id: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    data = request.POST if request.method == "POST" else request.GET
    user_id = _user_id(data)
    if user_id is None:
        return _bad_request(request, "Say which user: the link is missing its user_id.")
    try:
        memory = runtime.get_memory(agent, user_id, memory_id)
    except runtime.MemoryNotFound as error:
        return _bad_request(request, error.message, status=404)
    context = _row_context(agent, user_id, memory, True)
    if request.method == "GET":
        context["form"] = EditMemoryForm(
            initial={
                "text": memory.text,
                "topics": ", ".join(memory.topic_list),
                "version": runtime.memory_version(memory),
            }
        )
        return _render_edit(request, context)

    form = EditMemoryForm(request.POST)
    if not form.is_valid():
        context["form"] = form
        return toast(
            _render_edit(request, context, status=422), "Not saved: " + first_error(form), "error"
        )
    try:
        with transaction.atomic():
            memory = runtime.edit_memory(
                agent,
                user_id,
                memory_id,
                text=form.cleaned_data["text"],
                topics=form.cleaned_data["topics"],
                version=form.cleaned_data["version"],
            )
            audit.record(
                request.user,
                agent,
                AuditEvent.Action.MEMORY_EDITED,
                user_id=user_id,
                memory_id=memory_id,
                details={"topics": len(form.cleaned_data["topics"])},
            )
    except runtime.MemoryNotFound as error:
        return _bad_request(request, error.message, status=404)
    except runtime.StaleEdit as stale:
        # Show what is there now, keep what the person typed, and let them decide again.
        current = stale.current
        context.update(
            memory=current,
            stale=True,
            form=EditMemoryForm(
                initial={
                    "text": form.cleaned_data["text"],
                    "topics": ", ".join(form.cleaned_data["topics"]),
                    "version": runtime.memory_version(current),
                }
            ),
        )
        return toast(_render_edit(request, context, status=409), stale.message, "error")
    hygiene.refresh_user_tokens(agent, user_id)
    if request.htmx:
        context["memory"] = memory
        return toast(render(request, f"{USER_PAGE}#memory-row", context), "Memory saved.")
    flash(request, "Memory saved.")
    return redirect(user_url(agent, user_id))


def _render_edit(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{USER_PAGE}#memory-edit-row", context, status=status)
    return render(request, "memories/edit.html", context, status=status)


@require_POST
def delete_memory(request: HttpRequest, slug: str, memory_id: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    user_id = _user_id(request.POST)
    if user_id is None:
        return _bad_request(request, "Say which user: the form is missing its user_id.")
    try:
        with transaction.atomic():
            runtime.delete_memory(agent, user_id, memory_id)
            audit.record(
                request.user,
                agent,
                AuditEvent.Action.MEMORY_DELETED,
                user_id=user_id,
                memory_id=memory_id,
            )
    except runtime.MemoryNotFound as error:
        return _bad_request(request, error.message, status=404)
    hygiene.refresh_user_tokens(agent, user_id)
    if request.htmx:
        context = _user_context(request, agent, True, user_id)
        return toast(render(request, f"{USER_PAGE}#memory-deleted", context), "Memory deleted.")
    flash(request, "Memory deleted.")
    return redirect(user_url(agent, user_id))


@require_POST
def bulk_delete(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    form = BulkDeleteForm(request.POST)
    if not form.is_valid():
        return _bad_request(request, first_error(form))
    user_id, ids = form.cleaned_data["user_id"], form.cleaned_data["memory_ids"]
    if not form.cleaned_data["confirmed"]:
        # Without JavaScript the count is confirmed on a page of its own.
        with runtime.reach(agent) as tables:
            chosen = (
                list(Memory.objects.filter(memory_id__in=ids, user_id=user_id))
                if tables.memories
                else []
            )
        return render(
            request,
            "memories/confirm_bulk.html",
            {
                "agent": agent,
                "user_id": user_id,
                "memories": chosen,
                "ids": ids,
                "back_url": user_url(agent, user_id),
            },
        )
    try:
        with transaction.atomic():
            count = runtime.delete_memories(agent, user_id, ids)
            audit.record(
                request.user,
                agent,
                AuditEvent.Action.MEMORIES_BULK_DELETED,
                user_id=user_id,
                details={"count": count, "memory_ids": ids},
            )
    except runtime.ForeignMemories as error:
        return _bad_request(request, error.message)
    hygiene.refresh_user_tokens(agent, user_id)
    message = f"{count} memor{'y' if count == 1 else 'ies'} deleted."
    if not request.htmx:
        flash(request, message)
        return redirect(user_url(agent, user_id))
    filters = MemoryFilterForm(request.POST)
    filtered = {**filters.cleaned_data, "after": ""} if filters.is_valid() else {}
    context = _list_context(request, agent, True, user_id, filtered)
    return toast(render(request, f"{USER_PAGE}#list-changed", context), message)


@require_http_methods(["GET", "POST"])
def register_user(request: HttpRequest, slug: str) -> HttpResponse:
    """Register the person behind a user_id, so the dashboard (and the operator) know who it is."""
    agent = rw_agent_for_user(request, slug)
    if not request.user.has_perm("memories.add_enduser"):
        raise PermissionDenied("Your role cannot register users.")
    user_id = _user_id(request.GET if request.method == "GET" else request.POST) or ""
    keyed_by_email = agent.user_id_kind == Agent.UserIdKind.EMAIL
    if request.method == "GET":
        initial = {"email": user_id} if keyed_by_email else {"external_id": user_id}
        form = EndUserForm(initial=initial)
    else:
        form = EndUserForm(request.POST)
        if form.is_valid():
            with transaction.atomic():
                person = form.save()
                audit.record(
                    request.user,
                    agent,
                    AuditEvent.Action.USER_REGISTERED,
                    user_id=user_id,
                    details={"email": person.email},
                )
            flash(request, f"{person.email} is registered.")
            return redirect(user_url(agent, user_id or person.email))
    status = 422 if form.errors else 200
    context = {"agent": agent, "form": form, "user_id": user_id}
    return render(request, "memories/register.html", context, status=status)


@require_GET
def user_sessions(request: HttpRequest, slug: str) -> HttpResponse:
    agent, can_write = agent_for_user(request, slug)
    user_id = _user_id(request.GET)
    if user_id is None:
        return _bad_request(request, "Say which user: the link is missing its user_id.")
    after = request.GET.get("after") or None
    try:
        page = runtime.user_sessions(agent, user_id, after=after)
    except runtime.InvalidCursor as error:
        return _bad_request(request, error.message)
    context = {
        "agent": agent,
        "user_id": user_id,
        "page": page,
        "can_write": can_write,
        "next_url": page_url(
            "memories:sessions", agent, user_id=user_id, after=page.next_cursor or ""
        ),
        "user_url": user_url(agent, user_id),
    }
    if request.htmx and request.htmx.target == "session-list":
        return render(request, "memories/sessions.html#session-list", context)
    return render(request, "memories/sessions.html", context)


@require_GET
def transcript(request: HttpRequest, slug: str, session_id: str) -> HttpResponse:
    agent, can_write = agent_for_user(request, slug)
    session = runtime.get_session(agent, session_id)
    if session is None:
        return _bad_request(
            request, "No such session in this agent: it may have been deleted.", status=404
        )
    runs = runtime.session_runs(agent, session_id)
    return render(
        request,
        "memories/transcript.html",
        {
            "agent": agent,
            "session": session,
            "runs": runs,
            "user_url": user_url(agent, session.user_id) if session.user_id else "",
        },
    )


@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("memories.view_auditevent"):
        raise PermissionDenied("You need the Viewer or Editor role to read the audit log.")
    context = audit_page(request.GET)
    if context.get("error"):
        return _bad_request(request, context["error"])
    if request.htmx and request.htmx.target == "audit-list":
        return render(request, "memories/audit.html#audit-list", context)
    return render(request, "memories/audit.html", context)


@require_POST
def delete_session(request: HttpRequest, slug: str, session_id: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    try:
        with transaction.atomic():
            user_id, runs = runtime.delete_session(agent, session_id)
            audit.record(
                request.user,
                agent,
                AuditEvent.Action.SESSION_DELETED,
                user_id=user_id or "",
                details={"session_id": session_id, "runs": runs},
            )
    except runtime.SessionNotFound as error:
        return _bad_request(request, error.message, status=404)
    message = f"Session deleted with its {runs} run{'s' if runs != 1 else ''}."
    if request.htmx:
        return toast(HttpResponse(""), message)
    flash(request, message)
    if user_id:
        return redirect(page_url("memories:sessions", agent, user_id=user_id))
    return redirect("agents:memory_tab", slug=agent.slug)


@require_http_methods(["GET", "POST"])
def forget_user(request: HttpRequest) -> HttpResponse:
    """Erase one person from one agent or all: shows what goes, then wants the user_id typed."""
    if not can_write(request):
        raise PermissionDenied("Your role can view memories but not erase them.")
    data = request.POST if request.method == "POST" else request.GET
    form = ForgetUserForm(data, agents=Agent.objects.all())
    if not form.is_valid():
        status = 422 if request.method == "POST" else 200
        return render(request, "memories/forget.html", {"form": form, "preview": []}, status=status)
    user_id, agents = form.cleaned_data["user_id"], form.cleaned_data["agents"]
    preview = [(agent, runtime.user_footprint(agent, user_id)) for agent in agents]
    if request.method == "GET" or not form.cleaned_data["confirmation_matches"]:
        if request.method == "POST":
            form.add_error("confirmation", "Type the user_id exactly as shown to confirm.")
        status = 422 if request.method == "POST" else 200
        return render(
            request, "memories/forget.html", {"form": form, "preview": preview}, status=status
        )
    erased = []
    for agent in agents:
        with transaction.atomic():  # one transaction per agent, as the runtime owns each schema
            footprint = runtime.forget_user(agent, user_id)
            audit.record(
                request.user,
                agent,
                AuditEvent.Action.USER_FORGOTTEN,
                user_id=user_id,
                details={
                    "memories": footprint.memories,
                    "sessions": footprint.sessions,
                    "runs": footprint.runs,
                },
            )
        erased.append(footprint)
        hygiene.forget_tokens(agent, {user_id})
    flash(
        request,
        (
            f"Forgot {user_id}: {sum(f.memories for f in erased)} memories, "
            f"{sum(f.sessions for f in erased)} sessions and {sum(f.runs for f in erased)} runs "
            f"erased in {len(erased)} agent{'s' if len(erased) != 1 else ''}."
        ),
    )
    return redirect("agents:list")


@require_GET
def export_memories(request: HttpRequest, slug: str) -> HttpResponse:
    agent, _ = agent_for_user(request, slug)
    user_id = request.GET.get("user_id") or None
    if user_id is not None and _user_id(request.GET) is None:
        return _bad_request(request, "That user_id is too long.")
    audit.record(request.user, agent, AuditEvent.Action.MEMORIES_EXPORTED, user_id=user_id or "")
    response = StreamingHttpResponse(
        transfer.export_lines(agent, user_id), content_type="application/x-ndjson; charset=utf-8"
    )
    name = (
        f"{agent.slug}-memories.jsonl" if user_id is None else f"{agent.slug}-user-memories.jsonl"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_http_methods(["GET", "POST"])
def import_memories(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    form = ImportForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"agent": agent, "form": form}
    if request.method == "GET" or not form.is_valid():
        return render(
            request, "memories/import.html", context, status=200 if request.method == "GET" else 422
        )
    upload = form.cleaned_data["file"]
    try:
        with transaction.atomic():
            report = transfer.import_memories(
                agent,
                upload.read(),
                upload.name,
                user_id=form.cleaned_data["user_id"] or None,
                valid_rows_only=form.cleaned_data["valid_rows_only"],
                dry_run=form.cleaned_data["dry_run"],
            )
            if report.written:
                audit.record(
                    request.user,
                    agent,
                    AuditEvent.Action.MEMORIES_IMPORTED,
                    user_id=form.cleaned_data["user_id"] or "",
                    details={
                        "added": report.added,
                        "updated": report.updated,
                        "rejected": len(report.rejected),
                    },
                )
    except transfer.ImportFileError as error:
        form.add_error("file", str(error))
        return render(request, "memories/import.html", context, status=422)
    context["report"] = report
    return render(
        request, "memories/import.html", context, status=200 if report.written or report.ok else 422
    )


@require_GET
def search_memories(request: HttpRequest, slug: str) -> HttpResponse:
    """Search memory text across every user of an agent."""
    agent, can_write = agent_for_user(request, slug)
    form = UserSearchForm(request.GET)
    if not form.is_valid():
        return _bad_request(request, first_error(form))
    query, after = form.cleaned_data["q"], form.cleaned_data["after"] or None
    try:
        page = runtime.search_memories(agent, query, after=after)
    except runtime.InvalidCursor as error:
        return _bad_request(request, error.message)
    context = {
        "agent": agent,
        "can_write": can_write,
        "query": query,
        "page": page,
        "next_url": page_url("memories:search", agent, q=query, after=page.next_cursor or ""),
    }
    if request.htmx and request.htmx.target == "search-results":
        return render(request, "memories/search.html#search-results", context)
    return render(request, "memories/search.html", context)
