"""Moving memories in and out: JSON Lines export in the runtime's field names, validated import.

An export is lossless: a header line marks it, and its rows import back exactly as stored
(same memory_id, memory of any JSON type, topics as stored, times as stored), checked only
for what Postgres can store. Rows a person writes (JSON Lines without the header, or CSV,
which carries text only) are checked against the same limits as the add form. Rows without
a memory_id get one derived from (user_id, text), so importing a file twice never duplicates.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from agents.models import Agent
from memories import runtime
from memories.forms import (
    CSV_SUFFIX,
    JSON_LINES_SUFFIXES,
    MAX_MEMORY_CHARS,
    MAX_TOPIC_CHARS,
    MAX_TOPICS,
    MAX_USER_ID_CHARS,
)
from memories.runtime.memories import EXPORT_FIELDS as RUNTIME_FIELDS
from studio import stored_json

MAX_IMPORT_ROWS = 50_000
MAX_IMPORT_BYTES = 20 * 1024 * 1024
REJECTED_SHOWN = 200  # rejected rows the import page lists; the rest are a count
# Derived ids for rows that come without one: stable, so a re-import finds the same memory.
IMPORT_NAMESPACE = uuid.UUID("0b8f8a7e-3f0e-4f43-9a55-6c1a3c4de2f1")

EXPORT_FORMAT = "memory-studio/memories"
EXPORT_VERSION = 2
# JSON cannot tell SQL NULL from JSON null by value alone, so the header says how rows do.
EXPORT_HEADER = {
    "format": EXPORT_FORMAT,
    "version": EXPORT_VERSION,
    "rows": "one memory per line as stored; a row without `topics` had SQL NULL there",
}
EXPORT_FIELDS = frozenset(RUNTIME_FIELDS)
TEXT_FIELDS = ("input", "feedback", "agent_id", "team_id", "user_id")
BIGINT = (-(2**63), 2**63 - 1)
# Python reads JSON nested ~1,000 deep at most; the page and the write need headroom.
MAX_JSON_DEPTH = 500


def pending_import_path(job_id: int) -> Path:
    """Where a background import's checked rows wait for the workers."""
    return Path(settings.MEDIA_ROOT) / "imports" / f"job-{job_id}.jsonl"


def export_lines(
    agent: Agent, user_id: str | None = None, *, one_user: bool = False
) -> Iterator[str]:
    """The header line, then one memory per line exactly as stored (see EXPORT_HEADER): the
    agent's, or with `one_user` one user's (user_id None: the runtime's NULL)."""
    yield json.dumps(EXPORT_HEADER) + "\n"
    for row in runtime.iter_memories_for_export(agent, user_id, one_user=one_user):
        yield stored_json.dumps(row, ensure_ascii=False) + "\n"


@dataclass
class ImportReport:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    added: int = 0
    updated: int = 0
    written: bool = False
    exact: bool = False  # a Memory Studio export: rows are restored exactly as stored

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def rejected_shown(self) -> list[tuple[int, str]]:
        return self.rejected[:REJECTED_SHOWN]

    @property
    def rejected_more(self) -> int:
        return max(0, len(self.rejected) - REJECTED_SHOWN)


class ImportFileError(ValueError):
    """The file as a whole cannot be read; no row was looked at."""


@dataclass
class ImportFile:
    exact: bool  # it starts with EXPORT_HEADER
    rows: Iterator[tuple[int, Any]]  # (line number, parsed row or the ValueError saying why not)


