"""Monthly partitions of automation_step_runs (declarative PARTITION BY RANGE on executed_at).

`ensure_partitions` is idempotent and cheap: migrations call it, the scheduler tick calls it, and
`manage.py ensure_partitions` calls it by hand. Retention never deletes rows: whole months are
detached and dropped (`drop_partitions_older_than`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.utils import timezone

PARENT_TABLE = "automation_step_runs"
MONTHS_BACK = 1
MONTHS_AHEAD = 3
_LOCK_KEY = 734_190_611  # arbitrary constant: serialises partition DDL across processes
_NAME = re.compile(rf"^{PARENT_TABLE}_y(\d{{4}})m(\d{{2}})$")


def month_start(day: date | datetime) -> date:
    return date(day.year, day.month, 1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT_TABLE}_y{month.year:04d}m{month.month:02d}"


def existing_partitions(using=None) -> list[str]:
    with (using or connection).cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname FROM pg_inherits
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE parent.relname = %s ORDER BY child.relname
            """,
            [PARENT_TABLE],
        )
        return [row[0] for row in cursor.fetchall()]


def ensure_partitions(now: datetime | None = None, months_back: int = MONTHS_BACK,
                      months_ahead: int = MONTHS_AHEAD, using=None) -> list[str]:
    """Create the missing monthly partitions around `now`; return the names created."""
    conn = using or connection
    current = month_start(now or timezone.now())
    wanted = [add_months(current, offset) for offset in range(-months_back, months_ahead + 1)]
    existing = set(existing_partitions(conn))
    missing = [m for m in wanted if partition_name(m) not in existing]
    if not missing:
        return []
    created = []
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        existing = set(existing_partitions(conn))  # re-read under the lock
        for month in missing:
            name = partition_name(month)
            if name in existing:
                continue
            # DDL takes no bind parameters (server-side binding): the bounds are literals we format.
            lower = datetime(month.year, month.month, 1, tzinfo=UTC).isoformat()
            upper = datetime(add_months(month, 1).year, add_months(month, 1).month, 1, tzinfo=UTC).isoformat()
            cursor.execute(
                f'CREATE TABLE "{name}" PARTITION OF "{PARENT_TABLE}" '
                f"FOR VALUES FROM ('{lower}') TO ('{upper}')"
            )
            created.append(name)
    return created


def drop_partitions_older_than(months: int, now: datetime | None = None, using=None) -> list[str]:
    """Detach and drop whole months that ended more than `months` months before the current month."""
    if months < 1:
        raise ValueError("months must be at least 1: the current month is never dropped")
    conn = using or connection
    cutoff = add_months(month_start(now or timezone.now()), -months)
    dropped = []
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        for name in existing_partitions(conn):
            match = _NAME.match(name)
            if not match:
                continue
            month = date(int(match.group(1)), int(match.group(2)), 1)
            if month < cutoff:
                cursor.execute(f'ALTER TABLE "{PARENT_TABLE}" DETACH PARTITION "{name}"')
                cursor.execute(f'DROP TABLE "{name}"')
                dropped.append(name)
    return dropped
