"""Agents whose PostgresDb renames its tables (memory_table=, session_table=, runs_table=):
every page, check, index, export, import, forget, prune and table creation use those names.
agno writes the rows under the same names and reads back what the dashboard wrote."""

from __future__ import annotations

import json
import time

import pytest
from agno.db.postgres import PostgresDb
from agno.db.schemas.memory import UserMemory
from agno.run.agent import RunOutput
from agno.session import AgentSession
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from agents.models import TableNames
from memories import runtime
from memories.runtime.indexes import INDEXES, ensure_runtime_indexes
from memories.runtime.schema import ensure_runtime_tables, schema_state
from tests.factories import memory_url, session_url, user_page
from tests.test_runtime_interop import _dump_schema

NOW = int(time.time())
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def renamed(make_agent):
    # Runs left blank: agno names them after the session table, "<session_table>_runs".
    return make_agent(memory_table="support_memories", session_table="support_sessions")


def schema_tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        )
        return {row[0] for row in cursor.fetchall()}


def seed(agno: PostgresDb) -> None:
    agno.upsert_user_memory(
        UserMemory(memory_id="m1", memory="Prefers window seats.", user_id="ann", topics=["travel"])
    )
    agno.upsert_session(AgentSession(session_id="s1", agent_id="a", user_id="ann", created_at=NOW))
    agno.upsert_run(
        RunOutput(
            run_id="r1", session_id="s1", agent_id="a", user_id="ann", content="Noted the seat."
        ),
        session_id="s1",
        user_id="ann",
        run_index=0,
    )


def test_runs_follow_a_renamed_session_table_as_in_agno():
    agno = PostgresDb(db_url="postgresql+psycopg://u@localhost/db", session_table="chats")
    assert TableNames.chosen(sessions="chats").runs == agno.runs_table_name == "chats_runs"
    assert (
        TableNames.chosen().runs == PostgresDb(db_url="postgresql+psycopg://u@h/d").runs_table_name
    )
    assert TableNames.chosen(sessions="chats", runs="turns").runs == "turns"


def test_a_table_name_is_checked_like_a_schema_name(make_agent):
    with pytest.raises(ValidationError):
        make_agent(memory_table='x"; DROP TABLE agno_memories; --')


def test_every_page_reads_the_renamed_tables(editor_client, renamed, agno_db_for):
    seed(agno_db_for(renamed))
    assert schema_tables(renamed.db_schema) >= {
        "support_memories",
        "support_sessions",
        "support_sessions_runs",
    }
    assert not schema_tables(renamed.db_schema) & {"agno_memories", "agno_sessions", "agno_runs"}
    slug = renamed.slug
    pages = {
        reverse("agents:list"): renamed.name,
        reverse("agents:memory_tab", args=[slug]): "ann",
        user_page(renamed, "ann"): "Prefers window seats.",
        reverse("memories:sessions", args=[slug]) + "?user_id=ann": "s1",
        session_url(renamed, "s1"): "Noted the seat.",
        reverse("memories:search", args=[slug]) + "?q=window": "Prefers window seats.",
        reverse("memories:cost", args=[slug]): "Cost",
        reverse("memories:sensitive", args=[slug]): "ensitive",
        reverse("memories:prune", args=[slug]): "rune",
        reverse("memories:export", args=[slug]): "Prefers window seats.",
    }
    for url, expected in pages.items():
        response = editor_client.get(url)
        assert response.status_code == 200, url
        body = (
            b"".join(response.streaming_content) if response.streaming else response.content
        ).decode()
        assert expected in body, url
    assert runtime.agent_overview(renamed).memory_count == 1
    assert schema_state(renamed).status == "ready"


def test_adding_the_first_memory_creates_the_tables_agno_would(
    editor_client, renamed, agno_db_for, make_agent
):
    response = editor_client.post(
        reverse("memories:add", args=[renamed.slug]),
        {"user_id": "ann", "text": "Added before the agent ran.", "topics": ""},
    )
    assert response.status_code == 302
    assert not schema_tables(renamed.db_schema) & {"agno_memories", "agno_sessions", "agno_runs"}
    agno = agno_db_for(renamed)
    assert [m.memory for m in agno.get_user_memories(user_id="ann")] == [
        "Added before the agent ran."
    ]
    # The tables are the ones agno itself creates under those names, index for index.
    twin = make_agent(memory_table="support_memories", session_table="support_sessions")
    agno_twin = agno_db_for(twin)
    seed(agno_twin)
    ours = [line.replace(renamed.db_schema, "S") for line in _dump_schema(renamed.db_schema)]
    theirs = [line.replace(twin.db_schema, "S") for line in _dump_schema(twin.db_schema)]
    assert ours == theirs
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT table_name FROM "{renamed.db_schema}".agno_schema_versions ORDER BY 1'
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "support_memories",
            "support_sessions",
            "support_sessions_runs",
        ]
    assert ensure_runtime_tables(renamed) is False


def test_edit_delete_import_and_forget_write_the_renamed_tables(
    editor_client, renamed, agno_db_for
):
    agno = agno_db_for(renamed)
    seed(agno)
    memory = runtime.get_memory(renamed, "ann", "m1")
    edited = editor_client.post(
        memory_url(renamed, "m1", "edit"),
        {
            "user_id": "ann",
            "text": "Prefers aisle seats.",
            "topics": "travel",
            "version": memory.version,
            "text_shown": memory.text,
            "topics_shown": "travel",
        },
    )
    assert edited.status_code in (200, 302), edited.content[:300]
    assert agno.get_user_memory("m1").memory == "Prefers aisle seats."
    line = json.dumps({"memory_id": "m2", "memory": "Imported.", "user_id": "bob", "topics": []})
    imported = editor_client.post(
        reverse("memories:import", args=[renamed.slug]),
        {"file": SimpleUploadedFile("m.jsonl", line.encode())},
    )
    assert imported.status_code in (200, 302), imported.content[:300]
    assert agno.get_user_memory("m2") is not None
    forget = editor_client.post(
        reverse("memories:forget"),
        {"user_id": "ann", "agent": renamed.slug, "confirmation": "ann"},
    )
    assert forget.status_code in (200, 302)
    assert agno.get_user_memories(user_id="ann") == []
    assert agno.get_session("s1", session_type=None) is None


def test_prune_and_indexes_use_the_renamed_tables(renamed, agno_db_for):
    agno = agno_db_for(renamed)
    for n in range(3):
        agno.upsert_user_memory(
            UserMemory(memory_id=f"old{n}", memory=f"Old {n}.", user_id="ann", updated_at=1000 + n)
        )
    call_command("prune_memories", "--agent", renamed.slug, "--keep-newest", "1")
    assert [m.memory_id for m in agno.get_user_memories(user_id="ann")] == ["old2"]
    built = ensure_runtime_indexes(renamed, concurrently=False)
    assert sorted(built) == sorted(i.name for i in INDEXES if i.table == "memories")
    assert ensure_runtime_indexes(renamed) == []