def read_file(data: bytes, filename: str) -> ImportFile:
    """The file's rows, JSON Lines or CSV as its name says; an export is recognised by its
    header line."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFileError(
            f"The file is not UTF-8 text (byte {error.start + 1} cannot be read); "
            "save it as UTF-8 and upload it again."
        ) from error
    name = filename.lower()
    if name.endswith(CSV_SUFFIX):
        return ImportFile(False, _csv_rows(text))
    if name.endswith(JSON_LINES_SUFFIXES):
        return _json_lines(text)
    raise ImportFileError("Upload a .jsonl (JSON Lines) or .csv file.")


def _csv_rows(text: str) -> Iterator[tuple[int, Any]]:
    """Each row with the line it starts on, as an editor numbers lines: a quoted field may
    hold line breaks, so a row can span several, and the reader's line_num is where it ends
    (DictReader's, until the next row is read, where the last one ended)."""
    records = csv.reader(io.StringIO(text, newline=""))
    start = 1  # the line the record being read starts on
    try:
        fieldnames = next(records, None)
        start = records.line_num + 1
        if not fieldnames or "memory" not in fieldnames:
            raise ImportFileError(
                "A CSV import needs a header row with at least a `memory` column."
            )
        counts = Counter(name for name in fieldnames if name.strip())  # "" is a blank column
        repeated = sorted(name for name, n in counts.items() if n > 1)
        if repeated:  # a dict of the row would keep the last column of a name, silently
            raise ImportFileError(
                f"The CSV header names {', '.join(f'`{n}`' for n in repeated)} more than once; "
                "give each column one name."
            )
        for values in records:
            line, start = start, records.line_num + 1
            if not values:  # a blank line
                continue
            extra = values[len(fieldnames) :]
            # Values past the header's columns (a spreadsheet's trailing empty cells are no
            # value).
            if any(value.strip() for value in extra):
                yield line, ValueError(f"{len(extra)} more value(s) than the header has columns")
                continue
            row: dict[str, Any] = dict(zip(fieldnames, values, strict=False))
            for name in fieldnames[len(values) :]:
                row[name] = None  # a short row, as DictReader fills it
            yield line, row
    except csv.Error as error:
        # e.g. a field over csv.field_size_limit() (128 KB): the reader cannot go on.
        raise ImportFileError(_unreadable_csv(start, records.line_num, error)) from None


def _unreadable_csv(start: int, stopped: int, error: csv.Error) -> str:
    """Why the CSV cannot be read, naming the line its unreadable row starts on (an unclosed
    quote there runs on until a field is too long, lines later)."""
    rule = f"A memory is at most {MAX_MEMORY_CHARS:,} characters"
    if stopped <= start:
        return (
            f"Line {start} of the CSV cannot be read ({error}). {rule}; check the quotes "
            "around that line."
        )
    return (
        f"Line {start} of the CSV cannot be read ({error}; the row it starts runs on to line "
        f"{stopped}). {rule}; check the quotes from line {start} on."
    )


def _json_lines(text: str) -> ImportFile:
    # JSON Lines ends lines with "\n" only: splitlines() would also split a memory at U+0085
    # or U+2028, which the export writes as they are.
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    numbered = ((n, line) for n, line in enumerate(lines, start=1) if line.strip())
    first = next(numbered, None)
    if first is None:
        return ImportFile(False, iter(()))
    header = _parse_line(first[1])
    if isinstance(header, dict) and header.get("format") == EXPORT_FORMAT:
        if header.get("version") != EXPORT_VERSION:
            raise ImportFileError(
                f"This export is version {header.get('version')!r}; this dashboard reads "
                f"version {EXPORT_VERSION}. Export it again from here."
            )
        return ImportFile(True, ((n, _parse_line(line)) for n, line in numbered))

    def rows() -> Iterator[tuple[int, Any]]:
        yield first[0], header
        for number, line in numbered:
            yield number, _parse_line(line)

    return ImportFile(False, rows())


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"the number {literal[:20]} is too large to store")
    return value


def _no_constant(literal: str) -> Any:
    raise ValueError(f"{literal} is not a number JSON or Postgres can store")


