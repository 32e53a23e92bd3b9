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


def _json_text(field, value):
    return None if value is None else json.dumps(value, cls=field.encoder)


@lru_cache(maxsize=64)
def _insert_text(model, names: tuple[str, ...]) -> str:
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(f'"{field.column}"' for field in fields)
    arrays = ", ".join(
        "%s::text[]" if isinstance(field, models.JSONField) else f"%s::{field.db_type(connection)}[]"
        for field in fields)
    selected = ", ".join(
        f"u.c{i}::jsonb" if isinstance(field, models.JSONField) else f"u.c{i}" for i, field in enumerate(fields))
    aliases = ", ".join(f"c{i}" for i in range(len(fields)))
    return (f'INSERT INTO "{model._meta.db_table}" ({columns}) SELECT {selected} '
            f"FROM unnest({arrays}) AS u({aliases}) WHERE {{written}}")


def insert_rows(model, names: tuple[str, ...], rows: list[tuple]) -> Dependent:
    """One INSERT for all `rows` (tuples in `names` order): one array per column through unnest, so the
    statement text is the same whatever the row count and is prepared once per connection."""
    fields = [model._meta.get_field(name) for name in names]
    arrays = []
    for i, field in enumerate(fields):
        if isinstance(field, models.JSONField):
            arrays.append([_json_text(field, row[i]) for row in rows])
        else:
            arrays.append([db_value(field, row[i]) for row in rows])
    return Dependent(_insert_text(model, names), arrays)


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
