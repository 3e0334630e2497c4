"""Rows agno can write, generated: the dashboard's export imports into a second agent through
the page and both agents then hold the same rows, column by column (raw SQL) and as agno
reads them back. Examples share the test's two agents and add fresh ids each time."""

from __future__ import annotations

import itertools
import os
import time

import pytest
from agno.db.schemas.memory import UserMemory
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import clear_memories, set_memory_columns, stored_memories

pytestmark = pytest.mark.django_db(transaction=True)
NOW = int(time.time())
COUNTS = {"examples": 0, "rows": 0, "files": 0, "requests": 0, "5xx": 0}
_example = itertools.count()
_handles: dict = {}  # agno handles per agent: examples share the test's fixtures

# What Postgres text can hold: no NUL, no lone surrogate (agno cannot write those either).
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
IDS = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=300
) | st.sampled_from(["a/b", "50% off", "%2F", "ключ 💡", " padded ", ""])
JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
TOPICS = st.none() | st.lists(TEXT, max_size=30) | TEXT | st.just("SQL NULL")
STAMP = st.sampled_from([NOW, NOW * 1000, 0, -86_400, 253_402_300_800, 2**63 - 1]) | st.integers(
    -(2**63), 2**63 - 1
)
OPTIONAL_TEXT = st.none() | TEXT
ROW = st.fixed_dictionaries(
    {
        "id": IDS,
        "memory": JSON,
        "topics": TOPICS,
        "user_id": st.none() | st.just("") | IDS,
        "created_at": STAMP,
        "updated_at": st.none() | STAMP | st.just("SQL NULL"),
        "input": OPTIONAL_TEXT,
        "feedback": OPTIONAL_TEXT,
        "agent_id": OPTIONAL_TEXT,
        "team_id": OPTIONAL_TEXT,
    }
)


def _counted(response):
    COUNTS["requests"] += 1
    if response.status_code >= 500:
        COUNTS["5xx"] += 1
    return response


def _report(response) -> str:
    html = response.content.decode()
    return html[html.find('role="status"') : html.find("</div>", html.find('role="status"'))]


def _handle(agent, agno_db_for):
    return _handles.get(agent.pk) or _handles.setdefault(agent.pk, agno_db_for(agent))


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", 100)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(ROW, min_size=1, max_size=6))
def test_every_row_agno_can_write_exports_and_imports_exactly(
    editor_client, make_agent, agno_db_for, rows
):
    if not _handles:
        _handles["agents"] = (make_agent(), make_agent())
    source, target = _handles["agents"]
    agno = _handle(source, agno_db_for)
    example = next(_example)
    for agent in (source, target):  # each example on empty tables: a failure shrinks alone
        clear_memories(agent.db_schema)
    for n, row in enumerate(rows):
        memory_id = f"{example}:{n}:{row['id']}"
        agno.upsert_user_memory(
            UserMemory(
                memory_id=memory_id,
                memory=row["memory"],
                topics=None if row["topics"] == "SQL NULL" else row["topics"],
                user_id=row["user_id"],
                input=row["input"],
                feedback=row["feedback"],
                agent_id=row["agent_id"],
                team_id=row["team_id"],
                created_at=row["created_at"],
                updated_at=None if row["updated_at"] == "SQL NULL" else row["updated_at"],
            )
        )
        # Columns agno never leaves NULL itself, as another writer of the table may.
        nulls = {c: "NULL" for c in ("topics", "updated_at") if row[c] == "SQL NULL"}
        if nulls:
            set_memory_columns(source.db_schema, memory_id, **nulls)
    COUNTS["examples"] += 1
    COUNTS["rows"] += len(rows)
    exported = _counted(editor_client.get(reverse("memories:export", args=[source.slug])))
    assert exported.status_code == 200
    data = b"".join(exported.streaming_content)
    response = _counted(
        editor_client.post(
            reverse("memories:import", args=[target.slug]),
            {"file": SimpleUploadedFile("export.jsonl", data)},
        )
    )
    COUNTS["files"] += 1
    assert response.status_code == 200, _report(response)
    assert f"Written: {len(rows)} added, 0 updated." in response.content.decode()
    assert stored_memories(target.db_schema) == stored_memories(source.db_schema)
    theirs = _handle(target, agno_db_for).get_user_memories()
    mine = agno.get_user_memories()
    key = lambda memory: memory.memory_id  # noqa: E731
    assert [vars(m) for m in sorted(theirs, key=key)] == [vars(m) for m in sorted(mine, key=key)]
    again = _counted(
        editor_client.post(
            reverse("memories:import", args=[target.slug]),
            {"file": SimpleUploadedFile("export.jsonl", data)},
        )
    )
    COUNTS["files"] += 1
    assert "Written: 0 added, 0 updated." in again.content.decode(), _report(again)
    if os.environ.get("PROPERTY_COUNTS"):  # how the README's figures were taken
        print(COUNTS)
