"""studio.sql_rows: plain SQL gives the same instances the ORM would, JSON decoded."""

from __future__ import annotations

import pytest
from django.db.models import Model

from agents.memory_settings import MemorySettings
from agents.models import Agent
from studio.sql_rows import fetch, fetch_one, select_list


def _values(instance: Model) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_it_reads_what_the_orm_reads(db):
    agent = Agent.objects.create(
        name="Rows",
        slug="rows",
        db_schema="rows_schema",
        agno_settings=MemorySettings(session_storage=True, user_memories=True).to_json(),
        cost_inputs={"model": "gpt-x", "price": 1.5},
    )
    sql = f"SELECT {select_list(Agent)} FROM agents_agent WHERE slug = %s"
    found = fetch_one(Agent, sql, ["rows"])
    assert found is not None
    assert _values(found) == _values(Agent.objects.get(pk=agent.pk))
    assert found.cost_inputs == {"model": "gpt-x", "price": 1.5}  # decoded, not JSON text
    assert found._state.db == "default" and not found._state.adding
    found.name = "Renamed"
    found.save(update_fields=["name"])  # a saved instance, not a copy
    assert Agent.objects.get(pk=agent.pk).name == "Renamed"


def test_it_sets_the_extra_columns_by_name(db):
    Agent.objects.create(name="A", slug="a", db_schema="a_schema")
    Agent.objects.create(name="B", slug="b", db_schema="b_schema")
    sql = (
        f"SELECT {select_list(Agent, 'x')}, upper(x.slug) AS shout, 7 AS seven "
        "FROM agents_agent x ORDER BY x.slug"
    )
    rows = fetch(Agent, sql, [], extras=["shout", "seven"])
    assert [(r.slug, r.shout, r.seven) for r in rows] == [("a", "A", 7), ("b", "B", 7)]


def test_it_finds_nothing_as_none(db):
    sql = f"SELECT {select_list(Agent)} FROM agents_agent WHERE slug = %s"
    assert fetch_one(Agent, sql, ["nobody"]) is None


def test_an_extra_column_without_a_name_is_an_error(db):
    Agent.objects.create(name="A", slug="a", db_schema="a_schema")
    with pytest.raises(ValueError):
        fetch(Agent, f"SELECT {select_list(Agent)}, 1 FROM agents_agent", [])


def test_a_name_without_its_column_is_an_error_even_with_no_rows(db):
    with pytest.raises(ValueError):
        fetch(Agent, f"SELECT {select_list(Agent)} FROM agents_agent", [], extras=["gone"])
