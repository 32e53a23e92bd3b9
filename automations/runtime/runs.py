"""The run writer: the only code that changes an `automation_runs` row, plus the states a run ends in.

Every write is optimistic: `UPDATE … WHERE id = ? AND updated_at = ?`. Zero rows means another worker
moved the run since we read it; the caller stops quietly and causes no side effect. `updated_at` is the
concurrency token, so each write sets it to a value strictly greater than the one it replaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from django.db import DatabaseError, connection
from django.utils import timezone

from automations.models import (
    LIVE_RUN_STATUSES,
    AutomationRun,
    ExitReason,
    RunStatus,
)
from automations.store.base import WRITTEN, Dependent, db_value, execute
from relay.observability import metrics

COUNTER_FIELDS = {
    RunStatus.COMPLETED: "total_completed",
    RunStatus.EXITED: "total_exited",
    RunStatus.FAILED: "total_failed",
}


class RunConflict(Exception):
    """The run kept changing under us (used where a caller must answer 409)."""


def _next_stamp(previous: datetime | None) -> datetime:
    now = timezone.now()
    if previous is not None and now <= previous:
        now = previous + timedelta(microseconds=1)
    return now


def write_run(run: AutomationRun, *, dependents: Sequence[Dependent] = (), **changes) -> bool:
    """Apply `changes` to the run row iff nobody wrote it since `run` was read.

    On success the in-memory run gets the changes and its new updated_at, and True is returned. On zero
    rows nothing changes (in the database or in memory) and False is returned.

    `dependents` (step rows, messages, counters, job updates) are written by the same statement, as
    data-modifying CTEs guarded by the run write: all of them or none, in the order given (which is the
    order their rows are locked in: keep shared hot rows such as the automation's counter last), in one
    round trip and — outside a transaction — one commit."""
    stamp = _next_stamp(run.updated_at)
    values = {**changes, "updated_at": stamp}
    fields = [AutomationRun._meta.get_field(name) for name in values]
    params = [db_value(field, value) for field, value in zip(fields, values.values(), strict=True)]
    params += [run.pk, db_value(AutomationRun._meta.get_field("updated_at"), run.updated_at)]
    for dependent in dependents:
        params += list(dependent.params)
    text = _write_text(tuple(field.column for field in fields), tuple(dependent.sql for dependent in dependents))
    try:
        rows = execute(text, params)
    except DatabaseError:
        _close_if_lost()
        raise
    if rows[0][0] == 0:
        return False
    for name, value in values.items():
        setattr(run, name, value)
    return True


def _close_if_lost() -> None:
    """Outside a transaction, a write that lost its connection closes it, as a rollback would inside
    one: the caller (a tick going on to its next job) then records the failure on a new connection."""
    if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
        connection.close()


@lru_cache(maxsize=256)
def _write_text(columns: tuple[str, ...], dependents: tuple[str, ...]) -> str:
    assignments = ", ".join(f'"{name}" = %s' for name in columns)
    parts = [f'WITH written_run AS (UPDATE "automation_runs" SET {assignments} '
             f'WHERE "id" = %s AND "updated_at" = %s RETURNING 1)']
    for i, sql in enumerate(dependents):
        # PostgreSQL runs unreferenced data-modifying CTEs in an order of its own (last first, in
        # practice). Each dependent waits for the one before it, so rows are locked in the order given
        # — the same order as the transaction this statement replaced, whatever else locks them.
        after = "EXISTS (SELECT 1 FROM written_run)" + (f" AND (SELECT count(*) FROM d{i - 1}) >= 0" if i else "")
        parts.append(f"d{i} AS ({sql.replace(WRITTEN, after)} RETURNING 1)")
    return ", ".join(parts) + " SELECT count(*) FROM written_run"


def counted_finish(automation_id: str, status: str) -> Dependent | None:
    """The automation's counter bump for a run that ends `status`, as a dependent of the run write."""
    field = COUNTER_FIELDS.get(status)
    if not field:
        return None
    return Dependent(f'UPDATE "automations" SET "{field}" = "{field}" + 1 WHERE "id" = %s AND {WRITTEN}',
                     [automation_id])


def finished(status: str, exit_reason: str, now: datetime, **extra) -> dict:
    """The changes that end a run (status completed/exited/failed)."""
    return {"status": status, "exit_reason": exit_reason, "completed_at": now, "waiting_for": None,
            "waiting_until": None, **extra}


def exit_run(run: AutomationRun, exit_reason: str, now: datetime, *, finishing_job=None, **extra) -> bool:
    """End a live run `exited` / `exit_reason` (`extra`: more run changes) in one statement: the run
    write, its pending jobs cancelled (`finishing_job`, the scheduler's claim that fired, marked done) and
    the exited counter. False: another worker moved the run first."""
    from automations.runtime import jobs

    written = write_run(run, dependents=[jobs.cancelled_with_write(run, finishing=finishing_job),
                                         counted_finish(run.automation_id, RunStatus.EXITED)],
                        **finished(RunStatus.EXITED, exit_reason, now, **extra))
    if written:
        metrics.run_finished(RunStatus.EXITED, exit_reason).inc()
    return written


def stop_run(run: AutomationRun, *, now: datetime | None = None,
             exit_reason: str = ExitReason.ADMIN_STOPPED, attempts: int = 3) -> bool:
    """Force-exit a live run (`exited` / admin_stopped) and cancel its pending jobs.

    Returns False when the run is not live (already finished). Retries on a concurrent write: a worker
    that is mid-advance loses its own write and stops without side effects. Raises RunConflict if the
    run keeps changing."""
    for _ in range(attempts):
        if run.status not in LIVE_RUN_STATUSES:
            return False
        if exit_run(run, exit_reason, now or timezone.now()):
            return True
        run.refresh_from_db()
    raise RunConflict(f"run {run.pk} kept changing; try again")
