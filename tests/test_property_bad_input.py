"""What people (or their tools) can send, generated: NUL, lone surrogates, odd base64 and JSON
in cursors, ids, queries and form fields. Every answer is < 500, and a refusal says why."""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import quote

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memories import runtime
from memories.models import AuditEvent, EndUser
from tests.factories import make_memory

COUNTS = {"requests": 0, "4xx": 0, "5xx": 0}
SPECIALS = [
    "\x00",
    "\ud800",
    "\udfff",
    "a\x00b",
    "%",
    "%00",
    "/",
    "..",
    "'",
    '"',
    "\\",
    "\u202e",
    "²",
    "-1",
    "9" * 5_000,
]
NASTY = (
    st.text(max_size=30)
    | st.sampled_from(SPECIALS)
    | st.lists(st.sampled_from(SPECIALS), max_size=4).map("".join)
)


JSON_ATTACKS = [
    '{"a": "\\u0000"}',
    '{"a": "\\ud800"}',
    '{"\\u0000": 1}',
    "[" * 5_000 + "]" * 5_000,
    '{"a": 1e999}',
    "1e999",
    '"text"',
    "9" * 5_000,  # more digits than json turns into an int
    '{"a": ' + "9" * 5_000 + "}",
]


def _cursor(values: list) -> str:
    raw = json.dumps(values, ensure_ascii=True).encode()  # keeps "\ud800" as an escape
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSORS = (
    NASTY
    | st.lists(NASTY | st.integers() | st.floats(allow_nan=True), max_size=3).map(_cursor)
    | st.sampled_from([_cursor([1e308, "x"]), _cursor([10**400, "x"]), _cursor(["9999-99", 1])])
)


def _encode(value: str) -> str:
    """As a browser or script would put it on the wire, lone surrogates included."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _answer(response) -> None:
    COUNTS["requests"] += 1
    status = response.status_code
    if status >= 500:
        COUNTS["5xx"] += 1
    assert status < 500, response.content[:300]
    if 400 <= status < 500:
        COUNTS["4xx"] += 1
        told = response.content.strip() or response.get("HX-Trigger")
        assert told, f"{status} without a message"


def _get(client, path: str, **params: str):
    query = "&".join(f"{k}={_encode(v)}" for k, v in params.items())
    _answer(client.generic("GET", f"{path}?{query}", HTTP_HX_REQUEST="true"))


def _post(client, path: str, pairs: list[tuple[str, str]]):
    body = "&".join(f"{k}={_encode(v)}" for k, v in pairs)
    _answer(client.generic("POST", path, body, content_type="application/x-www-form-urlencoded"))


PROPERTY = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def seeded(agent):
    make_memory(agent, "ann", "Likes tea.", ["drinks"])
    return agent


@PROPERTY
@given(user_id=NASTY, after=CURSORS, q=NASTY, topic=NASTY, sort=NASTY)
def test_list_pages_refuse_bad_parameters_in_words(
    editor_client, seeded, user_id, after, q, topic, sort
):
    slug = seeded.slug
    _get(
        editor_client,
        reverse("memories:user", args=[slug]),
        user_id=user_id or "ann",
        after=after,
        q=q,
        topic=topic,
        sort=sort,
    )
    _get(editor_client, reverse("memories:search", args=[slug]), q=q or "a", after=after)
    _get(editor_client, reverse("memories:sessions", args=[slug]), user_id="ann", after=after)
    _get(editor_client, reverse("agents:memory_tab", args=[slug]), after=after, q=q, sort=sort)
    _get(editor_client, reverse("agents:memory_tab", args=[slug]), after=after, sort="tokens")
    _get(editor_client, reverse("memories:sensitive", args=[slug]), after=after)
    _get(editor_client, reverse("memories:trash", args=[slug]), after=after)
    _get(editor_client, reverse("memories:scoping", args=[slug]), start=after)
    _get(editor_client, reverse("memories:audit"), after=after, user_id=user_id)
    _get(editor_client, reverse("memories:row", args=[slug]), user_id="ann", memory_id=user_id)
    _get(editor_client, reverse("memories:transcript", args=[slug]), session_id=user_id)
    _get(editor_client, reverse("memories:context", args=[slug]), user_id=user_id)
    if os.environ.get("PROPERTY_COUNTS"):  # how the README's figures were taken
        print(COUNTS)


@PROPERTY
@given(
    text=NASTY,
    topics=st.lists(NASTY, max_size=6),  # one form value per topic box
    memory_id=NASTY,
    attributes=NASTY | st.sampled_from(JSON_ATTACKS),
)
def test_writes_refuse_bad_input_and_lose_nothing(
    editor_client, seeded, text, topics, memory_id, attributes
):
    slug = seeded.slug
    before = sorted(m.text for m in runtime.user_memories(seeded, "ann").items)
    events = AuditEvent.objects.count()
    _post(
        editor_client,
        reverse("memories:bulk_delete", args=[slug]),
        [("user_id", "ann"), ("memory_ids", memory_id), ("confirmed", "1")],
    )
    _post(
        editor_client, reverse("memories:delete_flagged", args=[slug]), [("memory_ids", memory_id)]
    )
    _post(
        editor_client,
        reverse("memories:edit", args=[slug]) + f"?memory_id={_encode(memory_id)}",
        [
            ("user_id", "ann"),
            ("text", text),
            *[("topics", topic) for topic in topics],
            ("topics_shown", " ".join(topics)),
            ("version", "x"),
        ],
    )
    _post(
        editor_client,
        reverse("memories:register", args=[slug]),
        [("user_id", "ann"), ("email", "ann@example.com"), ("additional_attributes", attributes)],
    )
    after = sorted(m.text for m in runtime.user_memories(seeded, "ann").items)
    assert after == before  # none of these could change a memory
    registered = EndUser.objects.filter(email="ann@example.com").first()
    if registered is None:
        assert AuditEvent.objects.count() == events
    if os.environ.get("PROPERTY_COUNTS"):
        print(COUNTS)


def test_twenty_thousand_topics_are_refused_in_words(editor_client, seeded):
    topics = ",".join(f"t{n}" for n in range(20_000))
    _post(
        editor_client,
        reverse("memories:add", args=[seeded.slug]),
        [("user_id", "ann"), ("text", "x"), ("topics", topics)],
    )
    assert runtime.user_memories(seeded, "ann").items[0].text == "Likes tea."
