"""Scheduled jobs of a run (`automation_scheduled_jobs`): timeouts and delays the scheduler fires.

Waits call `schedule` in the same transaction as the run write that parks the run, and resuming a run
calls `cancel_pending` in the same transaction as the write that moves it on. A job's payload names the
node it belongs to and the port it resumes through: `{"node_key": …, "port_key": …}`."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from automations.models import AutomationRun, JobKind, JobStatus, ScheduledJob

# Jobs that belong to one wait of a run; cancelled when the run leaves the node.
WAIT_JOB_KINDS = (JobKind.RESUME_DELAY, JobKind.INPUT_TIMEOUT, JobKind.NO_RESPONSE_TIMEOUT,
                  JobKind.WAIT_EVENT_TIMEOUT)


def schedule(run: AutomationRun, kind: str, due_at: datetime, payload: dict | None = None) -> ScheduledJob:
    return ScheduledJob.objects.create(organization_id=run.organization_id, run_id=run.pk, kind=kind,
                                       due_at=due_at, payload=payload or {})


def cancel_pending(run: AutomationRun, kinds=None) -> int:
    """Cancel the run's pending jobs (all kinds, or only `kinds`); return how many."""
    pending = ScheduledJob.objects.filter(run_id=run.pk, status=JobStatus.PENDING)
    if kinds is not None:
        pending = pending.filter(kind__in=list(kinds))
    return pending.update(status=JobStatus.CANCELLED, updated_at=timezone.now())
