"""The run writer: the only code that changes an `automation_runs` row, plus the states a run ends in.

Every write is optimistic: `UPDATE … WHERE id = ? AND updated_at = ?`. Zero rows means another worker
moved the run since we read it; the caller stops quietly and causes no side effect. `updated_at` is the
concurrency token, so each write sets it to a value strictly greater than the one it replaces.

What is written with the run — jobs, messages, contact changes, steps, the counter — comes as hooks
(`runtime.hooks`): written by the same statement iff the run write wins, in the declared phase order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from automations.models import (
    LIVE_RUN_STATUSES,
    AutomationRun,
    ExitReason,
    RunStatus,
    StepRun,
)
from automations.runtime import hooks as write_hooks
from automations.runtime.hooks import Hook, Rows, WritePhase
from automations.store.base import db_value, json_records
from automations.store.runs import COUNT_FINISHED, update_run
from automations.store.steps import INSERT_STEPS, STEP_COLUMNS
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


def write_run(run: AutomationRun, *, hooks: Iterable[Hook | None] = (), apart_from: WritePhase | None = None,
              **changes) -> bool:
    """Apply `changes` to the run row iff nobody wrote it since `run` was read.

    On success the in-memory run gets the changes and its new updated_at, and True is returned. On zero
    rows nothing changes (in the database or in memory), no hook runs, and False is returned.

    `hooks` (jobs, messages, contact changes, steps, the counter, Python to run after) are carried out
    by `hooks.carry_out`: their rows written by the same statement, in phase order, all or none, in one
    round trip and — outside a transaction — one commit; `apart_from` (inside a transaction) writes the
    phases from there on by statements of their own after the AfterWrite hooks before them."""
    stamp = _next_stamp(run.updated_at)
    values = {**changes, "updated_at": stamp}
    params = {f"set_{name}": db_value(AutomationRun._meta.get_field(name), value) for name, value in values.items()}
    params.update(id=run.pk, seen=db_value(AutomationRun._meta.get_field("updated_at"), run.updated_at))

    def won():  # the hooks that follow see the run as written
        for name, value in values.items():
            setattr(run, name, value)

    try:
        return write_hooks.carry_out(update_run(tuple(values)), params, hooks, apart_from=apart_from, on_won=won)
    except DatabaseError:
        _close_if_lost()
        raise


def _close_if_lost() -> None:
    """Outside a transaction, a write that lost its connection closes it, as a rollback would inside
    one: the caller (a tick going on to its next job) then records the failure on a new connection."""
    if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
        connection.close()


def steps_written(rows: list[tuple]) -> Rows | None:
    """Step rows (tuples in `STEP_COLUMNS` order) as a hook of the run write (None: no rows). The rows are
    read when the statement runs: after the operations, on the runner's transaction path."""
    if not rows:
        return None
    return Rows(WritePhase.STEPS, INSERT_STEPS, lambda: {"rows": json_records(StepRun, STEP_COLUMNS, rows)})


def counted_finish(automation_id: str, status: str) -> Rows | None:
    """The automation's counter bump for a run that ends `status`, as the last hook of the run write."""
    if status not in COUNTER_FIELDS:
        return None
    return Rows(WritePhase.COUNTER, COUNT_FINISHED, {"automation": automation_id, "status": str(status)})


def finished(status: str, exit_reason: str, now: datetime, **extra) -> dict:
    """The changes that end a run (status completed/exited/failed)."""
    return {"status": status, "exit_reason": exit_reason, "completed_at": now, "waiting_for": None,
            "waiting_until": None, **extra}


def exit_run(run: AutomationRun, exit_reason: str, now: datetime, *, finishing_job=None, **extra) -> bool:
    """End a live run `exited` / `exit_reason` (`extra`: more run changes) in one statement: the run
    write, its pending jobs cancelled (`finishing_job`, the scheduler's claim that fired, marked done) and
    the exited counter. False: another worker moved the run first."""
    from automations.runtime import jobs

    written = write_run(run, hooks=[jobs.cancel_run_jobs(run, finishing=finishing_job),
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
