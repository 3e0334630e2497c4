"""One user's memories: the list, filters, and the writes an operator makes on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import Resolver404, get_script_prefix, resolve, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.access import agent_for_user, rw_agent_for_user
from agents.models import Agent
from memories import actions, flags, runtime
from memories.forms import (
    BulkDeleteForm,
    EditMemoryForm,
    MemoryFilterForm,
    MemoryForm,
    MemoryIdForm,
    UserForm,
)
from memories.models import Memory
from memories.runtime import users as runtime_users
from memories.sensitive import kind_label
from memories.stamps import MILLISECONDS_FROM
from memories.trash_views import undo_for
from memories.users import (
    registered_user,
    unreachable_reason,
    user_label,
    user_query,
    wrong_key_message,
)
from studio.feedback import first_error, flash, toast
from studio.responses import bad_request, page_or_partial

USER_PAGE = "memories/user.html"
# The address an add reports it came from (HX-Current-URL): longer is no page of ours.
MAX_ADDRESS_CHARS = 8192
NO_USER = "Say which user: the link is missing its user_id."
NO_MEMORY = "Say which memory: the link is missing its memory_id."
NO_VERSION = (
    "Not deleted: the form did not say which version of the memory you saw. "
    "Reload the page and delete it from there."
)


def page_url(name: str, agent: Agent, **params: str) -> str:
    """A page's URL with its query; user_ids of any shape survive the round trip."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{reverse(name, args=[agent.slug])}?{query}"


def user_url(agent: Agent, user_id: str | None, page: str = "memories:user", **params: str) -> str:
    """A page about one user (their memories, or `page`), any user_id, NULL included."""
    query = urlencode({k: v for k, v in params.items() if v})
    path = reverse(page, args=[agent.slug])
    return f"{path}?{user_query(user_id)}" + (f"&{query}" if query else "")


@dataclass(frozen=True)
class UserKey:
    """The user a request names; `user_id` None is the runtime's NULL user_id."""

    user_id: str | None


def user_id_in(data: Any) -> UserKey | None:
    """The user a request names, or None when it names none (or one no database can hold)."""
    form = UserForm(data)
    return UserKey(form.user_id_value) if form.is_valid() else None


def memory_id_in(request: HttpRequest) -> str | None:
    """The memory a row URL names, in its query string (forms post to that URL)."""
    form = MemoryIdForm(request.GET)
    return form.cleaned_data["memory_id"] if form.is_valid() else None


def _person_context(agent: Agent, user_id: str) -> dict[str, Any]:
    """Who the user_id belongs to, from the studio's registry (outside the runtime's path)."""
    registered, other_kind = registered_user(agent, user_id)
    person = registered or other_kind
    return {
        "person": registered,
        "other_kind_person": other_kind,
        "wrong_key": wrong_key_message(agent, other_kind) if other_kind else "",
        "timezone": person.timezone if person else "",
        # Built once per page: rows append the memory_id rather than reversing URLs each.
        "memory_base": reverse("memories:row", args=[agent.slug]),
        "user_query": user_query(user_id),
        "user_label": user_label(user_id),
        "unreachable": unreachable_reason(user_id),
    }


def _list_context(
    agent: Agent, can_write: bool, user_id: str, filters: dict, *, replica: bool = True
) -> dict:
    """A page of the list under `filters`, the user's summary and who they are; from the
    primary (`replica=False`) when it answers a write, which a lagging replica lacks."""
    f = {
        "q": filters.get("q", ""),
        "topic": filters.get("topic", ""),
        "sort": filters.get("sort") or "-updated",
        "after": filters.get("after", ""),
        "sensitive": bool(filters.get("sensitive")),
    }

    def page_of(only_ids: list[str] | None) -> tuple[runtime.Page, runtime_users.UserSummary]:
        return runtime_users.user_page(
            agent,
            user_id,
            after=f["after"] or None,
            search=f["q"],
            topic=f["topic"],
            sort=f["sort"],
            only_ids=only_ids,
            replica=replica,
        )

    if f["sensitive"]:
        # This user's memories are scanned now, so the filter is never out of date; the page
        # of those found is read in the same visit to the runtime.
        found, (page, summary) = flags.scan_user(
            agent, user_id, then=lambda ids: page_of(list(ids))
        )
    else:
        page, summary = page_of(None)
        # Flags the agent-wide scan or an edit recorded, as badges on the rows shown.
        found = flags.flags_for(agent, [memory.memory_id for memory in page.items])
    next_url = user_url(
        agent,
        user_id,
        **{k: v for k, v in f.items() if k not in ("after", "sensitive")},
        after=page.next_cursor or "",
        sensitive="1" if f["sensitive"] else "",
    )
    return {
        "agent": agent,
        "can_write": can_write,
        "user_id": user_id,
        "summary": summary,
        "sorts": runtime.MEMORY_SORTS,
        **_person_context(agent, user_id),
        "page": page,
        "filters": f,
        "filtered": bool(f["q"] or f["topic"] or f["sensitive"]),
        "next_url": next_url,
        "flags": _flag_labels(found),
    }


