"""The store's shared tools: identifiers filled from the models, values adapted by the models' fields,
rows decoded by column name.

Why hand-written SQL at all: on a small machine Django spends about a millisecond compiling and adapting
each statement, several times what PostgreSQL spends running it, and an advance used to issue nine of
them (now two: see `store.runs`). Every statement in the store is a module-level constant, written as SQL
with `{model.field}` placeholders that `statement()` fills once at import from the models' own
`db_table` / `column`, and `%(name)s` parameters (one style everywhere). Values are adapted with the
fields' own `get_db_prep_save`, so what is stored is exactly what the ORM would store; rows come back as
dicts keyed by column name (`fetch`), and joined models are read from prefixed columns (`instance_from`).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from django.db import connection, models

# The slot a write statement's condition holds for "after the phases before it" (`runtime.hooks`): the
# run write fills it with its gate when the statement rides on it, TRUE when it runs on its own.
AFTER = "{after}"


class Names:
    """A model's quoted identifiers for `statement()`: `{run}` is its table, `{run.status}` a column."""

    def __init__(self, model):
        self._model = model

    def __format__(self, spec: str) -> str:
        return f'"{self._model._meta.db_table}"'

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):
            raise AttributeError(field)
        return column(self._model, field)


def statement(template: str, **names) -> str:
    """`template` with its `{name}` / `{name.field}` placeholders filled from `names` (name → model class)
    and any other keyword used as is (a value list, a constant). Called once per statement, at import.
    Whitespace is collapsed, so a statement reads as SQL in the source and as one line in logs."""
    filled = {key: Names(value) if isinstance(value, type) and issubclass(value, models.Model) else value
              for key, value in names.items()}
    return " ".join(template.format(**filled).split())


def fetch(sql: str, params=None) -> list[dict]:
    """Run one statement; its rows as {column name: value} (empty for a statement that returns none)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return named_rows(cursor) if cursor.description else []


def fetch_one(sql: str, params=None) -> dict | None:
    rows = fetch(sql, params)
    return rows[0] if rows else None


def named_rows(cursor) -> list[dict]:
    """The fetched rows as {column name: value}."""
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def prefixed_list(model, alias: str, prefix: str) -> str:
    """Every concrete column of `model` under `alias`, named `<prefix>__<column>` so that `instance_from`
    can find them by name in a row that joins several models."""
    return ", ".join(f'{alias}."{field.column}" AS "{prefix}__{field.column}"' for field in model._meta.concrete_fields)


def instance_from(model, row: dict, prefix: str):
    """The `model` instance read from `row`'s `<prefix>__<column>` columns (see `prefixed_list`); None when
    its primary key is NULL (a LEFT JOIN that found nothing)."""
    return instance(model, [row[f"{prefix}__{field.column}"] for field in model._meta.concrete_fields])


def order_by(model, alias: str, ordering) -> str:
    """A Django ordering (`("-specificity", "priority")`) as an SQL ORDER BY list under `alias`, so a rule
    the ORM also orders by is written once."""
    return ", ".join(f'{alias}.{column(model, name.lstrip("-"))} {"DESC" if name.startswith("-") else "ASC"}'
                     for name in ordering)


def column(model, name: str) -> str:
    return f'"{model._meta.get_field(name).column}"'


def db_value(field, value):
    """`value` as the ORM would send it for `field` (a model instance stands for its primary key)."""
    if isinstance(value, models.Model):
        value = value.pk
    return field.get_db_prep_save(value, connection)


def insert_fields(model) -> list:
    """The fields an INSERT of `model` names: its concrete fields, database-generated keys aside."""
    return [field for field in model._meta.concrete_fields if not isinstance(field, models.fields.AutoFieldMixin)]


def insert_values(obj) -> list:
    """`obj`'s values for `insert_fields`, as the ORM would insert them (defaults and `pre_save` applied)."""
    return [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in insert_fields(type(obj))]


def insert_columns(model) -> str:
    """The quoted column list of an INSERT of `model` (`insert_fields`, in order)."""
    return ", ".join(f'"{field.column}"' for field in insert_fields(model))


def insert_placeholders(model, prefix: str, **expressions) -> str:
    """`%(<prefix><column>)s` for each of `insert_columns`, filled by `insert_params(obj, prefix)`;
    `expressions` ({column: SQL}) put SQL in place of some of them."""
    return ", ".join(expressions.get(field.column, f"%({prefix}{field.column})s") for field in insert_fields(model))


def insert_params(obj, prefix: str) -> dict:
    """`obj`'s `insert_values`, keyed `<prefix><column>` for the named parameters of `insert_placeholders`."""
    return {prefix + field.column: value
            for field, value in zip(insert_fields(type(obj)), insert_values(obj), strict=True)}


def literal_list(values) -> str:
    """Constant values (statuses, reasons) as an SQL list of string literals, for `statement()`."""
    return ", ".join("'" + str(value).replace("'", "''") + "'" for value in values)


def column_list(model, names) -> str:
    """The quoted columns of `model`'s fields `names`, in order."""
    return ", ".join(column(model, name) for name in names)


def _json_ready(value):
    return value.isoformat() if isinstance(value, datetime) else value


def json_records(model, names: tuple[str, ...], rows: list[tuple]) -> str:
    """`rows` (tuples in `names` order, values as the model holds them: ids for foreign keys, aware
    datetimes, JSON-able dicts) as one JSON array of {column: value}, for an INSERT … SELECT FROM
    jsonb_populate_recordset(NULL::<table>, %(rows)s::jsonb): one parameter, one `json.dumps` in C, and
    the same statement text whatever the row count (prepared once per connection)."""
    columns = [model._meta.get_field(name).column for name in names]
    return json.dumps([{name: _json_ready(value) for name, value in zip(columns, row, strict=True)} for row in rows])


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


def run_alone(sql: str, params) -> None:
    """A write statement with an `AFTER` slot run on its own (its guarding write already won, in the
    caller's transaction): the slot holds TRUE."""
    execute(sql.replace(AFTER, "TRUE"), params)


def execute(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []

