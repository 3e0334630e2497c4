"""Moving memories in and out: JSON Lines export in the runtime's field names, validated import.

An import checks every row before writing anything. Rows without a memory_id get one derived
from (user_id, text), so importing the same file twice never duplicates a memory.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
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

MAX_IMPORT_ROWS = 50_000
MAX_IMPORT_BYTES = 20 * 1024 * 1024
REJECTED_SHOWN = 200  # rejected rows the import page lists; the rest are a count
# Derived ids for rows that come without one: stable, so a re-import finds the same memory.
IMPORT_NAMESPACE = uuid.UUID("0b8f8a7e-3f0e-4f43-9a55-6c1a3c4de2f1")


def pending_import_path(job_id: int) -> Path:
    """Where a background import's checked rows wait for the workers."""
    return Path(settings.MEDIA_ROOT) / "imports" / f"job-{job_id}.jsonl"


def export_lines(agent: Agent, user_id: str | None = None) -> Iterator[str]:
    for row in runtime.iter_memories_for_export(agent, user_id):
        yield json.dumps(row, ensure_ascii=False) + "\n"


@dataclass
class ImportReport:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    added: int = 0
    updated: int = 0
    written: bool = False

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


def parse_rows(data: bytes, filename: str) -> Iterator[tuple[int, Any]]:
    """(line number, raw row) pairs from JSON Lines or CSV, chosen by the file's name."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFileError("The file is not UTF-8 text.") from error
    name = filename.lower()
    if name.endswith(CSV_SUFFIX):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "memory" not in reader.fieldnames:
            raise ImportFileError(
                "A CSV import needs a header row with at least a `memory` column."
            )
        for number, row in enumerate(reader, start=2):
            yield number, row
    elif name.endswith(JSON_LINES_SUFFIXES):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                yield number, ValueError(f"not valid JSON ({error.msg})")
    else:
        raise ImportFileError("Upload a .jsonl (JSON Lines) or .csv file.")


def validate_row(raw: Any, default_user_id: str | None) -> dict[str, Any]:
    """One row in the runtime's shape, or ValueError saying what is wrong with it."""
    if isinstance(raw, ValueError):
        raise raw
    if not isinstance(raw, dict):
        raise ValueError("each line must be a JSON object")
    text = raw.get("memory")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("`memory` must be non-empty text")
    text = text.strip().replace("\x00", "")
    if len(text) > MAX_MEMORY_CHARS:
        raise ValueError(f"`memory` is longer than {MAX_MEMORY_CHARS:,} characters")
    user_id = raw.get("user_id") or default_user_id
    if not isinstance(user_id, str) or not user_id:
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
        raise ValueError("`memory_id` must be text of at most 64 characters")
    stamps = {}
    for name in ("created_at", "updated_at"):
        value = raw.get(name)
        if value in (None, ""):
            continue
        try:
            stamps[name] = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` must be epoch seconds (a whole number)") from None
        if not 0 < stamps[name] < 10_000_000_000:
            raise ValueError(f"`{name}` must be epoch seconds, not milliseconds")
    return {
        "memory_id": memory_id,
        "memory": text,
        "topics": topics,
        "input": said.replace("\x00", ""),
        "user_id": user_id,
        "feedback": raw.get("feedback") if isinstance(raw.get("feedback"), str) else None,
        "agent_id": raw.get("agent_id") if isinstance(raw.get("agent_id"), str) else None,
        "team_id": raw.get("team_id") if isinstance(raw.get("team_id"), str) else None,
        **stamps,
    }


def check_import(
    agent: Agent, data: bytes, filename: str, *, user_id: str | None = None
) -> ImportReport:
    """Validate every row of a file; writes nothing (memories.actions.import_memories does)."""
    report = ImportReport()
    seen: dict[str, int] = {}
    for number, raw in parse_rows(data, filename):
        if len(report.accepted) + len(report.rejected) >= MAX_IMPORT_ROWS:
            raise ImportFileError(f"The file has more than {MAX_IMPORT_ROWS:,} rows; split it.")
        try:
            row = validate_row(raw, user_id)
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
        owner = owners.get(row["memory_id"])
        if owner is not None and owner != row["user_id"]:
            report.accepted.remove(row)
            report.rejected.append((row["_line"], "its memory_id belongs to another user"))
    report.rejected.sort()
    return report