def _parse_line(line: str) -> Any:
    try:
        return json.loads(line, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        return ValueError(f"not valid JSON ({error.msg})")
    except RecursionError:
        return ValueError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    except ValueError as error:  # a non-finite number, or an integer of over 4,300 digits
        if "integer string conversion" in str(error):  # Python's words name its own setting
            return ValueError("not storable JSON: a whole number of more than 4,300 digits")
        return ValueError(f"not storable JSON: {error}")


def storable(value: Any, name: str) -> None:
    """Refuse what Postgres cannot store: NUL, lone surrogates, JSON nested past our reach."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"`{name}` is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValueError(
                    f"`{name}` contains the character U+0000 (NUL), which Postgres cannot store"
                )
            try:
                item.encode()
            except UnicodeEncodeError:
                raise ValueError(
                    f"`{name}` contains a lone surrogate, which Postgres cannot store"
                ) from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"`{name}` holds a number too large to store")


def _epoch(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be a whole number of epoch seconds")
    if not BIGINT[0] <= value <= BIGINT[1]:
        raise ValueError(f"`{name}` is outside the range Postgres can store (bigint)")
    return value


def exported_row(raw: Any, only_user_id: str | None = None) -> dict[str, Any]:
    """A row of a Memory Studio export, kept exactly as it is: only what cannot be stored
    is refused. A row without `topics` restores SQL NULL there."""
    if isinstance(raw, ValueError):
        raise raw
    if not isinstance(raw, dict):
        raise ValueError("each line must be a JSON object")
    unknown = sorted(set(raw) - EXPORT_FIELDS)
    if unknown:
        raise ValueError(f"unknown field `{unknown[0]}`: an export has only the runtime's fields")
    for name in ("memory_id", "memory", "created_at"):
        if name not in raw:
            raise ValueError(f"`{name}` is missing; every exported row has it")
    if not isinstance(raw["memory_id"], str):
        raise ValueError("`memory_id` must be text")
    for name in TEXT_FIELDS:
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise ValueError(f"`{name}` must be text or null")
    row = {name: raw.get(name) for name in EXPORT_FIELDS if name != "topics"}
    if "topics" in raw:
        row["topics"] = raw["topics"]
    for name, value in row.items():
        storable(value, name)
    owner = row["user_id"]
    if only_user_id is not None and owner != only_user_id:
        raise ValueError(f"`user_id` is {owner!r}, but this import is for {only_user_id!r}")
    row["created_at"] = _epoch(raw["created_at"], "created_at")
    if row["updated_at"] is not None:
        row["updated_at"] = _epoch(row["updated_at"], "updated_at")
    return row


def _typed_epoch(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # A CSV cell: ASCII digits only ("²" and "--5" pass isdigit() checks, then fail int()).
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,29}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be epoch seconds (a whole number)")
    if value >= 10_000_000_000:
        raise ValueError(f"`{name}` must be epoch seconds, not milliseconds")
    if value <= 0:
        raise ValueError(f"`{name}` must be epoch seconds after 1970 (it is {value})")
    return value


def _text_or_none(raw: dict[str, Any], name: str) -> str | None:
    """A typed row's text field, None when absent or empty; anything else (0, false, a list)
    is refused rather than read as missing or dropped unsaid."""
    value = raw.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be text (it is {type(value).__name__})")
    return value


def validate_row(raw: Any, default_user_id: str | None) -> dict[str, Any]:
    """A row a person wrote, in the runtime's shape, or ValueError saying what is wrong."""
    if isinstance(raw, ValueError):
        raise raw
    if not isinstance(raw, dict):
        raise ValueError("each line must be a JSON object")
    for name, value in raw.items():
        storable(value, str(name))
    text = raw.get("memory")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("`memory` must be non-empty text")
    text = text.strip()
    if len(text) > MAX_MEMORY_CHARS:
        raise ValueError(f"`memory` is longer than {MAX_MEMORY_CHARS:,} characters")
    user_id = _text_or_none(raw, "user_id") or default_user_id
    if not user_id:
        raise ValueError("`user_id` is missing")
    if default_user_id is not None and user_id != default_user_id:
        raise ValueError(f"`user_id` is {user_id!r}, but this import is for {default_user_id!r}")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise ValueError(f"`user_id` is longer than {MAX_USER_ID_CHARS} characters")
    topics = raw.get("topics")
    if topics in (None, ""):
        topics = []
    elif isinstance(topics, str):  # CSV: comma-separated
        topics = [t.strip() for t in topics.split(",") if t.strip()]
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise ValueError("`topics` must be a list of strings (or comma-separated in CSV)")
    topics = list(dict.fromkeys(" ".join(t.split()) for t in topics if t.strip()))
    if len(topics) > MAX_TOPICS:
        raise ValueError(f"more than {MAX_TOPICS} topics")
    if any(len(t) > MAX_TOPIC_CHARS for t in topics):
        raise ValueError(f"a topic is longer than {MAX_TOPIC_CHARS} characters")
    said = raw.get("input") or ""
    if not isinstance(said, str) or len(said) > MAX_MEMORY_CHARS:
        raise ValueError("`input` must be text of at most 10,000 characters")
    memory_id = raw.get("memory_id") or str(uuid.uuid5(IMPORT_NAMESPACE, f"{user_id}\n{text}"))
    if not isinstance(memory_id, str) or len(memory_id) > 64:
        raise ValueError(
            "`memory_id` must be text of at most 64 characters (a file this dashboard "
            "exported keeps ids of any length)"
        )
    stamps = {}
    for name in ("created_at", "updated_at"):
        stamp = _typed_epoch(raw.get(name), name)
        if stamp is not None:
            stamps[name] = stamp
    optional = {name: _text_or_none(raw, name) for name in ("feedback", "agent_id", "team_id")}
    return {
        "memory_id": memory_id,
        "memory": text,
        "topics": topics,
        "input": said,
        "user_id": user_id,
        **optional,
        **stamps,
    }


def check_import(
    agent: Agent, data: bytes, filename: str, *, user_id: str | None = None
) -> ImportReport:
    """Validate every row of a file; writes nothing (memories.actions.import_memories does)."""
    upload = read_file(data, filename)
    report = ImportReport(exact=upload.exact)
    seen: dict[str, int] = {}
    for number, raw in upload.rows:
        if len(report.accepted) + len(report.rejected) >= MAX_IMPORT_ROWS:
            raise ImportFileError(f"The file has more than {MAX_IMPORT_ROWS:,} rows; split it.")
        try:
            row = exported_row(raw, user_id) if upload.exact else validate_row(raw, user_id)
        except ValueError as error:
            report.rejected.append((number, str(error)))
            continue
        if row["memory_id"] in seen:
            report.rejected.append((number, f"repeats the memory of line {seen[row['memory_id']]}"))
            continue
        seen[row["memory_id"]] = number
        report.accepted.append({**row, "_line": number})
    owners = runtime.memory_owners(agent, list(seen))
    for row in list(report.accepted):
        # A memory stored without a user_id (NULL) is not anyone's to take over either.
        if row["memory_id"] in owners and owners[row["memory_id"]] != row["user_id"]:
            report.accepted.remove(row)
            report.rejected.append((row["_line"], "its memory_id belongs to another user"))
    report.rejected.sort()
    return report
