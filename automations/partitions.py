"""Monthly partitions of automation_step_runs (declarative PARTITION BY RANGE on executed_at).

`ensure_partitions` is idempotent and cheap: migrations call it, the scheduler tick calls it, and
`manage.py ensure_partitions` calls it by hand. Retention never deletes rows: whole months are
detached and dropped (`drop_partitions_older_than`). The statements are in `store.partitions`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.utils import timezone

from automations.store import partitions as partition_store
from automations.store.partitions import PARENT_TABLE

MONTHS_BACK = 1
MONTHS_AHEAD = 3
_NAME = re.compile(rf"^{PARENT_TABLE}_y(\d{{4}})m(\d{{2}})$")


def month_start(day: date | datetime) -> date:
    return date(day.year, day.month, 1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT_TABLE}_y{month.year:04d}m{month.month:02d}"


def existing_partitions(using=None) -> list[str]:
    return partition_store.partitions(using)


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
    with transaction.atomic(using=conn.alias):
        partition_store.lock_partitions(conn)
        existing = set(existing_partitions(conn))  # re-read under the lock
        for month in missing:
            name = partition_name(month)
            if name in existing:
                continue
            upper = add_months(month, 1)
            partition_store.create_partition(name, datetime(month.year, month.month, 1, tzinfo=UTC),
                                             datetime(upper.year, upper.month, 1, tzinfo=UTC), conn)
            created.append(name)
    return created


def drop_partitions_older_than(months: int, now: datetime | None = None, using=None) -> list[str]:
    """Detach and drop whole months that ended more than `months` months before the current month."""
    if months < 1:
        raise ValueError("months must be at least 1: the current month is never dropped")
    conn = using or connection
    cutoff = add_months(month_start(now or timezone.now()), -months)
    dropped = []
    with transaction.atomic(using=conn.alias):
        partition_store.lock_partitions(conn)
        for name in existing_partitions(conn):
            match = _NAME.match(name)
            if not match:
                continue
            month = date(int(match.group(1)), int(match.group(2)), 1)
            if month < cutoff:
                partition_store.drop_partition(name, conn)
                dropped.append(name)
    return dropped
