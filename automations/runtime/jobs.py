"""Scheduled jobs of a run (`automation_scheduled_jobs`): timeouts and delays the scheduler fires.

Waits call `schedule` in the same transaction as the run write that parks the run, and the write that
moves a run on carries `cancelled_with_write` (the same statement). A job's payload names the
node it belongs to and the port it resumes through: `{"node_key": …, "port_key": …}`."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from automations.models import AutomationRun, JobStatus, ScheduledJob
from automations.nodes import registry
from automations.store.base import WRITTEN, Dependent
from automations.store.jobs import Claim

# Jobs that belong to one wait of a run (the timeouts the node kinds declare); cancelled when the run
# leaves the node.
WAIT_JOB_KINDS = tuple(registry.timeout_waits())


def schedule(run: AutomationRun, kind: str, due_at: datetime, payload: dict | None = None) -> ScheduledJob:
    return ScheduledJob.objects.create(organization_id=run.organization_id, run_id=run.pk, kind=kind,
                                       due_at=due_at, payload=payload or {})


def cancelled_with_write(run: AutomationRun, kinds=None, *, finishing: Claim | None = None) -> Dependent:
    """Cancel the run's pending jobs (all kinds, or only `kinds`), as a dependent of the write that moves
    the run on (`runs.write_run`): cancelled iff that write wins, in the same statement.

    `finishing` — the scheduler's claimed job that caused this resume — is marked `done` (due_at back to
    its original time) instead: the tick then has no closing update to write."""
    where = f'"run_id" = %s AND "status" = %s AND {WRITTEN}'
    where_params = [run.pk, JobStatus.PENDING]
    if kinds is not None:
        where += ' AND "kind" = ANY(%s::text[])'
        where_params.append([str(kind) for kind in kinds])
    now = timezone.now()
    if finishing is None:
        return Dependent(f'UPDATE "automation_scheduled_jobs" SET "status" = %s, "updated_at" = %s WHERE {where}',
                         [JobStatus.CANCELLED, now, *where_params])
    this_claim = '("id" = %s AND "due_at" = %s)'
    claim = [finishing.id, finishing.lease]
    sql = (f'UPDATE "automation_scheduled_jobs" SET '
           f'"status" = CASE WHEN {this_claim} THEN %s ELSE %s END, '
           f'"due_at" = CASE WHEN {this_claim} THEN %s ELSE "due_at" END, '
           f'"last_error" = CASE WHEN {this_claim} THEN \'\' ELSE "last_error" END, '
           f'"updated_at" = %s WHERE {where}')
    return Dependent(sql, [*claim, JobStatus.DONE, JobStatus.CANCELLED, *claim, finishing.original_due, *claim,
                           now, *where_params])
