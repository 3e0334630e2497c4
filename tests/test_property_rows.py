"""Rows agno can write, generated: every page answers < 500 and shows every row, and the
context block equals agno's own. Each example writes fresh ids with agno's PostgresDb."""

from __future__ import annotations

import itertools
import os
import time

import pytest
from agno.db.schemas.memory import UserMemory
from django.urls import reverse
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memories import flags, tokens
from memories.models import memory_text
from tests.factories import agno_context_block, user_page

pytestmark = pytest.mark.django_db(transaction=True)
NOW = int(time.time())
COUNTS = {"examples": 0, "rows": 0, "requests": 0, "5xx": 0}
_example = itertools.count()
_handles: dict = {}  # one agno handle per agent: examples share the test's fixtures

# What Postgres text can hold: no NUL, no lone surrogate (agno cannot write those either).
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)
CHARACTER = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
IDS = (
    st.text(CHARACTER, min_size=1, max_size=40)
    | st.sampled_from(["a/b", "50% off", "../x", ".", "x?y#z", "ключ 💡", " padded "])
    # Past every old cap (64 columns, 400-character cursors), any letter repeated.
    | st.builds(lambda c, n: c * n, CHARACTER, st.integers(300, 500))
)
JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
MEMORY = (
    TEXT.filter(str.strip)
    | st.dictionaries(TEXT, JSON_SCALAR, min_size=1, max_size=3)
    | st.lists(JSON_SCALAR, min_size=1, max_size=3)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
)
TOPICS = st.none() | st.lists(TEXT, max_size=30) | TEXT
STAMP = st.sampled_from([NOW, NOW * 1000, 0, -86_400, 253_402_300_800, 10**15]) | st.integers(
    -(10**13), 10**13
)
ROW = st.fixed_dictionaries(
    {
        "memory": MEMORY,
        "topics": TOPICS,
        "user": st.integers(0, 2),
        "created_at": STAMP,
        "updated_at": st.none() | STAMP,
        "id": IDS,
        "empty_id": st.booleans(),
    }
)


def _get(client, url: str) -> str:
    response = client.get(url)
    COUNTS["requests"] += 1
    if response.status_code >= 500:
        COUNTS["5xx"] += 1
    assert response.status_code < 500, url
    return response.content.decode() if not response.streaming else ""


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(ROW, min_size=1, max_size=5), user_ids=st.lists(IDS, min_size=3, max_size=3))
def test_every_row_agno_can_write_shows_and_counts(
    editor_client, agent, agno_db_for, rows, user_ids
):
    agno = _handles.get(agent.pk) or _handles.setdefault(agent.pk, agno_db_for(agent))
    example = next(_example)
    users = [f"{example}:{user_id}" for user_id in user_ids[:2]] + [None]
    written: dict[str | None, dict[str, UserMemory]] = {}
    for n, row in enumerate(rows):
        # agno keeps memory_id "" as given: the first row of an example may take it.
        memory_id = "" if n == 0 and row["empty_id"] else f"{example}:{n}:{row['id']}"
        if memory_id == "":  # examples share the agent, and agno's upsert keeps the old owner
            agno.delete_user_memory("")
        owner = users[row["user"]]
        memory = UserMemory(
            memory_id=memory_id,
            memory=row["memory"],
            topics=row["topics"],
            user_id=owner,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        agno.upsert_user_memory(memory)
        written.setdefault(owner, {})[memory_id] = memory
    COUNTS["examples"] += 1
    COUNTS["rows"] += len(rows)
    flags.scan_next_batch(agent, batch=5_000)
    slug = agent.slug
    for url in (
        reverse("agents:list"),
        reverse("agents:memory_tab", args=[slug]),
        reverse("agents:memory_tab", args=[slug]) + "?sort=tokens",
        reverse("agents:memory_tab", args=[slug]) + "?sort=over",
        reverse("memories:search", args=[slug]) + "?q=a",
        reverse("memories:cost", args=[slug]),
        reverse("memories:prune", args=[slug]),
        reverse("memories:sensitive", args=[slug]),
        reverse("memories:export", args=[slug]),
    ):
        _get(editor_client, url)
    for owner, memories in written.items():
        if owner is None:
            continue
        html = _get(editor_client, user_page(agent, owner))
        for memory_id in memories:
            # As agno reads it back: jsonb normalises numbers (1.5e16 comes back an integer).
            stored = agno.get_user_memory(memory_id, deserialize=True)
            assert escape(memory_text(stored.memory)) in html
        block, _ = tokens.context_block(agent, owner)
        assert block == agno_context_block(agent, owner)
    if os.environ.get("PROPERTY_COUNTS"):  # how the README's figures were taken
        print(COUNTS)
