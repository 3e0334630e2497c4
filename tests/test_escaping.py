"""Untrusted text stays inert: LLM- and user-written strings never render as markup."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils.html import escape

from memories import runtime
from memories.models import AuditEvent, Run, RuntimeSession
from memories.runtime.memories import insert_memory
from tests.factories import make_person, memory_url, session_url

HTMX = {"HTTP_HX_REQUEST": "true"}
PAYLOADS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "' onmouseover='alert(1)",
    "javascript:alert(1)",
    "</textarea><script>alert(2)</script>",
    "{{ 7|add:7 }}{% debug %}",
    "<iframe srcdoc='<script>alert(3)</script>'>",
    "</title><style>body{display:none}</style>",
]
OUR_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "link",
    "script",
    "body",
    "header",
    "a",
    "span",
    "nav",
    "div",
    "form",
    "button",
    "input",
    "main",
    "section",
    "h1",
    "h2",
    "p",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "time",
    "details",
    "summary",
    "label",
    "textarea",
    "select",
    "option",
    "noscript",
    "fieldset",
    "code",
    "strong",
    "blockquote",
    "ul",
    "li",
    "pre",
    "br",
}


class MarkupAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in OUR_TAGS:
            self.problems.append(f"unexpected <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            if name in ("href", "src", "action", "hx-get", "hx-post") and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in {name}")
            if tag == "script" and name == "src" and not value.startswith("/static/"):
                self.problems.append(f"script from {value}")
        if tag == "script" and not dict(attrs).get("src"):
            self.problems.append("inline <script>")


def assert_inert(html: str, where: str) -> None:
    audit = MarkupAudit()
    audit.feed(html)
    assert not audit.problems, f"{where}: {audit.problems}"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_page_and_partial_keeps_untrusted_text_inert(editor_client, make_agent, payload):
    agent = make_agent(name=f"Agent {payload}", description=payload)
    user_id = f"{payload}@example.com"
    make_person("person@example.com", first_name=payload, last_name=payload, external_id=payload)
    memory, _ = insert_memory(
        agent, user_id, text=payload, topics=[payload[:60], "ok"], input_text=payload
    )
    insert_memory(agent, payload, text=f"Keyed by {payload}", topics=[])
    now = int(time.time())
    with runtime.in_agent_schema(agent):
        RuntimeSession.objects.create(
            session_id="s-1",
            session_type="agent",
            user_id=user_id,
            summary={"summary": payload},
            created_at=now,
            updated_at=now,
        )
        Run.objects.create(
            run_id="r-1",
            session_id="s-1",
            run_type="agent",
            user_id=user_id,
            run_index=0,
            created_at=now,
            run_data={
                "messages": [
                    {"role": "user", "content": payload, "created_at": now},
                    {"role": "assistant", "content": payload, "tool_calls": [{"x": payload}]},
                    {"role": "tool", "content": payload, "tool_name": payload},
                ]
            },
        )
    AuditEvent.objects.create(
        actor_name=payload,
        agent=agent,
        agent_slug=agent.slug,
        action="memory.deleted",
        user_id=payload,
        memory_id=payload[:60],
        details={"note": payload},
    )
    tab = reverse("agents:memory_tab", args=[agent.slug])
    user = reverse("memories:user", args=[agent.slug])
    edit = memory_url(agent, memory.memory_id, "edit")
    pages = {
        "agents list": editor_client.get(reverse("agents:list")),
        "memory tab": editor_client.get(tab),
        "users partial": editor_client.get(tab, {"q": payload[:3]}, HTTP_HX_TARGET="users", **HTMX),
        "user page": editor_client.get(user, {"user_id": user_id}),
        "user page keyed by payload": editor_client.get(user, {"user_id": payload}),
        "memory list partial": editor_client.get(
            user, {"user_id": user_id, "q": payload}, HTTP_HX_TARGET="memory-list", **HTMX
        ),
        "edit row": editor_client.get(edit + "&" + urlencode({"user_id": user_id}), **HTMX),
        "edit page": editor_client.get(edit + "&" + urlencode({"user_id": user_id})),
        "row": editor_client.get(
            memory_url(agent, memory.memory_id, user_id=user_id),
            **HTMX,
        ),
        "stale edit": editor_client.post(
            edit, {"user_id": user_id, "text": payload, "version": "old"}, **HTMX
        ),
        "invalid add": editor_client.post(
            reverse("memories:add", args=[agent.slug]),
            {"user_id": user_id, "text": payload, "topics": payload * 10},
            **HTMX,
        ),
        "bulk confirm": editor_client.post(
            reverse("memories:bulk_delete", args=[agent.slug]),
            {"user_id": user_id, "memory_ids": [memory.memory_id]},
        ),
        "sessions": editor_client.get(
            reverse("memories:sessions", args=[agent.slug]), {"user_id": user_id}
        ),
        "transcript": editor_client.get(session_url(agent, "s-1")),
        "audit log": editor_client.get(reverse("memories:audit"), {"user_id": payload}),
    }
    for where, response in pages.items():
        assert response.status_code in (200, 409, 422), where
        html = response.content.decode()
        assert_inert(html, where)
    # The text is still shown to the operator, as text (template syntax included, unevaluated).
    assert escape(payload) in pages["user page"].content.decode()
