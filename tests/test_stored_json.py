"""studio.stored_json: any stored JSON is read, however deep agno nested it, and a value too
deep to read goes back exactly as Postgres gave it."""

from __future__ import annotations

import io
import json

import pytest

from studio.stored_json import (
    MAX_DEPTH,
    TOO_DEEP_TO_SHOW,
    StoredJSONEncoder,
    TooDeepJSON,
    dumps,
    loads,
)


def nested(levels: int) -> str:
    """JSON text of "x" inside `levels` arrays, as Postgres prints it (and json.dumps too)."""
    return "[" * levels + '"x"' + "]" * levels


DEEP = nested(990)  # as deep as agno's json.dumps writes from a shallow stack


def test_a_value_too_deep_for_json_is_kept_as_its_text_and_shown_as_a_note():
    with pytest.raises(RecursionError):
        json.loads(DEEP)
    value = loads(DEEP)
    assert value == TooDeepJSON(DEEP) and str(value) == TOO_DEEP_TO_SHOW
    assert dumps(value) == DEEP


def test_a_value_past_the_limit_is_kept_as_text_even_when_json_could_read_it():
    # json reads 600 levels here, but str() and json.dumps on a page's deeper stack may not.
    text = nested(MAX_DEPTH + 100)
    assert isinstance(json.loads(text), list)
    assert isinstance(loads(text), TooDeepJSON) and dumps(loads(text)) == text
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))


def test_a_value_that_branches_keeps_what_is_readable_beside_the_deep_part():
    topics = f'["travel", {DEEP}, "x, y ]"]'
    assert loads(topics) == ["travel", TooDeepJSON(DEEP), "x, y ]"]
    assert str(loads(topics)) == f"['travel', {TOO_DEEP_TO_SHOW}, 'x, y ]']"
    row = f'{{"memory": {DEEP}, "topics": {topics}, "memory_id": "m\\"1", "created_at": 5}}'
    read = loads(row)
    assert read["memory"] == TooDeepJSON(DEEP) and read["topics"][0] == "travel"
    assert (read["memory_id"], read["created_at"]) == ('m"1', 5)
    assert dumps(read) == row  # every part back as it was read


def test_members_of_a_deep_array_are_read_one_by_one():
    assert TooDeepJSON(DEEP).members() == [TooDeepJSON(nested(989))]
    assert TooDeepJSON(DEEP).is_array and not TooDeepJSON("{}").is_array


def test_a_deep_value_inside_new_json_goes_back_verbatim():
    value = loads(DEEP)
    written = dumps({"b": [value, "new"], "a": value}, sort_keys=True, ensure_ascii=False)
    assert written == f'{{"a": {DEEP}, "b": [{DEEP}, "new"]}}'
    file = io.StringIO()
    json.dump([value], file, cls=StoredJSONEncoder)  # written in pieces: swapped all the same
    assert file.getvalue() == f"[{DEEP}]"


def test_broken_deep_text_is_a_json_error_not_a_crash():
    for broken in ("[" * 1_000, "[" * 1_000 + "]" * 999, '{"a": ' + nested(1_000)):
        with pytest.raises(ValueError):
            loads(broken)


def test_bytes_are_read_as_psycopg_hands_them_over():
    assert loads(b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert loads(memoryview(DEEP.encode())) == TooDeepJSON(DEEP)
