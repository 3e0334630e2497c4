"""Export in the runtime's field names; import validated whole, keyed by memory_id."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from urllib.parse import urlencode

import pytest
from agno.db.schemas.memory import UserMemory
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memories import import_export, runtime
from memories.models import AuditEvent, Job
from tests.factories import run_queued_tasks, set_memory_columns, stored_memories

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
    header, *rows = [
        json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()
    ]
    assert header["format"] == "memory-studio/memories" and header["version"] == 2
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
    assert len(b"".join(everything.streaming_content).splitlines()) == 1 + 2  # header, rows


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
        ({"memory": "x", "user_id": 5}, "`user_id` must be text (it is int)"),
        ({"memory": "x", "user_id": 0}, "`user_id` must be text (it is int)"),
        ({"memory": "x", "user_id": "a", "created_at": "²"}, "epoch seconds (a whole number)"),
        ({"memory": "x", "user_id": "a", "created_at": "--5"}, "epoch seconds (a whole number)"),
        ({"memory": "x", "user_id": "a", "feedback": 5}, "`feedback` must be text (it is int)"),
        ({"memory": "x", "user_id": "a", "agent_id": ["x"]}, "`agent_id` must be text"),
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


def export_of(editor_client, agent, **params) -> bytes:
    url = reverse("memories:export", args=[agent.slug])
    if params:
        url += "?" + urlencode(params)
    response = editor_client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


LONG_ID = "a/b%20c/" + "ключ%" * 58 + "/end"  # 300 characters, "/" and "%" inside
AWKWARD = [
    UserMemory(memory_id=LONG_ID, memory="Пьёт чай 🍵", user_id="анна", topics=["напитки"]),
    UserMemory(
        memory_id="dict",
        memory={"likes": ["tea", 1.5, None, True], "nested": {"k": "v"}},
        user_id="ann",
        topics=[f"topic {n}, with comma" for n in range(25)],
        created_at=1_700_000_000_000,  # milliseconds, as some writers store them
        updated_at=1_700_000_000_123,
    ),
    UserMemory(memory_id="list", memory=["a", 2], user_id="ann", topics="bare string"),
    UserMemory(memory_id="number", memory=42, user_id="ann", created_at=0, updated_at=0),
    UserMemory(memory_id="float", memory=2.5, user_id="ann", created_at=-86_400),
    UserMemory(memory_id="bool", memory=True, user_id=None, created_at=253_402_300_800),
    UserMemory(memory_id="empty user", memory="  padded  ", user_id="", topics=[" a ", "a"]),
    UserMemory(
        memory_id="",
        memory="x" * 12_000,
        user_id="ann",
        input="said\nthis",
        feedback="good",
        agent_id="agent-1",
        team_id="team-1",
    ),
    UserMemory(memory_id="sql null topics", memory="No topics at all.", user_id="ann"),
]


def test_an_export_of_awkward_rows_imports_into_another_agent_exactly(
    editor_client, make_agent, agno_db_for
):
    source, target = make_agent(), make_agent()
    for memory in AWKWARD:
        agno_db_for(source).upsert_user_memory(memory)
    set_memory_columns(source.db_schema, "sql null topics", topics="NULL", updated_at="NULL")
    exported = export_of(editor_client, source)
    response = upload(editor_client, target, "export.jsonl", exported)
    html = response.content.decode()
    assert response.status_code == 200, html
    assert f"Written: {len(AWKWARD)} added, 0 updated." in html
    assert "An export: rows restored as stored." in html
    assert stored_memories(target.db_schema) == stored_memories(source.db_schema)
    theirs = sorted(agno_db_for(target).get_user_memories(), key=lambda m: m.memory_id)
    mine = sorted(agno_db_for(source).get_user_memories(), key=lambda m: m.memory_id)
    assert [vars(m) for m in theirs] == [vars(m) for m in mine]
    assert len(mine) == len(AWKWARD)
    again = upload(editor_client, target, "export.jsonl", exported)
    assert "Written: 0 added, 0 updated." in again.content.decode()
    assert b'"topics": null' in exported  # JSON null and SQL NULL stay apart
    assert stored_memories(target.db_schema) == stored_memories(source.db_schema)


def test_an_export_imported_in_the_background_is_restored_exactly_too(
    editor_client, make_agent, agno_db_for, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    source, target = make_agent(), make_agent()
    rows = [
        *AWKWARD,
        UserMemory(memory_id="json null", memory="Set below.", user_id="ann", topics=[]),
    ]
    for memory in rows:
        agno_db_for(source).upsert_user_memory(memory)
    set_memory_columns(source.db_schema, "sql null topics", topics="NULL", updated_at="NULL")
    set_memory_columns(source.db_schema, "json null", memory="'null'::jsonb", topics="'[]'")
    exported = export_of(editor_client, source)
    response = upload(editor_client, target, "export.jsonl", exported, background="on")
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        run_queued_tasks()
    job = Job.objects.get(kind=Job.Kind.IMPORT)
    assert (job.state, job.result) == ("done", {"added": len(rows), "updated": 0})
    assert stored_memories(target.db_schema) == stored_memories(source.db_schema)
    theirs = sorted(agno_db_for(target).get_user_memories(), key=lambda m: m.memory_id)
    mine = sorted(agno_db_for(source).get_user_memories(), key=lambda m: m.memory_id)
    assert [vars(m) for m in theirs] == [vars(m) for m in mine]


def test_an_import_restores_an_exported_memory_that_changed_since(
    editor_client, agent, agno_db_for
):
    agno = agno_db_for(agent)
    agno.upsert_user_memory(
        UserMemory(memory_id="m", memory={"a": 1}, user_id="ann", topics=None, created_at=5)
    )
    before = stored_memories(agent.db_schema)
    exported = export_of(editor_client, agent, user_id="ann")
    agno.upsert_user_memory(UserMemory(memory_id="m", memory={"a": True}, user_id="ann"))
    response = upload(editor_client, agent, "ann.jsonl", exported, user_id="ann")
    assert "Written: 0 added, 1 updated." in response.content.decode()
    assert stored_memories(agent.db_schema) == before  # True is not 1: restored as it was


def test_an_export_for_one_user_refuses_rows_of_another(editor_client, agent, agno_db_for):
    agno_db_for(agent).upsert_user_memory(UserMemory(memory="Bob's.", user_id=None))
    exported = export_of(editor_client, agent)
    response = upload(editor_client, agent, "x.jsonl", exported, user_id="ann")
    assert response.status_code == 422
    assert "`user_id` is None, but this import is for &#x27;ann&#x27;" in response.content.decode()


def test_a_memory_without_user_id_is_not_taken_over_by_an_import(editor_client, agent, agno_db_for):
    stored = agno_db_for(agent).upsert_user_memory(UserMemory(memory="Nobody's.", user_id=None))
    row = {"memory_id": stored.memory_id, "memory": "Mine now.", "user_id": "ann"}
    response = upload(editor_client, agent, "x.jsonl", jsonl(row))
    assert response.status_code == 422 and "belongs to another user" in response.content.decode()
    assert agno_db_for(agent).get_user_memory(stored.memory_id).memory == "Nobody's."


def exported_file(**row) -> bytes:
    full = {"memory_id": "m", "memory": "x", "user_id": "ann", "created_at": 1, **row}
    return (json.dumps(import_export.EXPORT_HEADER) + "\n" + json.dumps(full)).encode() + b"\n"


def raw_exported_file(line: str) -> bytes:
    return (json.dumps(import_export.EXPORT_HEADER) + "\n" + line + "\n").encode()


DEEP = "[" * 100_000 + "]" * 100_000
PROBES = (
    [
        ("big.csv", b"memory,user_id\n" + b'"' + b"x" * 140_000 + b'",ann\n', "cannot be read"),
        ("deep.jsonl", DEEP.encode(), "nested more than 500 levels"),
        (
            "deep.jsonl",
            raw_exported_file('{"memory": ' + DEEP + "}"),
            "nested more than 500 levels",
        ),
        ("inf.jsonl", b'{"memory": "x", "user_id": "a", "created_at": 1e400}\n', "too large"),
        (
            "inf.jsonl",
            raw_exported_file('{"memory_id": "m", "memory": 1, "created_at": 1e400}'),
            "too large",
        ),
        ("big.jsonl", b'{"memory": "x", "user_id": "a", "created_at": 1e30}\n', "not milliseconds"),
        ("big.jsonl", exported_file(created_at=10**30), "outside the range Postgres can store"),
        ("big.jsonl", exported_file(updated_at=1e30), "whole number of epoch seconds"),
        (
            "nan.jsonl",
            b'{"memory": "x", "user_id": "a", "created_at": NaN}\n',
            "NaN is not a number",
        ),
        ("nan.jsonl", raw_exported_file('{"memory": NaN}'), "NaN is not a number"),
        ("latin1.csv", "memory,user_id\nCafé,ann\n".encode("latin-1"), "not UTF-8 text (byte 19"),
        (
            "zero.jsonl",
            b'{"memory": "x", "user_id": "a", "created_at": 0}\n',
            "after 1970 (it is 0)",
        ),
        (
            "digits.jsonl",
            b'{"memory": "x", "user_id": "a", "created_at": ' + b"9" * 5000 + b"}\n",
            "a whole number of more than 4,300 digits",  # not Python's sys.set_int_max_str_digits
        ),
        ("surrogate.jsonl", b'{"memory": "\\ud800", "user_id": "a"}\n', "lone surrogate"),
        ("surrogate.jsonl", exported_file(memory={"\ud800": 1}), "lone surrogate"),
        ("extra.jsonl", exported_file(mood="happy"), "unknown field `mood`"),
        ("version.jsonl", b'{"format": "memory-studio/memories", "version": 3}\n', "version 3"),
        ("nul.csv", b"memory,user_id,topics\nx\x00y,ann,\n", "U+0000"),
        ("twice.csv", b"memory,memory,user_id\na,b,ann\n", "names `memory` more than once"),
        ("ragged.csv", b"memory,user_id\na,ann,extra,more\n", "2 more value(s) than the header"),
    ]
    + [
        (f"nul-{name}.jsonl", jsonl({"memory": "x", "user_id": "a", name: "x\x00y"}), "U+0000")
        for name in ("memory", "user_id", "topics", "input", "memory_id", "feedback")
    ]
    + [
        (f"nul-exported-{name}.jsonl", exported_file(**{name: "x\x00y"}), "U+0000")
        for name in ("memory", "user_id", "topics", "input", "memory_id", "feedback", "team_id")
    ]
)


@pytest.mark.parametrize(("name", "data", "reason"), PROBES, ids=[p[0] for p in PROBES])
def test_each_import_probe_gets_a_clear_422_and_writes_nothing(
    editor_client, agent, name, data, reason
):
    response = upload(editor_client, agent, name, data)
    assert response.status_code == 422
    assert reason in response.content.decode()
    assert runtime.memory_owners(agent, ["m"]) == {}
    assert not AuditEvent.objects.filter(action="memories.imported").exists()


def test_an_id_postgres_cannot_index_is_refused_whole(editor_client, agent, agno_db_for):
    agno_db_for(agent).upsert_user_memory(UserMemory(memory_id="kept", memory="x", user_id="a"))
    random_id = "".join(chr(0x4E00 + (n * 7919) % 20_000) for n in range(3_000))
    data = exported_file(memory_id="fine") + exported_file(memory_id=random_id).split(b"\n", 1)[1]
    response = upload(editor_client, agent, "x.jsonl", data)
    assert response.status_code == 422
    assert "too long for the runtime&#x27;s index" in response.content.decode()
    assert [row[0] for row in stored_memories(agent.db_schema)] == ["kept"]


def test_the_import_page_says_csv_cannot_be_lossless(editor_client, agent):
    response = editor_client.get(reverse("memories:import", args=[agent.slug]))
    assert response.status_code == 200
    assert "CSV carries text only" in response.content.decode()
    assert "use the JSON Lines export to move memories losslessly" in response.content.decode()


def test_line_separators_inside_a_memory_do_not_split_its_line(
    editor_client, make_agent, agno_db_for
):
    source, target = make_agent(), make_agent()
    agno_db_for(source).upsert_user_memory(
        UserMemory(memory="a\x85b\u2028c\x1cd\re", user_id="ann", team_id="\u2029")
    )
    response = upload(editor_client, target, "x.jsonl", export_of(editor_client, source))
    assert "Written: 1 added" in response.content.decode()
    assert stored_memories(target.db_schema) == stored_memories(source.db_schema)


def test_a_spreadsheets_trailing_empty_columns_are_no_data(editor_client, agent, agno_db_for):
    data = b"memory,user_id,,\r\nPrefers email.,ann,,\r\nRenewal in May.,ann,\r\n"
    response = upload(editor_client, agent, "sheet.csv", data)
    assert response.status_code == 200, response.content.decode()[:500]
    memories = agno_db_for(agent).get_user_memories(user_id="ann")
    assert sorted(m.memory for m in memories) == ["Prefers email.", "Renewal in May."]


BIG = "x" * 140_000  # over csv.field_size_limit() (128 KB): the reader stops there


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (f"memory,user_id\nTea.,ann\n{BIG},ann\n", "Line 3 of the CSV cannot be read (field"),
        (
            f'memory,user_id\nTea.,ann\n"Opens on line 3\nand runs\n{BIG}",ann\n',
            "Line 3 of the CSV cannot be read (field larger than field limit (131072); the row "
            "it starts runs on to line 5). A memory is at most 10,000 characters; check the "
            "quotes from line 3 on.",
        ),
        (f"{BIG},user_id\nTea.,ann\n", "Line 1 of the CSV cannot be read"),
        (f'memory,user_id\r\n"Two\r\nlines",ann\r\n\r\n{BIG},ann\r\n', "Line 5 of the CSV"),
    ],
    ids=["plain", "quoted-across-lines", "header", "after-a-two-line-row-and-a-blank"],
)
def test_an_unreadable_csv_field_is_named_by_the_line_an_editor_shows(
    editor_client, agent, data, said
):
    response = upload(editor_client, agent, "x.csv", data.encode())
    assert response.status_code == 422
    assert said in unescape(response.content.decode())
    assert not AuditEvent.objects.filter(action="memories.imported").exists()


def test_a_rejected_csv_row_is_named_by_the_line_it_starts_on(editor_client, agent, agno_db_for):
    data = b'memory,user_id\n"Two\nlines",\nFine.,ann\n\n" ",ann\n'
    response = upload(editor_client, agent, "x.csv", data)
    html = unescape(response.content.decode())
    assert response.status_code == 422
    assert "Line 2: `user_id` is missing" in html  # the row runs over lines 2 and 3
    assert "Line 6: `memory` must be non-empty text" in html
    assert agno_db_for(agent).get_user_memories() == []  # nothing written: not all passed


# Line breaks an editor shows as such; U+2028 and friends are left to the JSON Lines tests.
CSV_TEXT = st.lists(st.sampled_from(["a", "é", " ", ",", '"', "\n", "\r\n"]), max_size=8).map(
    "".join
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(CSV_TEXT, st.sampled_from(["ann", ""]), st.integers(0, 2)), min_size=1, max_size=6
    ),
    ending=st.sampled_from(["\n", "\r\n"]),
    unreadable=st.none() | st.integers(0, 5),
)
def test_every_csv_line_number_is_where_its_row_starts(
    editor_client, agent, rows, ending, unreadable
):
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=ending)
    writer.writerow(["memory", "user_id"])
    expected, starts, first = [], [], {}
    for n, (text, user_id, blanks) in enumerate(rows):
        out.write(ending * blanks)
        start = len(io.StringIO(out.getvalue(), newline="").readlines()) + 1
        starts.append(start)
        if unreadable == n:
            text += BIG
        writer.writerow([text, user_id])
        if not text.strip():
            expected.append((start, "`memory` must be non-empty text"))
        elif not user_id:
            expected.append((start, "`user_id` is missing"))
        elif text.strip() in first:  # the same derived memory_id
            expected.append((start, f"repeats the memory of line {first[text.strip()]}"))
        else:
            first[text.strip()] = start
    response = upload(editor_client, agent, "x.csv", out.getvalue().encode(), dry_run="1")
    html = unescape(response.content.decode())
    assert response.status_code in (200, 422), html[:300]
    if unreadable is not None and unreadable < len(rows):
        assert f"Line {starts[unreadable]} of the CSV cannot be read" in html
        return
    reported = [
        (int(line), reason) for line, reason in re.findall(r"<li>Line (\d+): ([^<]*)</li>", html)
    ]
    assert reported == expected
