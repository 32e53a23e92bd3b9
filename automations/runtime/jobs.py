"""Scheduled jobs of a run (`automation_scheduled_jobs`): timeouts and delays the scheduler fires.

Waits call `schedule` in the same transaction as the run write that parks the run, and the write that
moves a run on carries `cancel_run_jobs` (a hook of its JOBS phase: the same statement). A job's payload names the
node it belongs to and the port it resumes through: `{"node_key": …, "port_key": …}`."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from automations.models import AutomationRun, ScheduledJob
from automations.nodes import registry
from automations.runtime.hooks import Rows, WritePhase
from automations.store.jobs import CANCEL_RUN_JOBS, FINISH_CLAIM_CANCEL_RUN_JOBS, Claim

# Jobs that belong to one wait of a run (the timeouts the node kinds declare); cancelled when the run
# leaves the node.
WAIT_JOB_KINDS = tuple(registry.timeout_waits())


def schedule(run: AutomationRun, kind: str, due_at: datetime, payload: dict | None = None) -> ScheduledJob:
    return ScheduledJob.objects.create(organization_id=run.organization_id, run_id=run.pk, kind=kind,
                                       due_at=due_at, payload=payload or {})


def cancel_run_jobs(run: AutomationRun, kinds=None, *, finishing: Claim | None = None) -> Rows:
    """Cancel the run's pending jobs (all kinds, or only `kinds`), as a hook of the write that moves the
    run on (`runs.write_run`): cancelled iff that write wins, in the same statement.

    `finishing` — the scheduler's claimed job that caused this resume — is marked `done` (due_at back to
    its original time) instead: the tick then has no closing update to write."""
    params = {"run": run.pk, "now": timezone.now(),
              "kinds": None if kinds is None else [str(kind) for kind in kinds]}
    if finishing is None:
        return Rows(WritePhase.JOBS, CANCEL_RUN_JOBS, params)
    return Rows(WritePhase.JOBS, FINISH_CLAIM_CANCEL_RUN_JOBS,
                {**params, "claim": finishing.id, "lease": finishing.lease, "original_due": finishing.original_due})