def _flag_labels(found: dict[str, list[str]]) -> dict[str, list[str]]:
    """{memory_id: kinds} as the rows' badges name them."""
    return {memory_id: [kind_label(k) for k in kinds] for memory_id, kinds in found.items()}


def _is_unknown_user(context: dict) -> bool:
    summary = context["summary"]
    known = context["person"] or context["other_kind_person"]
    return not known and not summary.memory_count and not summary.session_count


@require_GET
def user_memories(request: HttpRequest, slug: str) -> HttpResponse:
    agent, can_write = agent_for_user(request, slug)
    key = user_id_in(request.GET)
    if key is None:
        return bad_request(request, NO_USER)
    user_id = key.user_id
    filters = MemoryFilterForm(request.GET)
    if not filters.is_valid():
        return bad_request(request, first_error(filters))
    try:
        context = _list_context(agent, can_write, user_id, filters.cleaned_data)
    except runtime.InvalidCursor as error:
        return bad_request(request, error.message)
    if _is_unknown_user(context):
        message = (
            f"No memories, sessions or registration for user_id “{user_id}” in {agent.name}. "
            "Check the spelling, or register the user to seed memories."
        )
        return bad_request(request, message, status=404)
    context["add_form"] = MemoryForm()
    return page_or_partial(request, USER_PAGE, context, {"memory-list": "memory-list"})


@require_GET
def memory_topics(request: HttpRequest, slug: str) -> HttpResponse:
    """The topic filter's options, fetched when the operator reaches for the filter."""
    agent, _ = agent_for_user(request, slug)
    key = user_id_in(request.GET)
    if key is None:
        return bad_request(request, NO_USER)
    user_id = key.user_id
    context = {
        "topics": runtime.memory_topics(agent, user_id),
        "current": request.GET.get("topic", ""),
    }
    return render(request, f"{USER_PAGE}#topic-options", context)


