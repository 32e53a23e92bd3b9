"""Hand-written SQL for the runtime's hot path, built from the models' own field definitions.

Why not the ORM there: on a small machine Django spends about a millisecond compiling and adapting each
statement, several times what PostgreSQL spends running it, and an advance used to issue nine of them.
These helpers build each statement's text once (cached per shape) so the server-side binding can
prepare it, and adapt values with the fields' own `get_db_prep_save`, so what is stored is exactly what
the ORM would store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.db import connection, models

WRITTEN = "{written}"  # the placeholder a Dependent's condition uses for "the guarded write won"


@dataclass(frozen=True)
class Dependent:
    """A write that must happen if and only if a guarded write wins. `sql` is one data-modifying statement
    whose condition includes `{written}`; the guard fills it in (see `runs.write_run`)."""

    sql: str
    params: tuple | list


def column(model, name: str) -> str:
    return f'"{model._meta.get_field(name).column}"'


def db_value(field, value):
    """`value` as the ORM would send it for `field` (a model instance stands for its primary key)."""
    if isinstance(value, models.Model):
        value = value.pk
    return field.get_db_prep_save(value, connection)


def select_list(model, alias: str) -> str:
    """Every concrete column of `model` under `alias`, in field order (what `instance` reads back)."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def insert_fields(model) -> list:
    """The fields an INSERT of `model` names: its concrete fields, database-generated keys aside."""
    return [field for field in model._meta.concrete_fields if not isinstance(field, models.fields.AutoFieldMixin)]


def insert_values(obj) -> list:
    """`obj`'s values for `insert_fields`, as the ORM would insert them (defaults and `pre_save` applied)."""
    return [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in insert_fields(type(obj))]


@lru_cache(maxsize=64)
def _insert_text(model, names: tuple[str, ...]) -> str:
    table = model._meta.db_table
    columns = ", ".join(column(model, name) for name in names)
    return (f'INSERT INTO "{table}" ({columns}) SELECT {columns} '
            f'FROM jsonb_populate_recordset(NULL::"{table}", %s::jsonb) WHERE {WRITTEN}')


def _json_ready(value):
    return value.isoformat() if isinstance(value, datetime) else value


def insert_rows(model, names: tuple[str, ...], rows: list[tuple]) -> Dependent:
    """One INSERT for all `rows` (tuples in `names` order, values as the model holds them: ids for
    foreign keys, aware datetimes, JSON-able dicts): the rows travel as one JSON array that PostgreSQL
    turns into records of the table's own row type. One parameter, one `json.dumps` in C, and the same
    statement text whatever the row count (prepared once per connection)."""
    columns = [model._meta.get_field(name).column for name in names]
    records = [{name: _json_ready(value) for name, value in zip(columns, row, strict=True)} for row in rows]
    return Dependent(_insert_text(model, names), [json.dumps(records)])


@lru_cache(maxsize=32)
def _loaders(model) -> tuple[list[str], int, list[tuple[int, list]]]:
    fields = model._meta.concrete_fields
    names = [field.attname for field in fields]
    converters = [(i, field.get_db_converters(connection)) for i, field in enumerate(fields)]
    return names, names.index(model._meta.pk.attname), [(i, c) for i, c in converters if c]


def instance(model, values: list):
    """A model instance from its concrete columns as read (None if the primary key is NULL: a LEFT JOIN
    that found nothing), with the fields' own converters applied, like a queryset would."""
    names, pk_index, converters = _loaders(model)
    if values[pk_index] is None:
        return None
    values = list(values)
    for i, field_converters in converters:
        for converter in field_converters:
            values[i] = converter(values[i], None, connection)
    return model.from_db(connection.alias, names, values)


def execute(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def run_standalone(dependents: list[Dependent]) -> None:
    """Execute dependents unconditionally (inside a transaction the caller already guards)."""
    for dependent in dependents:
        execute(dependent.sql.replace(WRITTEN, "TRUE"), dependent.params)
