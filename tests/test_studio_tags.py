"""The template tags and filters of memories/templatetags/studio.py."""

from __future__ import annotations

from memories.templatetags.studio import relative


def test_relative_times_read_like_a_person_would_say_them():
    assert [
        relative(s)
        for s in (5, 90, 7200, 86_400 * 3, 86_400 * 20, 86_400 * 70, 86_400 * 800, -7200)
    ] == [
        "just now",
        "1 minute ago",
        "2 hours ago",
        "3 days ago",
        "2 weeks ago",
        "2 months ago",
        "2 years ago",
        "in 2 hours",
    ]


def test_any_stored_time_renders_without_an_error():
    from memories.templatetags.studio import when

    for stamp in (
        -6_500_000_000_000 // 1000,
        -62_135_596_800,
        -62_135_596_801,
        253_402_300_799,
        253_402_300_800,
        10**11 - 1,
        -(10**11) + 1,
        10**15,
        -(10**15),
        0,
    ):
        html = str(when(stamp, "Pacific/Kiritimati"))
        assert "<time" in html or "not a time the runtime writes" in html, stamp


def test_a_memory_row_escapes_every_stored_value():
    from django.template import engines
    from django.test import RequestFactory

    from agents.models import Agent
    from memories.models import Memory

    bad = "<img src=x onerror=alert(1)>\"'&"
    memory = Memory(
        memory_id=f"id-{bad}",
        memory=f"text-{bad}",
        topics=[f"topic-{bad}"],
        input=f"input-{bad}",
        feedback=f"feedback-{bad}",
        agent_id=f"agent-{bad}",
        user_id="u",
        created_at=1_700_000_000,
        updated_at=1_700_000_000_000,  # milliseconds: shown as stored, flagged
    )
    context = {
        "memory": memory,
        "can_write": True,
        "stale_delete": True,
        "flags": {memory.memory_id: [f"label-{bad}"]},
        "timezone": "Europe/Berlin",
        "agent": Agent(name="A", slug="a", trash_days=3),
        "user_id": f"user-{bad}",
        "memory_base": "/agents/a/memory/",
        "user_query": "user_id=u",
    }
    row = engines["django"].from_string("{% load studio %}{% memory_row memory %}")
    html = row.render(context, RequestFactory().get("/"))
    assert "<img" not in html and 'onerror=alert(1)>"' not in html
    escaped = "&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;&amp;"
    for part in ("id", "text", "topic", "input", "feedback", "agent", "label", "user"):
        assert f"{part}-{escaped}" in html, part
    assert "Delete anyway" in html and "Not deleted: this memory changed" in html
    assert "It stays in the trash for 3 days." in html
    assert html.count("<td") == 5 and 'class="badge warning"' in html


def test_a_users_list_row_escapes_the_user_id_and_the_person():
    from django.template import engines
    from django.test import RequestFactory

    from agents.models import Agent
    from memories.models import EndUser
    from memories.users import UserRow

    bad = "<img src=x onerror=alert(1)>\"'&"
    agent = Agent(name="A", slug="a", token_budget=10)
    person = EndUser(email=f"mail-{bad}", first_name=f"name-{bad}")
    row = UserRow(f"id-{bad}", registered=person, memory_count=1234, counted_tokens=50, agent=agent)
    html = (
        engines["django"]
        .from_string("{% load studio %}{% user_row row %}")
        .render({"row": row, "agent": agent, "chars_per_token": 4}, RequestFactory().get("/"))
    )
    escaped = "&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;&amp;"
    assert "<img" not in html
    assert f"id-{escaped}" in html and f"name-{escaped}" in html
    assert "1,234" in html and "Over budget" in html and "/prune/?user_id=id-%3Cimg" in html


def test_a_time_that_is_not_a_number_is_shown_as_stored_and_flagged():
    from memories.templatetags.studio import when

    assert "never" in str(when(""))  # a key the stored JSON does not have
    for stored in ("notanint", float("nan"), float("inf"), [1], {"at": 1}, True, "x" * 500):
        html = str(when(stored))
        assert "not a time the runtime writes" in html, stored
        assert len(html) < 400, stored  # a long value is cut short, not pasted in whole


def test_stored_json_of_any_shape_is_shown_as_json_text():
    from memories.templatetags.studio import as_json, message_text

    assert message_text([{"type": "text", "text": "Hi."}, {"type": "image"}]) == "Hi."
    assert message_text([{"type": "image"}]) == '[\n  {\n    "type": "image"\n  }\n]'
    assert message_text(None) == "" and message_text("As is.") == "As is."
    deep: list = []
    for _ in range(5_000):
        deep = [deep]
    assert "too deeply" in as_json(deep)