@require_POST
def add_memory(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    key = user_id_in(request.POST)
    if key is None:
        return bad_request(request, "Say which user: the form is missing its user_id.")
    user_id = key.user_id
    if unreachable_reason(user_id):
        return bad_request(
            request, "A memory added without a user_id would reach nobody: add it under one."
        )
    form = MemoryForm(request.POST)
    if not form.is_valid():
        return _add_form_invalid(request, agent, user_id, form)
    data = form.cleaned_data
    # Read before the write: an address that cannot be read must not fail a saved add.
    on_first_page = bool(request.htmx) and _shows_first_page(request, agent, user_id)
    added = actions.add_memory(
        actor=request.user,
        agent=agent,
        user_id=user_id,
        text=data["text"],
        topics=data["topics"],
        input_text=data["input"],
    )
    if not request.htmx:
        flash(request, added.message)
        return redirect(user_url(agent, user_id))
    if on_first_page:
        summary = runtime.user_summary(agent, user_id, replica=False)
        if not _sorts_above(summary.last_update, added.memory.updated_at):
            return _memory_added(request, agent, user_id, added, summary)
    # The list comes back as it first opens (newest first, the new memory on top), so the
    # filters and the address bar are reset with it rather than naming a search it left.
    context = {
        **_list_context(agent, True, user_id, {}, replica=False),
        "add_form": MemoryForm(),
        "oob_filters": True,
    }
    response = render(request, f"{USER_PAGE}#list-changed", context)
    response["HX-Replace-Url"] = user_url(agent, user_id)
    return toast(response, added.message)


def _shows_first_page(request: HttpRequest, agent: Agent, user_id: str) -> bool:
    """Whether the add came from this user's list as a first visit shows it (newest first, no
    search, filter or later page), by the address htmx reports: the new memory then goes on
    top of the rows already shown, and anything else on the page (an open edit) stays."""
    address = request.META.get("HTTP_HX_CURRENT_URL", "")
    if len(address) > MAX_ADDRESS_CHARS:
        return False
    try:
        address = request.htmx.current_url_abs_path  # None unless on this site
        split = urlsplit(address or "")
        prefix = get_script_prefix()  # the site may be served under a path
        if not split.path.startswith(prefix):
            return False
        match = resolve("/" + split.path.removeprefix(prefix))
        query = QueryDict(split.query)
    except (ValueError, Resolver404, SuspiciousOperation):  # a malformed or foreign address
        return False
    if match.view_name != "memories:user" or match.kwargs.get("slug") != agent.slug:
        return False
    if user_id_in(query) != UserKey(user_id):
        return False
    filters = MemoryFilterForm(query)
    if not filters.is_valid():
        return False
    shown = filters.cleaned_data
    plain = not (shown["q"] or shown["topic"] or shown["after"] or shown["sensitive"])
    return plain and shown["sort"] == "-updated"


def _sorts_above(last_update: Any, added_at: int) -> bool:
    """Whether the user's newest memory (the list's first row, its stamp as stored, maybe in
    milliseconds) sorts above one added now: stamped later, by a clock ahead of ours."""
    if type(last_update) is not int:
        return last_update is not None  # a stored time no number: let the list order it
    # As runtime.memories.in_seconds sorts it.
    seconds = last_update // 1000 if last_update >= MILLISECONDS_FROM else last_update
    return seconds > added_at


def _memory_added(
    request: HttpRequest,
    agent: Agent,
    user_id: str,
    added: actions.Added,
    summary: runtime_users.UserSummary,
) -> HttpResponse:
    """The new row, put on top of the list shown, with the summary and an empty add form."""
    context = {
        **_row_context(agent, user_id, added.memory, True),
        "summary": summary,
        "add_form": MemoryForm(),
    }
    response = render(request, f"{USER_PAGE}#memory-added", context)
    response["HX-Reswap"] = "none"  # the list stays; every part of the answer is out of band
    return toast(response, added.message)


def _add_form_invalid(
    request: HttpRequest, agent: Agent, user_id: str, form: MemoryForm
) -> HttpResponse:
    if request.htmx:
        context = {"agent": agent, "user_id": user_id, "add_form": form}
        response = render(request, f"{USER_PAGE}#add-form", context, status=422)
        response["HX-Retarget"] = "#add-form"
        response["HX-Reswap"] = "outerHTML"
        return toast(response, "Nothing was added: " + first_error(form), "error")
    context = _list_context(agent, True, user_id, {})
    context.update(add_form=form, show_add=True)
    return render(request, USER_PAGE, context, status=422)


def _row_context(
    agent: Agent, user_id: str, memory: Memory, can_write: bool, *, badges: bool = True
) -> dict:
    """What one row needs. `badges`: the row as the list shows it, with its sensitive-data
    badges (a save, a Cancel or a refused delete keeps them); the edit form shows none."""
    found = flags.flags_for(agent, [memory.memory_id]) if badges else {}
    return {
        "agent": agent,
        "user_id": user_id,
        "memory": memory,
        "can_write": can_write,
        "flags": _flag_labels(found),
        **_person_context(agent, user_id),
    }


@require_GET
def memory_row(request: HttpRequest, slug: str) -> HttpResponse:
    """One row as shown in the list: what Cancel puts back after an inline edit."""
    agent, can_write = agent_for_user(request, slug)
    key = user_id_in(request.GET)
    if key is None:
        return bad_request(request, NO_USER)
    user_id = key.user_id
    memory_id = memory_id_in(request)
    if memory_id is None:
        return bad_request(request, NO_MEMORY)
    if not request.htmx:
        return redirect(user_url(agent, user_id))
    try:
        memory = runtime.get_memory(agent, user_id, memory_id)
    except runtime.MemoryNotFound as error:
        return bad_request(request, error.message, status=404)
    context = _row_context(agent, user_id, memory, can_write)
    return render(request, f"{USER_PAGE}#memory-row", context)


def _render_edit(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{USER_PAGE}#memory-edit-row", context, status=status)
    return render(request, "memories/edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
def edit_memory(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the inline edit form. POST: save it, unless the memory changed meanwhile."""
    agent = rw_agent_for_user(request, slug)
    key = user_id_in(request.POST if request.method == "POST" else request.GET)
    if key is None:
        return bad_request(request, NO_USER)
    user_id = key.user_id
    memory_id = memory_id_in(request)
    if memory_id is None:
        return bad_request(request, NO_MEMORY)
    if request.method == "GET":
        return _edit_form_response(request, agent, user_id, memory_id)
    form = EditMemoryForm(request.POST)
    if not form.is_valid():
        return _edit_form_response(request, agent, user_id, memory_id, invalid=form)
    data = form.cleaned_data
    try:
        memory = actions.edit_memory(
            actor=request.user,
            agent=agent,
            user_id=user_id,
            memory_id=memory_id,
            version=data["version"],
            text=data["text"],
            topics=data["topics"],
        )
    except runtime.MemoryNotFound as error:
        return bad_request(request, error.message, status=404)
    except runtime.StaleMemory as stale:
        # Show what is there now, keep what the person typed, and let them decide again.
        context = _row_context(agent, user_id, stale.current, True, badges=False)
        typed = EditMemoryForm.for_memory(
            stale.current, request.POST.get("text", ""), request.POST.getlist("topics")
        )
        context.update(stale=True, form=typed)
        return toast(_render_edit(request, context, status=409), stale.message, "error")
    if not request.htmx:
        flash(request, "Memory saved.")
        return redirect(user_url(agent, user_id))
    context = _row_context(agent, user_id, memory, True)
    return toast(render(request, f"{USER_PAGE}#memory-row", context), "Memory saved.")


def _edit_form_response(
    request: HttpRequest,
    agent: Agent,
    user_id: str,
    memory_id: str,
    invalid: EditMemoryForm | None = None,
) -> HttpResponse:
    """The edit form for the memory as stored, or the person's invalid form with its error."""
    try:
        memory = runtime.get_memory(agent, user_id, memory_id)
    except runtime.MemoryNotFound as error:
        return bad_request(request, error.message, status=404)
    context = {
        **_row_context(agent, user_id, memory, True, badges=False),
        "form": invalid or EditMemoryForm.for_memory(memory),
    }
    if invalid is None:
        return _render_edit(request, context)
    message = "Not saved: " + first_error(invalid)
    return toast(_render_edit(request, context, status=422), message, "error")


@require_POST
def delete_memory(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    key = user_id_in(request.POST)
    if key is None:
        return bad_request(request, "Say which user: the form is missing its user_id.")
    user_id = key.user_id
    memory_id = memory_id_in(request)
    if memory_id is None:
        return bad_request(request, NO_MEMORY)
    version = request.POST.get("version", "")
    if not version:  # every delete button sends the version it showed; never delete blind
        return bad_request(request, NO_VERSION)
    try:
        actions.delete_memory(
            actor=request.user,
            agent=agent,
            user_id=user_id,
            memory_id=memory_id,
            version=version,
        )
    except runtime.MemoryNotFound as error:
        return bad_request(request, error.message, status=404)
    except runtime.StaleMemory as stale:
        # Show what it says now; "Delete anyway" carries the new version, one click.
        context = {**_row_context(agent, user_id, stale.current, True), "stale_delete": True}
        template = f"{USER_PAGE}#memory-row" if request.htmx else "memories/delete_stale.html"
        response = render(request, template, context, status=409)
        return toast(response, "Not deleted: this memory changed since you opened it.", "error")
    message = "Memory deleted."
    if not request.htmx:
        flash(request, message + _in_trash(agent), undo=undo_for(agent, [memory_id]))
        return redirect(user_url(agent, user_id))
    context = {
        "agent": agent,
        "user_id": user_id,
        # From the primary, which holds the delete: a lagging replica still counts it.
        "summary": runtime.user_summary(agent, user_id, replica=False),
        **_person_context(agent, user_id),
    }
    response = render(request, f"{USER_PAGE}#memory-deleted", context)
    return toast(response, message, undo=undo_for(agent, [memory_id]))


def _in_trash(agent: Agent) -> str:
    return f" {agent.trash_note}" if agent.trash_days else ""


@require_POST
def bulk_delete(request: HttpRequest, slug: str) -> HttpResponse:
    agent = rw_agent_for_user(request, slug)
    form = BulkDeleteForm(request.POST)
    if not form.is_valid():
        return bad_request(request, first_error(form))
    user_id, ids = form.user_id_value, form.cleaned_data["memory_ids"]
    if not form.cleaned_data["confirmed"]:
        return _confirm_bulk(request, agent, user_id, ids)
    try:
        count = actions.delete_memories(
            actor=request.user, agent=agent, user_id=user_id, memory_ids=ids
        )
    except runtime.ForeignMemories as error:
        return bad_request(request, error.message)
    message = f"{count} memor{'y' if count == 1 else 'ies'} deleted."
    if not request.htmx:
        flash(request, message + _in_trash(agent), undo=undo_for(agent, ids))
        return redirect(user_url(agent, user_id))
    filters = MemoryFilterForm(request.POST)
    filtered = {**filters.cleaned_data, "after": ""} if filters.is_valid() else {}
    context = _list_context(agent, True, user_id, filtered, replica=False)
    response = render(request, f"{USER_PAGE}#list-changed", context)
    return toast(response, message, undo=undo_for(agent, ids))


def _confirm_bulk(
    request: HttpRequest, agent: Agent, user_id: str | None, ids: list[str]
) -> HttpResponse:
    """Without JavaScript the count is confirmed on a page of its own."""
    found = runtime.memories_by_id(agent, ids).values()
    chosen = [memory for memory in found if memory.user_id == user_id]
    context = {
        "agent": agent,
        "user_id": user_id,
        "memories": chosen,
        "ids": ids,
        "some_not_theirs": len(chosen) != len(ids),
        "back_url": user_url(agent, user_id),
    }
    return render(request, "memories/confirm_bulk.html", context)
