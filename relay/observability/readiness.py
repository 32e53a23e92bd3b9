"""The checks behind /readyz: can this deployment do its work right now?

/healthz answers "the process is up" (liveness: restart it if not). /readyz answers "send it traffic":
the database answers, the broker accepts a connection, the scheduler finished a tick within three
intervals (its SchedulerTick row) and next month's step-run partition exists (the tick creates it
ahead; without it, step rows of next month have nowhere to go). Each check returns a problem or None.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from automations.store import health

BROKER_TIMEOUT_SECONDS = 3
STALE_AFTER_INTERVALS = 3


def database() -> str | None:
    health.ping()
    return None


def broker() -> str | None:
    from relay.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)
    return None


def scheduler() -> str | None:
    from automations.runtime.scheduler import last_tick

    tick = last_tick()
    if tick is None or tick.last_tick_at is None:
        return "the scheduler has never finished a tick (is celery beat running?)"
    interval = settings.RELAY_SCHEDULER_INTERVAL_SECONDS
    age = timezone.now() - tick.last_tick_at
    if age > timedelta(seconds=STALE_AFTER_INTERVALS * interval):
        return (f"the last tick finished {int(age.total_seconds())} s ago (more than {STALE_AFTER_INTERVALS} "
                f"intervals of {interval} s)")
    return None


def partitions() -> str | None:
    from automations.partitions import add_months, existing_partitions, month_start, partition_name

    wanted = partition_name(add_months(month_start(timezone.now()), 1))
    if wanted not in existing_partitions():
        return f"next month's step-run partition {wanted} does not exist"
    return None


CHECKS = {"database": database, "broker": broker, "scheduler": scheduler, "partitions": partitions}
NEEDS_DATABASE = ("scheduler", "partitions")
NOT_CHECKED = "not checked: the database is unavailable"


def run_checks() -> dict[str, str | None]:
    """Every check's problem (None: fine). A check that raises reports the error; with the database down
    the checks that read it are NOT_CHECKED instead of each timing out again."""
    problems: dict[str, str | None] = {}
    for name, check in CHECKS.items():
        if name in NEEDS_DATABASE and problems.get("database"):
            problems[name] = NOT_CHECKED
            continue
        try:
            problems[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure is the answer
            problems[name] = f"{type(exc).__name__}: {exc}"[:300]
    return problems
