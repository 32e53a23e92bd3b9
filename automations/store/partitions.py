"""Statements on the monthly partitions of `automation_step_runs` (catalog reads, the DDL lock, DDL).

Why hand-written: the ORM has no words for partitions. Partition names are identifiers formatted with
`psycopg.sql.Identifier`, and the bounds literals (`psycopg.sql.Literal`): DDL takes no bind parameters
under server-side binding. Every function takes the connection to use (`using`), because migrations run
them on the schema editor's.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from psycopg import sql

from automations.models import StepRun

PARENT_TABLE = StepRun._meta.db_table
_LOCK_KEY = 734_190_611  # arbitrary constant: serialises partition DDL across processes

PARTITIONS = """SELECT child.relname AS name FROM pg_inherits
    JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
    JOIN pg_class child ON child.oid = pg_inherits.inhrelid
    WHERE parent.relname = %(parent)s ORDER BY child.relname"""
LOCK_PARTITIONS = f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"
CREATE_PARTITION = sql.SQL("CREATE TABLE {name} PARTITION OF {parent} FOR VALUES FROM ({lower}) TO ({upper})")
DETACH_PARTITION = sql.SQL("ALTER TABLE {parent} DETACH PARTITION {name}")
DROP_PARTITION = sql.SQL("DROP TABLE {name}")


def _run(using, text: str, params=None) -> list[tuple]:
    with (using or connection).cursor() as cursor:
        cursor.execute(text, params)
        return cursor.fetchall() if cursor.description else []


def _ddl(template: sql.SQL, **parts) -> str:
    return template.format(**parts).as_string(None)


def partitions(using=None) -> list[str]:
    """The names of the step-run table's partitions, in name (= month) order."""
    return [name for (name,) in _run(using, PARTITIONS, {"parent": PARENT_TABLE})]


def lock_partitions(using=None) -> None:
    """Change partitions alone until the current transaction ends."""
    _run(using, LOCK_PARTITIONS)


def create_partition(name: str, lower: datetime, upper: datetime, using=None) -> None:
    _run(using, _ddl(CREATE_PARTITION, name=sql.Identifier(name), parent=sql.Identifier(PARENT_TABLE),
                     lower=sql.Literal(lower.isoformat()), upper=sql.Literal(upper.isoformat())))


def drop_partition(name: str, using=None) -> None:
    """Detach the partition, then drop it (whole months go; rows are never deleted one by one)."""
    _run(using, _ddl(DETACH_PARTITION, parent=sql.Identifier(PARENT_TABLE), name=sql.Identifier(name)))
    _run(using, _ddl(DROP_PARTITION, name=sql.Identifier(name)))
