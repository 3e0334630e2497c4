from __future__ import annotations

from django.urls import reverse

from memories import runtime
from memories.models import AuditEvent
from tests.factories import memory_url

HTMX = {"HTTP_HX_REQUEST": "true"}
SECRET = "Her card is 4111 1111 1111 1111 and password Tulip-2024!"


def test_events_never_hold_a_memorys_text_even_after_edit_and_delete(editor_client, agent):
    add = editor_client.post(
        reverse("memories:add", args=[agent.slug]),
        {"user_id": "ann", "text": SECRET, "topics": "secret-topic"},
    )
    assert add.status_code == 302
    memory = runtime.user_memories(agent, "ann").items[0]
    editor_client.post(
        memory_url(agent, memory.memory_id, "edit"),
        {
            "user_id": "ann",
            "text": SECRET + " edited",
            "topics": "x",
            "version": memory.version,
        },
    )
    edited = runtime.get_memory(agent, "ann", memory.memory_id)
    editor_client.post(
        memory_url(agent, memory.memory_id, "delete"), {"user_id": "ann", "version": edited.version}
    )
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == [
        "runtime.tables_created",
        "memory.added",
        "memory.edited",
        "memory.deleted",
    ]
    for event in events:
        stored = " ".join(str(getattr(event, f.attname)) for f in AuditEvent._meta.fields)
        assert "4111" not in stored and "Tulip" not in stored and "secret-topic" not in stored
    page = editor_client.get(reverse("memories:audit")).content.decode()
    # The action filter lists every label: the event's own cell is what shows it happened.
    assert "<td>Deleted a memory</td>" in page and "Tulip" not in page


def test_the_audit_log_filters_and_pages(editor_client, agent):
    for n in range(55):
        AuditEvent.objects.create(
            actor_name="edna",
            agent=agent,
            agent_slug=agent.slug,
            action="memory.deleted",
            user_id=f"u{n}",
        )
    AuditEvent.objects.create(actor_name="sam", action="settings.changed", agent_slug="other")
    url = reverse("memories:audit")
    first = editor_client.get(url, {"action": "memory.deleted"})
    assert first.status_code == 200
    html = first.content.decode()
    assert ">u54<" in html and ">u0<" not in html and "Older" in html
    next_url = first.context["next_url"]
    older = editor_client.get(url + next_url, HTTP_HX_TARGET="audit-list", **HTMX).content.decode()
    assert (
        older.lstrip().startswith('<div id="audit-list">')
        and ">u0<" in older
        and ">u54<" not in older
    )
    by_actor = editor_client.get(url, {"actor": "sam"}).content.decode()
    assert "<td>Changed memory settings</td>" in by_actor and ">u1<" not in by_actor
    assert editor_client.get(url, {"after": "bogus"}).status_code == 400
    assert editor_client.get(url, {"action": "memory.exploded"}).status_code == 400
