"""JSON values as Postgres stores them, read and written back however deep they are nested.

Python's json recurses once per level and stops near 1,000 levels, less the caller's stack:
agno writes values nested over 900 deep (its own json.dumps, called from a shallow stack),
which json.loads refuses on a page's deeper one (from about 870). Postgres holds them. `loads`
reads any stored value: one nested more than MAX_DEPTH levels keeps its deep parts as
TooDeepJSON, the exact text Postgres gave, which pages show as TOO_DEEP_TO_SHOW and which
`dumps` (and StoredJSONField, on a write) puts back verbatim, so no write loses what it read.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.db import models
from django.db.models.fields.json import KeyTransform

# What a page shows for a stored JSON value nested too deep to read or write as Python values.
TOO_DEEP_TO_SHOW = "(stored JSON nested too deeply to show)"
# Values nested deeper are kept as text: str(), json.dumps and templates need the headroom.
MAX_DEPTH = 500
# How many levels of a too-deep value are read member by member before the rest is kept whole.
SPLIT_LEVELS = 8

# A JSON string token (skipped whole: brackets inside it are text), or one structural character.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


class TooDeepJSON:
    """A stored JSON value nested too deep to read, kept as the JSON text Postgres gave."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return TOO_DEEP_TO_SHOW

    __repr__ = __str__  # shown the same inside a list or dict that str() renders

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TooDeepJSON) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def is_array(self) -> bool:
        return self.text.startswith("[")

    def members(self) -> list[Any]:
        """An array's items or an object's values, each read as `loads` reads a value."""
        return [loads(text) for _, text, _ in _members(self.text)]


def loads(data: str | bytes) -> Any:
    """json.loads for a stored value, which never raises on depth (see TooDeepJSON)."""
    text = data if isinstance(data, str) else bytes(data).decode()
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # too few brackets to nest that deep
        return json.loads(text)
    try:
        value = json.loads(text)
    except RecursionError:
        return _read_deep(text, SPLIT_LEVELS)
    return value if _within(value, MAX_DEPTH) else _read_deep(text, SPLIT_LEVELS)


def _within(value: Any, limit: int) -> bool:
    """Whether a decoded value is nested at most `limit` levels (a walk, not a recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def _read_deep(text: str, levels: int) -> Any:
    """A value nested too deep, read down to where it branches: a container of several
    members is read member by member, so ["travel", <too deep>] keeps its topic; one of a
    single member ([[[...]]]) has nothing to show but depth and is kept whole."""
    text = text.strip()
    members = _members(text)
    if levels == 0 or len(members) < 2:
        return TooDeepJSON(text)
    values = [
        (key, json.loads(member) if depth <= MAX_DEPTH else _read_deep(member, levels - 1))
        for key, member, depth in members
    ]
    if text.startswith("{"):
        return dict(values)
    return [value for _, value in values]


def _members(text: str) -> list[tuple[str | None, str, int]]:
    """An array's or object's members as (key or None, JSON text, how deep it nests), found in
    one pass over its tokens."""
    text = text.strip()
    if text[:1] not in ("[", "{"):
        raise json.JSONDecodeError("not an array or object", text, 0)
    is_object = text.startswith("{")
    found: list[tuple[str | None, str, int]] = []
    depth, deepest, start, key = 0, 0, 1, None
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark.startswith('"'):
            if depth == 1 and is_object and key is None:  # a key: its value follows the colon
                key = json.loads(mark)
                start = text.index(":", token.end()) + 1
            continue
        if mark in "[{":
            depth += 1
            deepest = max(deepest, depth - 1)
            continue
        if depth > 1:  # inside a member: its own comma or closing bracket
            depth -= mark != ","
            continue
        if depth != 1:
            raise json.JSONDecodeError("brackets do not match", text, token.start())
        member = text[start : token.start()].strip()
        if member:
            found.append((key, member, deepest))
        if mark != ",":  # the container's closing bracket
            depth = 0
        start, key, deepest = token.end(), None, 0
    if depth != 0:
        raise json.JSONDecodeError("brackets do not match", text, len(text))
    return found


def shown(value: Any) -> str:
    """A stored JSON value as a page shows it: text as it is, anything else as indented JSON,
    a part too deep to read (TooDeepJSON, through default=str) as TOO_DEEP_TO_SHOW."""
    if isinstance(value, str):
        return value
    if isinstance(value, TooDeepJSON):
        return TOO_DEEP_TO_SHOW
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, default=str)
    except (RecursionError, ValueError):  # the indented encoder recurses in Python
        return TOO_DEEP_TO_SHOW


def dumps(value: Any, **options: Any) -> str:
    """json.dumps, each TooDeepJSON written back as the text it was read from."""
    return json.dumps(value, cls=StoredJSONEncoder, **options)


class StoredJSONEncoder(json.JSONEncoder):
    """Writes a TooDeepJSON as its stored text: json cannot emit raw text, so it goes in as a
    placeholder string holding a NUL (which no stored JSON holds: jsonb refuses \\u0000),
    swapped for the text once the rest is encoded."""

    def encode(self, o: Any) -> str:
        self._kept: list[str] = []
        self._encoding = True
        try:
            encoded = super().encode(o)
        finally:
            self._encoding = False
        if not self._kept:
            return encoded
        placeholder = re.escape(json.dumps(self._token)[:-1]) + r'(\d+)"'
        return re.sub(placeholder, lambda found: self._kept[int(found[1])], encoded)

    def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
        if getattr(self, "_encoding", False):
            return super().iterencode(o, _one_shot)
        return iter([self.encode(o)])  # json.dump() to a file: the placeholders swapped too

    def default(self, o: Any) -> Any:
        if isinstance(o, TooDeepJSON):
            if not self._kept:
                self._token = f"\x00{uuid.uuid4().hex}:"
            self._kept.append(o.text)
            return f"{self._token}{len(self._kept) - 1}"
        return super().default(o)


class StoredJSONField(models.JSONField):
    """A JSONField for JSON the runtime stored: read with `loads`, written back exactly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("encoder", StoredJSONEncoder)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("encoder") is StoredJSONEncoder:
            del kwargs["encoder"]
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # As JSONField's, with `loads` for json.loads.
        if value is None:
            return value
        if isinstance(expression, KeyTransform) and not isinstance(value, str):
            return value
        try:
            return loads(value)
        except json.JSONDecodeError:
            return value
