"""Export in the runtime's field names; import validated whole, keyed by memory_id."""

from __future__ import annotations

import json

import pytest
from agno.db.schemas.memory import UserMemory
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from memories import runtime
from memories.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def upload(editor_client, agent, name: str, data: bytes, **fields):
    return editor_client.post(
        reverse("memories:import", args=[agent.slug]),
        {"file": SimpleUploadedFile(name, data), **fields},
    )


def test_export_writes_what_agno_wrote_in_its_field_names(editor_client, agent, agno_db_for):
    agno = agno_db_for(agent)
    written = agno.upsert_user_memory(
        UserMemory(memory="Likes tea.", user_id="ann", topics=["drinks"], input="tea!")
    )
    agno.upsert_user_memory(UserMemory(memory="Bob's.", user_id="bob"))
    response = editor_client.get(reverse("memories:export", args=[agent.slug]), {"user_id": "ann"})
    assert response.status_code == 200 and response["Content-Type"].startswith(
        "application/x-ndjson"
    )
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert rows == [
        {
            "memory_id": written.memory_id,
            "memory": "Likes tea.",
            "topics": ["drinks"],
            "input": "tea!",
            "feedback": None,
            "agent_id": None,
            "team_id": None,
            "user_id": "ann",
            "created_at": written.created_at,
            "updated_at": written.updated_at,
        }
    ]
    everything = editor_client.get(reverse("memories:export", args=[agent.slug]))
    assert len(b"".join(everything.streaming_content).splitlines()) == 2


def test_an_export_imports_into_another_agent_exactly_and_twice_without_duplicates(
    editor_client, make_agent, agno_db_for
):
    source, target = make_agent(), make_agent()
    agno_db_for(source).upsert_user_memory(UserMemory(memory="A.", user_id="ann", topics=["x"]))
    agno_db_for(source).upsert_user_memory(UserMemory(memory="B.", user_id="bob"))
    exported = b"".join(
        editor_client.get(reverse("memories:export", args=[source.slug])).streaming_content
    )
    first = upload(editor_client, target, "export.jsonl", exported)
    assert first.status_code == 200 and "Written: 2 added, 0 updated." in first.content.decode()
    again = upload(editor_client, target, "export.jsonl", exported)
    assert "Written: 0 added, 0 updated." in again.content.decode()
    theirs = {m.memory_id: m for m in agno_db_for(target).get_user_memories()}
    mine = {m.memory_id: m for m in agno_db_for(source).get_user_memories()}
    assert set(theirs) == set(mine)
    for memory_id, original in mine.items():
        copy = theirs[memory_id]
        assert (copy.memory, copy.topics, copy.user_id, copy.created_at) == (
            original.memory,
            original.topics,
            original.user_id,
            original.created_at,
        )
    assert AuditEvent.objects.filter(action="memories.imported").count() == 2


def test_an_import_with_one_bad_row_fails_whole(editor_client, agent, agno_db_for):
    data = (
        jsonl(
            {"memory": "Good one.", "user_id": "ann", "topics": ["a"]},
            {"memory": "   ", "user_id": "ann"},
            {"memory": "Also good.", "user_id": "bob", "created_at": 1_700_000_000},
        )
        + b"{not json\n"
    )
    response = upload(editor_client, agent, "facts.jsonl", data)
    html = response.content.decode()
    assert response.status_code == 422
    assert "2 rows valid, 2 rejected." in html and "Nothing was written." in html
    assert "Line 2: `memory` must be non-empty text" in html and "Line 4: not valid JSON" in html
    assert runtime.user_memories(agent, "ann").items == []
    assert not AuditEvent.objects.exists()
    chosen = upload(editor_client, agent, "facts.jsonl", data, valid_rows_only="on")
    assert "Written: 2 added, 0 updated." in chosen.content.decode()
    assert sorted(m.memory for m in agno_db_for(agent).get_user_memories()) == [
        "Also good.",
        "Good one.",
    ]
    bob = agno_db_for(agent).get_user_memories(user_id="bob")[0]
    assert bob.created_at == 1_700_000_000


