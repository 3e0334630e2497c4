"""The runtime layer's own guarantees: schema switching, cursors, keyset pages, scoping."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from memories import runtime
from memories.models import Memory
from memories.runtime.memories import insert_memory
from memories.users import agent_users


def _search_path() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        return cursor.fetchone()[0]


def test_reach_puts_the_callers_search_path_back(agent):
    with transaction.atomic():
        before = _search_path()
        with runtime.in_agent_schema(agent) as tables:
            assert _search_path() == f'"{agent.db_schema}"'
            assert not tables.any
        assert _search_path() == before


def test_reach_refuses_a_schema_name_with_sql_in_it():
    with pytest.raises(ValidationError), runtime.in_agent_schema('x"; DROP SCHEMA public; --'):
        pass


def test_an_agent_that_never_ran_reads_as_empty(agent):
    assert runtime.user_memories(agent, "ann").items == []
    assert runtime.user_summary(agent, "ann").memory_count == 0
    assert agent_users(agent).items == []
    assert runtime.user_sessions(agent, "ann").items == []
    assert runtime.agent_overview(agent).memory_count == 0


@pytest.mark.parametrize("cursor", ["garbage!", "", "W10", "WyJhIiwxXQ", "bnVsbA"])
def test_malformed_cursors_are_refused(agent, cursor):
    insert_memory(agent, "ann", text="x", topics=[])
    with pytest.raises(runtime.InvalidCursor):
        runtime.decode_cursor(cursor or "e30", (int, str))


def test_keyset_pages_cover_every_memory_once_in_order(agent):
    for n in range(7):
        memory, _ = insert_memory(agent, "ann", text=f"Fact {n}", topics=["a"] if n % 2 else [])
        with runtime.in_agent_schema(agent):
            Memory.objects.filter(memory_id=memory.memory_id).update(updated_at=1000 + n // 2)
    for sort in runtime.MEMORY_SORTS:
        seen, after = [], None
        while True:
            page = runtime.user_memories(agent, "ann", after=after, sort=sort, limit=3)
            seen += [m.memory_id for m in page.items]
            if not page.next_cursor:
                break
            after = page.next_cursor
        assert len(seen) == len(set(seen)) == 7
    newest_first = runtime.user_memories(agent, "ann", limit=10).items
    keys = [(m.last_changed_at, m.memory_id) for m in newest_first]
    assert keys == sorted(keys, reverse=True)


def test_search_and_topic_filter(agent):
    insert_memory(agent, "ann", text="Renewal is in November.", topics=["billing"])
    insert_memory(agent, "ann", text="Prefers 100% honest answers_", topics=["style"])
    insert_memory(agent, "bob", text="Renewal is in May.", topics=["billing"])
    assert [m.text for m in runtime.user_memories(agent, "ann", search="renewal").items] == [
        "Renewal is in November."
    ]
    # LIKE wildcards in a search are literal characters.
    assert [m.text for m in runtime.user_memories(agent, "ann", search="100%").items] == [
        "Prefers 100% honest answers_"
    ]
    assert runtime.user_memories(agent, "ann", search="%").items[0].text.startswith("Prefers")
    assert [m.text for m in runtime.user_memories(agent, "ann", topic="billing").items] == [
        "Renewal is in November."
    ]


def test_users_list_pages_by_user_id_with_prefix_search(agent):
    for user_id in ["b@x.com", "a@x.com", "c@x.com", "ab%c", "a_b"]:
        insert_memory(agent, user_id, text="x", topics=[])
    first = agent_users(agent, limit=2)
    second = agent_users(agent, after=first.next_cursor, limit=2)
    third = agent_users(agent, after=second.next_cursor, limit=2)
    listed = [u.user_id for page in (first, second, third) for u in page.items]
    assert sorted(listed) == sorted(["b@x.com", "a@x.com", "c@x.com", "ab%c", "a_b"])
    assert third.next_cursor is None
    assert [u.user_id for u in agent_users(agent, prefix="a_").items] == ["a_b"]
    assert [u.user_id for u in agent_users(agent, prefix="ab%").items] == ["ab%c"]
