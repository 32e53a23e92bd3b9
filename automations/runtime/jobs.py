"""Scheduled jobs of a run (`automation_scheduled_jobs`): timeouts and delays the scheduler fires.

Waits call `schedule` in the same transaction as the run write that parks the run, and resuming a run
calls `cancel_pending` in the same transaction as the write that moves it on. A job's payload names the
node it belongs to and the port it resumes through: `{"node_key": …, "port_key": …}`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from automations.models import AutomationRun, JobKind, JobStatus, ScheduledJob
from relay.core.sql import WRITTEN, Dependent

# Jobs that belong to one wait of a run; cancelled when the run leaves the node.
WAIT_JOB_KINDS = (JobKind.RESUME_DELAY, JobKind.INPUT_TIMEOUT, JobKind.NO_RESPONSE_TIMEOUT,
                  JobKind.WAIT_EVENT_TIMEOUT)


def schedule(run: AutomationRun, kind: str, due_at: datetime, payload: dict | None = None) -> ScheduledJob:
    return ScheduledJob.objects.create(organization_id=run.organization_id, run_id=run.pk, kind=kind,
                                       due_at=due_at, payload=payload or {})


@dataclass(frozen=True)
class Claim:
    """A job the scheduler claimed: its lease (`due_at` while claimed, the claim token), its original
    due time, and the attempt this is."""

    id: str
    original_due: datetime
    attempts: int  # including this claim
    lease: datetime
    # The row as claimed, so a job that resumes a run needs no read of its own (see scheduler.process_claim).
    kind: str = ""
    run_id: str | None = None
    payload: dict | None = None


def cancel_pending(run: AutomationRun, kinds=None, *, finishing: Claim | None = None) -> int:
    """Cancel the run's pending jobs (all kinds, or only `kinds`); return how many.

    `finishing` — the scheduler's claimed job that caused this resume — is marked `done` (due_at back to
    its original time) by the same statement, in the run's transaction: the tick's own closing update
    then finds nothing left to write."""
    pending = ScheduledJob.objects.filter(run_id=run.pk, status=JobStatus.PENDING)
    if kinds is not None:
        pending = pending.filter(kind__in=list(kinds))
    if finishing is None:
        return pending.update(status=JobStatus.CANCELLED, updated_at=timezone.now())
    this_claim = Q(pk=finishing.id, due_at=finishing.lease)
    fields = {name: ScheduledJob._meta.get_field(name) for name in ("status", "due_at", "last_error")}
    return pending.update(
        status=Case(When(this_claim, then=Value(JobStatus.DONE)), default=Value(JobStatus.CANCELLED),
                    output_field=fields["status"]),
        due_at=Case(When(this_claim, then=Value(finishing.original_due)), default=F("due_at"),
                    output_field=fields["due_at"]),
        last_error=Case(When(this_claim, then=Value("")), default=F("last_error"),
                        output_field=fields["last_error"]),
        updated_at=timezone.now(),
    )


def cancelled_with_write(run: AutomationRun, kinds, *, finishing: Claim | None = None) -> Dependent:
    """`cancel_pending(run, kinds, finishing=…)` as a dependent of the run write (`runs.write_run`):
    same rows, same outcome, no statement of its own."""
    now, kinds = timezone.now(), [str(kind) for kind in kinds]
    where = f'"run_id" = %s AND "status" = %s AND "kind" = ANY(%s::text[]) AND {WRITTEN}'
    if finishing is None:
        return Dependent(f'UPDATE "automation_scheduled_jobs" SET "status" = %s, "updated_at" = %s WHERE {where}',
                         [JobStatus.CANCELLED, now, run.pk, JobStatus.PENDING, kinds])
    this_claim = '("id" = %s AND "due_at" = %s)'
    claim = [finishing.id, finishing.lease]
    sql = (f'UPDATE "automation_scheduled_jobs" SET '
           f'"status" = CASE WHEN {this_claim} THEN %s ELSE %s END, '
           f'"due_at" = CASE WHEN {this_claim} THEN %s ELSE "due_at" END, '
           f'"last_error" = CASE WHEN {this_claim} THEN \'\' ELSE "last_error" END, '
           f'"updated_at" = %s WHERE {where}')
    return Dependent(sql, [*claim, JobStatus.DONE, JobStatus.CANCELLED, *claim, finishing.original_due, *claim,
                           now, run.pk, JobStatus.PENDING, kinds])