def test_csv_imports_seed_facts_and_reimport_does_not_duplicate(editor_client, agent, agno_db_for):
    data = (
        b"memory,user_id,topics,input\n"
        b'Prefers email.,ann@example.com,"contact, prefs",\n'
        b"Renewal in May.,ann@example.com,,\n"
    )
    assert "Written: 2 added" in upload(editor_client, agent, "crm.csv", data).content.decode()
    assert (
        "Written: 0 added, 0 updated."
        in upload(editor_client, agent, "crm.csv", data).content.decode()
    )
    memories = agno_db_for(agent).get_user_memories(user_id="ann@example.com")
    assert sorted((m.memory, tuple(m.topics or ())) for m in memories) == [
        ("Prefers email.", ("contact", "prefs")),
        ("Renewal in May.", ()),
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"memory": "x"}, "`user_id` is missing"),
        ({"memory": "x" * 10_001, "user_id": "a"}, "longer than 10,000"),
        (
            {"memory": "x", "user_id": "a", "topics": [f"t{n}" for n in range(21)]},
            "more than 20 topics",
        ),
        ({"memory": "x", "user_id": "a", "topics": ["y" * 65]}, "longer than 64"),
        ({"memory": "x", "user_id": "a", "topics": "not-a-list-in-json"}, None),
        ({"memory": "x", "user_id": "a", "created_at": 1_700_000_000_000}, "not milliseconds"),
        ({"memory": "x", "user_id": "a", "created_at": "soon"}, "epoch seconds"),
        (["a", "list"], "must be a JSON object"),
    ],
)
def test_each_rejected_row_says_why(editor_client, agent, row, reason):
    response = upload(editor_client, agent, "x.jsonl", jsonl(row))
    if reason is None:  # a comma string is accepted as topics, like CSV
        assert response.status_code == 200
        return
    assert response.status_code == 422 and reason in response.content.decode()


def test_a_memory_id_of_another_user_is_refused(editor_client, agent, agno_db_for):
    existing = agno_db_for(agent).upsert_user_memory(UserMemory(memory="Bob's.", user_id="bob"))
    response = upload(
        editor_client,
        agent,
        "x.jsonl",
        jsonl({"memory_id": existing.memory_id, "memory": "Mine now.", "user_id": "ann"}),
    )
    assert "belongs to another user" in response.content.decode()
    assert agno_db_for(agent).get_user_memory(existing.memory_id).memory == "Bob's."


def test_unreadable_files_are_refused_plainly(editor_client, agent):
    assert "Upload a .jsonl" in upload(editor_client, agent, "x.txt", b"hello").content.decode()
    assert (
        "not UTF-8" in upload(editor_client, agent, "x.jsonl", b"\xff\xfe\x00bad").content.decode()
    )
    assert (
        "`memory` column"
        in upload(editor_client, agent, "x.csv", b"text,user\nx,y\n").content.decode()
    )


def test_the_commands_export_and_import(make_agent, agno_db_for, tmp_path):
    source, target = make_agent(slug="source"), make_agent(slug="target")
    agno_db_for(source).upsert_user_memory(UserMemory(memory="A.", user_id="ann"))
    out = tmp_path / "out.jsonl"
    call_command("export_memories", "--agent", "source", "--output", str(out))
    call_command("import_memories", str(out), "--agent", "target")
    assert [m.memory for m in agno_db_for(target).get_user_memories(user_id="ann")] == ["A."]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl({"memory": "ok", "user_id": "z"}, {"memory": ""}))
    with pytest.raises(CommandError, match="rejected"):
        call_command("import_memories", str(bad), "--agent", "target")
    assert agno_db_for(target).get_user_memories(user_id="z") == []
