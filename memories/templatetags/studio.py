"""Template helpers for the runtime's data: epoch seconds shown as people read time."""

from __future__ import annotations

import functools
import math
import time
import zoneinfo
from html import escape
from typing import Any
from urllib.parse import quote

from django import template
from django.template.base import render_value_in_context
from django.template.defaulttags import CsrfTokenNode
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from memories import sensitive, users
from memories.models import stored_text
from memories.stamps import read_stamp
from studio import stored_json
from studio.cached_url import cached_reverse
from studio.html import escaped

register = template.Library()


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name) if name else zoneinfo.ZoneInfo("UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


_STEPS = (
    (60, 1, "second"),
    (3600, 60, "minute"),
    (86_400, 3600, "hour"),
    (7 * 86_400, 86_400, "day"),
    (30 * 86_400, 7 * 86_400, "week"),
    (365 * 86_400, 30 * 86_400, "month"),
)


def relative(seconds_ago: int) -> str:
    """'3 hours ago', 'in 2 days': cheap enough for every row of every page."""
    span = abs(seconds_ago)
    if span < 45:
        return "just now"
    unit_seconds, unit = next(
        ((size, name) for limit, size, name in _STEPS if span < limit), (365 * 86_400, "year")
    )
    count = max(1, span // unit_seconds)
    text = f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{text} ago" if seconds_ago >= 0 else f"in {text}"


@register.simple_tag
def when(epoch_seconds: Any, timezone: str = "") -> str:
    """Relative time, with the exact time (in the user's own zone where known) on hover;
    odd values (milliseconds, zero, out of range) are shown as stored and flagged."""
    # "": the key is missing from stored JSON (a run's message written without a time).
    if epoch_seconds is None or epoch_seconds == "":
        return mark_safe('<span class="muted">never</span>')  # a constant, no data in it
    seconds = None
    number = isinstance(epoch_seconds, int | float) and not isinstance(epoch_seconds, bool)
    if number and math.isfinite(epoch_seconds):  # not NaN or Infinity
        seconds = int(epoch_seconds)
    if seconds is None:  # a string, NaN, a list...: shown as stored
        stored = stored_text(epoch_seconds)
        return format_html(
            '<span class="badge warning" title="stored as {}: not a time the runtime writes">'
            "{}</span>",
            stored[:200],
            stored if len(stored) <= 40 else stored[:40] + "…",
        )
    # Two a row on every list: the same stamp in the same second renders once.
    return _when_html(seconds, timezone, int(time.time()))


@functools.lru_cache(maxsize=1024)
def _when_html(epoch_seconds: int, timezone: str, now: int) -> str:
    stamp = read_stamp(epoch_seconds)
    if stamp.moment is None:
        return format_html(
            '<span class="badge warning" title="{}">{}</span>', stamp.note, stamp.stored
        )
    zone = _zone(timezone)
    try:
        local = stamp.moment.astimezone(zone)
    except OverflowError:  # the first or last day of datetime's range, shifted by the zone
        local, zone = stamp.moment, _zone("")
    exact = f"{local:%Y-%m-%d %H:%M:%S} {zone.key}"
    shown = relative(now - int(stamp.moment.timestamp()))
    if stamp.note:
        return format_html(
            '<time datetime="{}" title="{}; stored as {}">{}</time> '
            '<span class="badge warning">{}</span>',
            stamp.moment.isoformat(),
            exact,
            stamp.stored,
            shown,
            stamp.note,
        )
    # Times and zone names the code made itself; escaped anyway, without format_html's cost.
    return mark_safe(
        f'<time datetime="{escape(stamp.moment.isoformat())}" title="{escape(exact)}">'
        f"{escape(shown)}</time>"
    )


@register.simple_tag(takes_context=True)
def memory_url(context: template.Context, memory: Any, action: str = "") -> str:
    """A row's URL ("": the row itself, "edit", "delete") from the page's base, with no
    reverse() per row. Ids travel in the query string: "/", "%" or "." in one is safe there."""
    path = f"{context['memory_base']}{action}/" if action else context["memory_base"]
    return f"{path}?{context['user_query']}&memory_id={quote(memory.memory_id, safe='')}"


@register.filter
def message_text(content: Any) -> str:
    """A run message's content as agno reads it (Message.get_content_string): text as it is,
    a list of parts by its first part's text; anything else as JSON, so nothing stored is
    hidden or shown as a Python repr."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        text = content[0].get("text")
        if isinstance(text, str):
            return text
    return as_json(content)


@register.filter
def as_json(value: Any) -> str:
    """A stored JSON value (a tool call, a tool result) as JSON text; text stays text. A part
    too deep to read shows as TOO_DEEP_TO_SHOW."""
    return stored_json.shown(value)


@register.filter
def flags_of(flags: dict[str, list[str]] | None, memory: Any) -> list[str]:
    """A row's sensitive-data labels from the page's {memory_id: labels}: one lookup a row,
    not a walk over every flag on the page."""
    return flags.get(memory.memory_id, []) if flags else []


@register.filter
def tokens(value: int | None) -> str:
    if not value:
        return "0"
    return f"{value / 1000:.1f}k" if value >= 10_000 else f"{value:,}"


@register.filter
def user_query(user_id: str | None) -> str:
    """`?{{ user_id|user_query }}`: NULL and the empty user_id link to pages of their own."""
    return users.user_query(user_id)


@register.filter
def user_label(user_id: str | None) -> str:
    return users.user_label(user_id)


@register.simple_tag
def user_fields(user_id: str | None) -> str:
    """The hidden fields that name a user in a form, NULL included."""
    if user_id is None:
        return mark_safe('<input type="hidden" name="no_user_id" value="1">')
    return format_html('<input type="hidden" name="user_id" value="{}">', user_id)


@register.simple_tag(takes_context=True)
def row_form_fields(context: template.Context, user_id: str | None) -> str:
    """The CSRF token and user fields that every row's form repeats, rendered once a page
    (kept in the render context) instead of once a row."""
    key = ("row_form_fields", user_id)
    if key not in context.render_context:
        csrf = CsrfTokenNode().render(context)
        context.render_context[key] = mark_safe(csrf + user_fields(user_id))
    return context.render_context[key]


@register.filter
def kind_label(kind: str) -> str:
    return sensitive.kind_label(kind)


@register.filter
def masked(text: str) -> str:
    """A flagged memory with its sensitive parts cut short (Tulip-••••). Used only on flagged
    memories: when today's detectors no longer find the part a scan flagged, all is hidden."""
    shown = sensitive.masked(text)
    return shown if shown != text else sensitive.MASK


@register.simple_tag(takes_context=True)
def undo_form(context: template.Context, message: Any) -> str:
    """A flashed message's Undo as a plain form (studio.feedback.flash): no JavaScript needed;
    the restore comes back to this page."""
    from studio.feedback import flash_undo

    undo = flash_undo(message)
    if not undo or not undo["trashed"]:
        return ""
    request = context.get("request")
    fields = format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<input type="hidden" name="next" value="{}">',
        context.get("csrf_token", ""),
        request.get_full_path() if request is not None else "",
    )
    for trashed in undo["trashed"]:
        fields += format_html('<input type="hidden" name="trashed" value="{}">', trashed)
    return format_html(
        '<form method="post" action="{}" class="flash-undo">{}'
        '<button class="button small" type="submit">Undo</button></form>',
        undo["url"],
        fields,
    )


def _grouped(number: Any) -> str:
    """humanize's intcomma for the en-us studio ("12,345"), without its locale machinery
    for the plain ints the users list shows."""
    from django.contrib.humanize.templatetags.humanize import intcomma

    return f"{number:,}" if type(number) is int else intcomma(number)


NO_TOPICS = '<span class="muted small">no topics</span>'


@register.simple_tag(takes_context=True)
def memory_row(context: template.Context, memory: Any) -> str:
    """One row of a user's memories (the `memory-row` partial of memories/user.html).

    Built here rather than in template markup for the reason Django admin builds its change
    list's rows in Python: the template engine spent about 0.18 ms a row walking some 35
    nodes (4.6 ms for a page of 25, the biggest part of the page), this takes 0.05. Every
    value goes through conditional_escape; the context names are the partial's."""
    e = escaped
    can_write, stale = context.get("can_write"), context.get("stale_delete")
    zone = context.get("timezone", "")
    memory_id = e(memory.memory_id)
    text = e(memory.text)
    parts = [f'<tr class="memory-row" data-memory-id="{memory_id}">']
    if can_write:
        parts.append(
            f'<td class="check"><input type="checkbox" name="memory_ids" value="{memory_id}" '
            'form="bulk-form" aria-label="Select this memory"></td>'
        )
    parts.append('<td class="memory-cell">')
    if stale:
        parts.append(
            '<p class="callout error" role="alert"><strong>Not deleted: this memory changed '
            "since you opened the page.</strong> It now reads as shown below; delete it "
            "anyway, or keep it.</p>"
        )
    if can_write:
        edit_url = e(memory_url(context, memory, "edit"))
        parts.append(
            f'<a class="memory-text editable" href="{edit_url}" hx-get="{edit_url}" '
            'hx-target="closest tr" hx-swap="outerHTML" title="Click to edit">'
            f"{text}</a>"
        )
    else:
        parts.append(f'<span class="memory-text">{text}</span>')
    chips = "".join(f'<span class="chip">{e(topic)}</span>' for topic in memory.topic_list)
    parts.append(f'<div class="chips">{chips or NO_TOPICS}</div>')
    if memory.input:
        value = e(render_value_in_context(memory.input, context))
        parts.append(f'<details class="input"><summary>Input</summary><p>{value}</p></details>')
    if memory.details:
        shown = "".join(
            f'<p><span class="muted small">{e(label)}</span> '
            f"{e(render_value_in_context(value, context))}</p>"
            for label, value in memory.details
        )
        parts.append(
            f'<details class="input memory-details"><summary>Details</summary>{shown}</details>'
        )
    labels = flags_of(context.get("flags"), memory)
    if labels:
        badges = "".join(f'<span class="badge danger">{e(label)}</span> ' for label in labels)
        parts.append(f"<div>{badges}</div>")
    parts.append(
        f'</td><td class="when">{when(memory.created_at, zone)}</td>'
        f'<td class="when">{when(memory.updated_at, zone)}</td>'
    )
    if can_write:
        delete_url = e(memory_url(context, memory, "delete"))
        note = e(context["agent"].trash_note)
        parts.append(
            f'<td class="right actions"><form method="post" action="{delete_url}" '
            f'hx-post="{delete_url}" hx-target="closest tr" hx-swap="outerHTML swap:150ms" '
            f'hx-confirm="Delete this memory? The agent will no longer see it. {note}">'
            f"{row_form_fields(context, context.get('user_id'))}"
            f'<input type="hidden" name="version" value="{e(memory.version)}">'
            '<button class="button danger small" type="submit">'
            f"{'Delete anyway' if stale else 'Delete'}</button></form></td>"
        )
    parts.append("</tr>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped


@register.simple_tag(takes_context=True)
def user_row(context: template.Context, row: Any) -> str:
    """One row of the Memory tab's users list (agents/memory_tab.html, users-table), built
    here for the reason memory_row is: 25 rows of template nodes took 5.4 ms to render.
    Its two URLs come from {% url %}'s own cache (studio.cached_url)."""
    e = escaped
    agent, per_token = context["agent"], e(context.get("chars_per_token", ""))
    user_page = e(cached_reverse("memories:user", [agent.slug], {}, None))
    query = e(users.user_query(row.user_id))
    link = f"{user_page}?{query}"
    parts = [
        f'<tr class="{"unregistered" if row.is_unregistered else ""}"><td>'
        f'<a class="strong user-link" href="{link}">{e(users.user_label(row.user_id))}</a>'
    ]
    if row.flagged:
        parts.append(
            f' <a class="badge danger" href="{link}&amp;sensitive=1" '
            f'title="Memories the sensitive-data scan flagged">{e(row.flagged)} sensitive</a>'
        )
    if row.unreachable:
        parts.append(
            '<div><span class="badge danger">Reaches nobody</span> '
            f'<span class="small">{e(row.unreachable)}</span></div>'
        )
    elif row.registered:
        name = row.registered.full_name or row.registered.email
        parts.append(f'<div class="muted small">{e(name)}</div>')
    elif row.other_kind_match:
        kind = e(agent.get_user_id_kind_display().lower())
        parts.append(
            f'<div><span class="badge danger" title="This agent keys memories by {kind}">'
            f'Wrong key</span> <span class="small">{e(row.wrong_key)}</span></div>'
        )
    else:
        parts.append(
            '<div><span class="badge warning" title="No registered user has this email or id">'
            "Unregistered</span></div>"
        )
    parts.append(
        f'</td><td class="num">{e(_grouped(row.memory_count))}</td>'
        f'<td class="num">{e(_grouped(row.session_count))}</td><td class="num">'
    )
    if row.counted_tokens is not None:
        parts.append(e(tokens(row.counted_tokens)))
        if row.is_over_budget:
            prune = e(cached_reverse("memories:prune", [agent.slug], {}, None))
            parts.append(
                f' <a class="badge danger" href="{prune}?{query}" title="Over the budget of '
                f'{e(agent.token_budget)} tokens: prune">Over budget</a>'
            )
    else:
        parts.append(
            f'<span class="muted" title="Estimate: stored bytes ÷ {per_token}, not counted yet">'
            f"≈{e(tokens(row.approx_tokens))}</span>"
        )
    zone = row.registered.timezone if row.registered else ""
    parts.append(f"</td><td>{when(row.last_update, zone)}</td></tr>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped
