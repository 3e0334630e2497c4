"""Model instances from plain SQL, for the queries every request runs.

`Model.objects.raw()` maps columns to fields by name on every call: it reads the cursor's
description (psycopg builds a Column object per column), works out the model's field order
and each column's converters again, then the instances. On the memory row fragment that was a
third of the request's CPU, more than the five queries themselves. Here a model's column
list, field order and converters are worked out once; the SQL selects `select_list(Model)`
first, then any extra columns in the order the caller names them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from django.db import connections, models

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class _Shape:
    attnames: list[str]
    columns: list[str]
    # (position, the column's expression, its converters): JSON text decoded, as the ORM does.
    converters: list[tuple[int, Any, list[Callable[..., Any]]]]


@cache
def _shape(model: type[models.Model]) -> _Shape:
    # Every database here is Postgres (the studio's and each runtime's), so one backend's
    # converters serve them all.
    fields = model._meta.concrete_fields
    connection = connections["default"]
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((position, column, found))
    return _Shape([f.attname for f in fields], [f.column for f in fields], converters)


@cache
def select_list(model: type[models.Model], table_alias: str = "") -> str:
    """The model's columns, in the order `fetch` reads them: put first in the SELECT. Once per
    model and alias, like the rest of its shape: every request's queries ask for it."""
    shape = _shape(model)
    prefix = f"{table_alias}." if table_alias else ""
    quote = connections["default"].ops.quote_name
    return ", ".join(prefix + quote(column) for column in shape.columns)


def fetch(
    model: type[M],
    sql: str,
    params: Sequence[Any] | dict[str, Any],
    *,
    extras: Sequence[str] = (),
    using: str = "default",
) -> list[M]:
    """Instances of `model` from SQL whose columns are `select_list(model)` and then `extras`,
    each set on the instance as an attribute of that name (like raw()'s annotations)."""
    connection = connections[using]
    shape = _shape(model)
    width = len(shape.attnames)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # Checked on every call, rows or none: the result's column count costs nothing,
        # where its full description is what made raw() slow.
        if cursor.pgresult.nfields != width + len(extras):
            raise ValueError(
                f"{model.__name__}: the SQL returns {cursor.pgresult.nfields} columns, "
                f"expected {width} of the model's and {len(extras)} extras {list(extras)}"
            )
        rows = cursor.fetchall()
    found = []
    for row in rows:
        values = list(row[:width])
        for position, column, converters in shape.converters:
            for convert in converters:
                values[position] = convert(values[position], column, connection)
        instance = model.from_db(using, shape.attnames, values)
        for name, value in zip(extras, row[width:], strict=True):
            setattr(instance, name, value)
        found.append(instance)
    return found


def fetch_one(
    model: type[M],
    sql: str,
    params: Sequence[Any] | dict[str, Any],
    *,
    extras: Sequence[str] = (),
    using: str = "default",
) -> M | None:
    rows = fetch(model, sql, params, extras=extras, using=using)
    return rows[0] if rows else None
