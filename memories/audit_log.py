"""The audit log page's query: filters, newest first, keyset pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.db.models import Q
from django.http import QueryDict
from django.utils.http import urlencode

from agents.models import Agent
from memories.models import AuditEvent
from memories.runtime import InvalidCursor, decode_cursor, keyset_page

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    agent = forms.SlugField(required=False, max_length=60)
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action"), *AuditEvent.Action.choices]
    )
    actor = forms.CharField(required=False, max_length=150)
    user_id = forms.CharField(required=False, max_length=512, strip=False)
    after = forms.CharField(required=False, max_length=200)


def audit_page(params: QueryDict) -> dict[str, Any]:
    form = AuditFilterForm(params)
    agents = list(Agent.objects.only("slug", "name"))
    if not form.is_valid():
        return {
            "error": "These filters are not valid: "
            + "; ".join(str(e[0]) for e in form.errors.values())
        }
    f = form.cleaned_data
    events = AuditEvent.objects.select_related("agent")
    if f["agent"]:
        events = events.filter(agent_slug=f["agent"])
    if f["action"]:
        events = events.filter(action=f["action"])
    if f["actor"]:
        events = events.filter(actor_name=f["actor"])
    if f["user_id"]:
        events = events.filter(user_id=f["user_id"])
    if f["after"]:
        try:
            stamp, last_id = decode_cursor(f["after"], (str, int))
            stamp = datetime.fromisoformat(stamp)
        except (InvalidCursor, ValueError):
            return {"error": InvalidCursor.message}
        events = events.filter(Q(created_at__lt=stamp) | Q(created_at=stamp, id__lt=last_id))
    page = keyset_page(
        events.order_by("-created_at", "-id")[: PAGE_SIZE + 1],
        PAGE_SIZE,
        lambda event: (event.created_at.isoformat(), event.id),
    )
    next_url = ""
    if page.next_cursor:
        kept = {k: v for k, v in f.items() if v and k != "after"}
        next_url = "?" + urlencode({**kept, "after": page.next_cursor})
    context = {"form": form, "events": page.items, "agents": agents, "filters": f}
    return {**context, "next_url": next_url}
