"""Template helpers for the runtime's data: epoch seconds shown as people read time."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name) if name else zoneinfo.ZoneInfo("UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


@register.simple_tag
def when(epoch_seconds: int | None, timezone: str = "") -> str:
    """Relative time, with the exact time (in the user's own zone where known) on hover."""
    if epoch_seconds is None:
        return mark_safe('<span class="muted">never</span>')  # a constant, no data in it
    moment = datetime.fromtimestamp(int(epoch_seconds), tz=UTC)
    zone = _zone(timezone)
    local = moment.astimezone(zone)
    exact = f"{local:%Y-%m-%d %H:%M:%S} {zone.key}"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', moment.isoformat(), exact, naturaltime(moment)
    )


@register.filter
def tokens(value: int | None) -> str:
    if not value:
        return "0"
    return f"{value / 1000:.1f}k" if value >= 10_000 else f"{value:,}"
