"""The scheduler tick: due `automation_scheduled_jobs`, schedule entrypoints, partitions, stuck-run repair.

celery-beat calls `tasks.scheduler_tick` every RELAY_SCHEDULER_INTERVAL_SECONDS; `manage.py scheduler_tick`
runs one by hand. One `tick(now)`:

1. ensures the step-run month partitions ahead (`automations.partitions.ensure_partitions`);
2. gives every active `schedule` entrypoint of an active automation exactly one pending
   `schedule_trigger` job (at its next cron occurrence; re-planned when cron/timezone changed);
3. claims at most `batch` due pending jobs, oldest first, and processes each — or, in the beat's tick
   (`hand_over` > 0, RELAY_SCHEDULER_JOBS_PER_TASK), hands the claimed jobs to the workers in batches of
   that many (`tasks.process_jobs`) and claims again while full batches come back, up to
   RELAY_SCHEDULER_MAX_JOBS_PER_TICK: a backlog drains as fast as all the workers together can go, not
   as fast as the one process running the tick;
4. reconciles runs left `active` for more than STALE_ACTIVE_AFTER (a worker died): takes each over
   (bumps updated_at through write_run) and re-enqueues `tasks.advance_run` — at most once per window;
5. hands outbox messages a dead worker left `pending` after its commit to a delivery task;
6. hands out again platform webhook deliveries whose processing died, and prunes old ones
   (`automations.channels.inbound.deliveries`);
7. completes inbound events whose attempt died after their record committed (outcome still NULL after
   RELAY_INBOUND_UNFINISHED_GRACE_SECONDS, lock free) through the inbound pipeline's own processing
   (`runtime.inbound.complete_unfinished`), a batch per tick — in the beat's tick on a worker
   (`tasks.complete_inbound_events`);
8. records itself: the SchedulerTick row (`record_tick`), the tick metrics and one log line (`observe_tick`).

Claiming (why a lease and not a long transaction): the claim is ONE short transaction —
`SELECT … FOR UPDATE SKIP LOCKED` picks the due rows nobody else holds, and the same transaction
increments `attempts` and moves `due_at` to `now + CLAIM_LEASE` (the lease). After commit those rows
are no longer due, so no other tick can claim them while we work. Processing then runs OUTSIDE any
scheduler transaction because the runtime commits its own steps (outbox sends after commit,
http_request commits before calling out) and must not be wrapped in a transaction we hold open.
The lease value doubles as the claim token: processing starts only if the row is still `pending`
with `due_at == lease`, and the outcome is written with the same condition. A tick that dies
mid-batch leaves its jobs pending; they become due again when the lease ends and the retry is
counted in `attempts`. A batch handed to a worker carries the claims (with their leases), so whichever
process runs it, the same token decides: two ticks at once (two beats by mistake) claim disjoint rows,
and a batch that waited in the queue past its lease finds its jobs re-claimed and skips them.
Every job kind is idempotent against the run's state (a job whose run moved
on is a no-op marked done), so a retried or late job never repeats a step.

Outcomes: success → `done` (due_at restored to the original due time); exception → `pending` again at
`now + RETRY_BASE * 2**(attempts-1)` with `last_error`; after MAX_ATTEMPTS → `failed`.

Job kinds: the timeout of a node kind's wait (its `Wait`: `resume_delay` → `next`, `input_timeout` →
`timeout`, `no_response_timeout` → `no_response`, `wait_event_timeout` → `timeout`) resumes the run
through that port with `runtime.resume.resume_waiting` if it still waits there; `pause_expiry` →
`runtime.controls.expire_pause`; `schedule_trigger` → insert the next occurrence's job first, then enroll
the audience in batches (the job remembers its cursor).

Schedule entrypoints: their cron is `runtime.cron`, the contacts a trigger enrolls `runtime.audience`;
the beat entry that fires the tick is created by `manage.py setup_schedules`.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from automations.channels.inbound import deliveries as platform_deliveries
from automations.models import (
    ActiveStatus,
    AutomationRun,
    AutomationStatus,
    Entrypoint,
    EntrypointKind,
    JobKind,
    JobStatus,
    RunStatus,
    ScheduledJob,
    SchedulerTick,
)
from automations.nodes import registry
from automations.partitions import ensure_partitions
from automations.runtime import audience, cron
from automations.runtime.effects import stale_outbox_ids
from automations.store import jobs as job_store
from automations.store.jobs import Claim
from automations.store.runs import LoadedRun, read_run
from relay.observability import metrics

logger = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
STALE_ACTIVE_AFTER = timedelta(minutes=5)
LAST_ERROR_MAX = 4000

# Jobs that end a wait (a timeout, a delay), as the node kinds declare them: job kind → its wait (what the
# run must still be waiting for when the job fires — anything else means it moved on — and the port it
# resumes through).
TIMEOUT_WAITS = registry.timeout_waits()


@dataclass
class TickReport:
    now: datetime
    claimed: int = 0
    done: int = 0  # processed and acted
    noop: int = 0  # processed; the run had moved on (or nothing to do)
    retried: int = 0
    failed: int = 0
    skipped: int = 0  # claimed but cancelled or re-claimed before we got to it
    handed_over: int = 0  # claimed and handed to the workers in batches (processed there, counted there)
    enrolled: int = 0  # runs started by schedule triggers
    reconciled: int = 0  # stale active runs re-enqueued
    redelivered: int = 0  # outbox messages a dead worker left pending, handed to a delivery task
    platform_deliveries_requeued: int = 0  # stored webhook deliveries whose processing died, handed out again
    platform_deliveries_pruned: int = 0
    unfinished_events: int = 0  # inbound events left without an outcome: completed here, or handed to a worker
    schedules_planned: int = 0
    partitions_created: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration_ms: int = 0
    max_lag_ms: int = 0  # due → claimed of the latest job claimed

    def as_dict(self) -> dict:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data

    def __str__(self) -> str:
        parts = [f"tick at {self.now.isoformat()}: claimed {self.claimed}", f"done {self.done}",
                 f"noop {self.noop}", f"retried {self.retried}", f"failed {self.failed}",
                 f"skipped {self.skipped}", f"handed over {self.handed_over}", f"enrolled {self.enrolled}",
                 f"reconciled {self.reconciled}",
                 f"redelivered {self.redelivered}",
                 f"platform deliveries requeued {self.platform_deliveries_requeued}",
                 f"platform deliveries pruned {self.platform_deliveries_pruned}",
                 f"unfinished events {self.unfinished_events}",
                 f"schedules planned {self.schedules_planned}",
                 f"partitions created {len(self.partitions_created)}"]
        text = ", ".join(parts)
        if self.errors:
            text += "\n" + "\n".join(f"error: {e}" for e in self.errors)
        return text


# ---------------------------------------------------------------------------------------------- tick

def tick(now: datetime | None = None, batch: int | None = None, hand_over: int = 0,
         max_jobs: int | None = None) -> TickReport:
    """One tick. `hand_over` > 0: claimed jobs go to the workers in batches of that many instead of being
    processed here (claiming repeats while full batches come back, up to `max_jobs` in all)."""
    now = now or timezone.now()
    started = time.monotonic()
    batch = settings.RELAY_SCHEDULER_BATCH if batch is None else batch
    report = TickReport(now=now)
    # Housekeeping failures are reported, never allowed to stop job processing.
    try:
        report.partitions_created = ensure_partitions(now)
    except Exception as exc:
        logger.exception("scheduler: ensure_partitions failed")
        report.errors.append(f"ensure_partitions: {exc}")
    try:
        report.schedules_planned = plan_schedule_triggers(now)
    except Exception as exc:
        logger.exception("scheduler: planning schedule triggers failed")
        report.errors.append(f"plan_schedule_triggers: {exc}")

    if hand_over > 0:
        limit = settings.RELAY_SCHEDULER_MAX_JOBS_PER_TICK if max_jobs is None else max_jobs
        while report.claimed < limit:
            claims = claim_due_jobs(now, min(batch, limit - report.claimed))
            report.claimed += len(claims)
            report.max_lag_ms = max(report.max_lag_ms, _max_lag_ms(claims, now))
            report.handed_over += hand_over_claims(claims, hand_over)
            if len(claims) < batch:
                break
    else:
        claims = claim_due_jobs(now, batch)
        report.claimed = len(claims)
        report.max_lag_ms = _max_lag_ms(claims, now)
        process_claims(claims, now, report)

    try:
        report.reconciled = reconcile_stale_runs(now)
    except Exception as exc:
        logger.exception("scheduler: reconcile failed")
        report.errors.append(f"reconcile_stale_runs: {exc}")
    try:
        report.redelivered = _hand_over_stale_outbox()
    except Exception as exc:
        logger.exception("scheduler: outbox sweep failed")
        report.errors.append(f"outbox sweep: {exc}")
    try:
        report.platform_deliveries_requeued = platform_deliveries.reconcile(now)
        report.platform_deliveries_pruned = platform_deliveries.prune(now)
    except Exception as exc:
        logger.exception("scheduler: platform delivery sweep failed")
        report.errors.append(f"platform deliveries: {exc}")
    try:
        report.unfinished_events = _complete_unfinished_events(now, hand_over)
    except Exception as exc:
        logger.exception("scheduler: completing unfinished inbound events failed")
        report.errors.append(f"unfinished inbound events: {exc}")
    report.duration_ms = int((time.monotonic() - started) * 1000)
    try:
        record_tick(report)
    except Exception as exc:
        logger.exception("scheduler: recording the tick failed")
        report.errors.append(f"record_tick: {exc}")
    observe_tick(report, time.monotonic() - started)
    return report


def record_tick(report: TickReport) -> None:
    """Overwrite the one SchedulerTick row (the health page's "last tick"); one statement."""
    values = {"last_tick_at": report.now, "last_duration_ms": report.duration_ms, "last_claimed": report.claimed,
              "last_max_lag_ms": max(report.max_lag_ms, 0)}
    if not SchedulerTick.objects.filter(pk=1).update(**values, ticks_total=F("ticks_total") + 1):
        SchedulerTick.objects.bulk_create([SchedulerTick(pk=1, **values, ticks_total=1)], ignore_conflicts=True)


def _hand_over_stale_outbox() -> int:
    """Outbox messages a dead worker left pending go to a delivery task: the tick never waits on a provider."""
    from automations import tasks
    from automations.runtime.delivery import stale_waits

    ids = stale_outbox_ids()
    if ids:
        tasks.deliver_messages.delay(ids)
    unsettled = stale_waits()  # delivered, but the run was not moved on (a worker died in between)
    if unsettled:
        tasks.settle_deliveries.delay(unsettled)
    return len(ids)


def _complete_unfinished_events(now: datetime, hand_over: int) -> int:
    """Inbound events left unfinished: completed here, or (`hand_over` > 0) by a worker, so the tick never
    waits on their processing. Handing one out twice is harmless: its lock and outcome decide."""
    from automations.runtime import inbound

    row_ids = inbound.unfinished_event_ids(now)
    if not row_ids:
        return 0
    if hand_over > 0:
        from automations import tasks

        tasks.complete_inbound_events.delay(row_ids)
        return len(row_ids)
    return inbound.complete_unfinished(row_ids)


def claim_due_jobs(now: datetime, batch: int) -> list[Claim]:
    """One statement (one short transaction): lock due pending rows nobody else holds, count the attempt,
    lease them, and return them — oldest first — with what processing needs (`store.jobs.CLAIM_DUE_JOBS`)."""
    if batch <= 0:
        return []
    claims = job_store.claim_due_jobs(now, batch, now + CLAIM_LEASE, timezone.now())
    for claim in claims:
        metrics.SCHEDULER_LAG.labels(claim.kind).observe(max((now - claim.original_due).total_seconds(), 0.0))
    return claims


def _max_lag_ms(claims: list[Claim], now: datetime) -> int:
    return max((int((now - claim.original_due).total_seconds() * 1000) for claim in claims), default=0)


def process_claims(claims: list[Claim], now: datetime, report: TickReport) -> TickReport:
    for claim in claims:
        outcome = process_claim(claim, now, report)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def hand_over_claims(claims: list[Claim], per_task: int) -> int:
    """Send the claims, oldest first, to the workers: one `process_jobs` task per `per_task` of them."""
    from automations import tasks

    for start in range(0, len(claims), per_task):
        tasks.process_jobs.delay([claim_to_json(claim) for claim in claims[start:start + per_task]])
    return len(claims)


def process_handed_over(claims: list[dict]) -> TickReport:
    """A worker's share of a tick: process claims handed over by `hand_over_claims` (still held only if
    their lease is unchanged — see process_claim)."""
    now = timezone.now()
    report = TickReport(now=now, claimed=len(claims))
    process_claims([claim_from_json(data) for data in claims], now, report)
    count_job_outcomes(report)  # the tick that claimed them counted none: they are counted where processed
    return report


def claim_to_json(claim: Claim) -> dict:
    return {**asdict(claim), "original_due": claim.original_due.isoformat(), "lease": claim.lease.isoformat()}


def claim_from_json(data: dict) -> Claim:
    return Claim(**{**data, "original_due": datetime.fromisoformat(data["original_due"]),
                    "lease": datetime.fromisoformat(data["lease"])})


class NotHeld(Exception):
    """The claimed job was cancelled or claimed again before it was processed."""


def process_claim(claim: Claim, now: datetime, report: TickReport) -> str:
    """Run one claimed job; return the TickReport counter it belongs to.

    A job that resumes a run is taken from the claim itself: its hold (still pending, still our lease)
    is checked by the same statement that reads the run, and the run's own write marks it done. Other
    kinds are read again first."""
    if claim.kind in TIMEOUT_WAITS:
        job = ScheduledJob(id=claim.id, kind=claim.kind, run_id=claim.run_id, payload=claim.payload or {})
    else:
        job = (ScheduledJob.objects.select_related("entrypoint")
               .filter(pk=claim.id, status=JobStatus.PENDING, due_at=claim.lease).first())
        if job is None:
            return "skipped"
    handler = HANDLERS.get(job.kind)
    try:
        if handler is None:
            raise ValueError(f"unknown job kind {job.kind!r}")
        acted = handler(job, claim, now, report)
    except NotHeld:
        return "skipped"
    except Exception as exc:
        logger.warning("scheduler: job %s (%s) failed on attempt %s", job.pk, job.kind, claim.attempts,
                       exc_info=True)
        return _record_failure(claim, exc, now)
    if acted is CLOSED:
        return "done"
    # The runtime may have cancelled this very job while resuming its run (cancel_pending): still done.
    ScheduledJob.objects.filter(pk=claim.id, due_at=claim.lease,
                                status__in=[JobStatus.PENDING, JobStatus.CANCELLED]).update(
        status=JobStatus.DONE, due_at=claim.original_due, last_error="", updated_at=timezone.now()
    )
    return "done" if acted else "noop"


CLOSED = "closed"  # a handler's answer: acted, and the job was marked done by the run's own write


def retry_delay(attempts: int) -> timedelta:
    return RETRY_BASE * (2 ** max(attempts - 1, 0))


def _record_failure(claim: Claim, exc: Exception, now: datetime) -> str:
    message = f"attempt {claim.attempts}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"[:LAST_ERROR_MAX]
    pending = ScheduledJob.objects.filter(pk=claim.id, due_at=claim.lease, status=JobStatus.PENDING)
    if claim.attempts >= MAX_ATTEMPTS:
        pending.update(status=JobStatus.FAILED, due_at=claim.original_due, last_error=message,
                       updated_at=timezone.now())
        return "failed"
    pending.update(due_at=now + retry_delay(claim.attempts), last_error=message, updated_at=timezone.now())
    return "retried"


# ------------------------------------------------------------------------------------- run waits

def _waiting_run(job: ScheduledJob, claim: Claim) -> LoadedRun | None:
    """The job's run if it is still waiting where and for what the job was scheduled, else None. Raises
    NotHeld if the job is no longer ours (read by the same statement as the run)."""
    loaded = read_run(job.run_id, held_job=claim) if job.run_id else None  # with what the resume needs
    if loaded is None:  # no run to read the hold with
        if not ScheduledJob.objects.filter(pk=claim.id, status=JobStatus.PENDING, due_at=claim.lease).exists():
            raise NotHeld(claim.id)
        return None
    if not loaded.job_held:
        raise NotHeld(claim.id)
    run = loaded.run
    if run.status != RunStatus.WAITING or run.waiting_for != TIMEOUT_WAITS[job.kind].waiting_for:
        return None
    node_key = (job.payload or {}).get("node_key")
    if node_key and node_key != run.current_node_key:
        return None
    return loaded


def _resume_through_port(job: ScheduledJob, claim: Claim, now: datetime, report: TickReport):
    loaded = _waiting_run(job, claim)
    if loaded is None:
        return False
    from automations.runtime.resume import resume_waiting

    resumed = resume_waiting(loaded, TIMEOUT_WAITS[job.kind].timeout_port,
                             payload={"scheduled_job_id": job.pk, "job_kind": job.kind}, now=now, finishing_job=claim)
    return CLOSED if resumed else False


def _pause_expiry(job: ScheduledJob, claim: Claim, now: datetime, report: TickReport) -> bool:
    from automations.runtime.controls import expire_pause

    result = expire_pause(job.payload or {}, now=now)
    return bool(result.deleted or result.resumed_run_ids)


# ------------------------------------------------------------------------------------- schedules

def _schedule_key(config: dict) -> dict:
    return {"cron": (config or {}).get("cron"), "timezone": (config or {}).get("timezone") or "UTC"}


def _active_schedule_entrypoints():
    return Entrypoint.objects.filter(kind=EntrypointKind.SCHEDULE, status=ActiveStatus.ACTIVE,
                                     automation__status=AutomationStatus.ACTIVE)


def plan_schedule_triggers(now: datetime) -> int:
    """Give each active schedule entrypoint one pending `schedule_trigger` job; return how many were created.

    Self-healing, so nothing else has to remember to call it: a new or re-activated entrypoint gets its
    next occurrence on the next tick, and a changed cron/timezone re-plans the pending job. Jobs of
    paused or deleted entrypoints simply no-op when they fire."""
    created = 0
    with transaction.atomic():
        job_store.lock_schedule_planning()
        entrypoints = list(_active_schedule_entrypoints())
        pending = {}
        for job in ScheduledJob.objects.filter(kind=JobKind.SCHEDULE_TRIGGER, status=JobStatus.PENDING,
                                               entrypoint__in=entrypoints).order_by("due_at"):
            pending.setdefault(job.entrypoint_id, []).append(job)
        for entrypoint in entrypoints:
            key = _schedule_key(entrypoint.config)
            jobs = pending.get(entrypoint.pk, [])
            current = [job for job in jobs if {k: (job.payload or {}).get(k) for k in key} == key]
            stale = [job for job in jobs if job not in current]
            if stale:
                ScheduledJob.objects.filter(pk__in=[job.pk for job in stale]).update(
                    status=JobStatus.CANCELLED, updated_at=timezone.now())
            if current:
                continue
            try:
                due = cron.next_occurrence(key["cron"], key["timezone"], now)
            except ValueError as exc:
                logger.warning("scheduler: schedule entrypoint %s not planned: %s", entrypoint.pk, exc)
                continue
            _create_trigger_job(entrypoint, due, key)
            created += 1
    return created


def _create_trigger_job(entrypoint: Entrypoint, due: datetime, key: dict) -> ScheduledJob:
    return ScheduledJob.objects.create(
        organization_id=entrypoint.organization_id, kind=JobKind.SCHEDULE_TRIGGER, entrypoint=entrypoint,
        due_at=due, payload={**key, "occurrence": due.isoformat()},
    )


def _schedule_trigger(job: ScheduledJob, claim: Claim, now: datetime, report: TickReport) -> bool:
    entrypoint = job.entrypoint
    if entrypoint is not None:
        entrypoint = (Entrypoint.objects.select_related("automation", "social_account")
                      .filter(pk=entrypoint.pk).first())
    if (entrypoint is None or entrypoint.kind != EntrypointKind.SCHEDULE
            or entrypoint.status != ActiveStatus.ACTIVE
            or entrypoint.automation.status != AutomationStatus.ACTIVE):
        return False  # re-planned by plan_schedule_triggers if it becomes active again

    key = _schedule_key(entrypoint.config)
    # First the next occurrence, so a crash while enrolling never ends the series.
    due = cron.next_occurrence(key["cron"], key["timezone"], now)
    with transaction.atomic():
        job_store.lock_schedule_planning()
        others = ScheduledJob.objects.filter(kind=JobKind.SCHEDULE_TRIGGER, status=JobStatus.PENDING,
                                             entrypoint=entrypoint).exclude(pk=job.pk)
        if not others.exists():
            _create_trigger_job(entrypoint, due, key)

    tags = audience.audience_tags(entrypoint.filters)
    if not tags:
        # Not enumerable (the entrypoint validator should have refused it): enroll nobody, say why.
        report.errors.append(f"schedule entrypoint {entrypoint.pk} has no tag filter; nobody enrolled")
        return False
    report.enrolled += audience.enroll_audience(job, entrypoint, tags, now)
    return True


HANDLERS = {
    **dict.fromkeys(TIMEOUT_WAITS, _resume_through_port),
    JobKind.PAUSE_EXPIRY: _pause_expiry,
    JobKind.SCHEDULE_TRIGGER: _schedule_trigger,
}


# ------------------------------------------------------------------------------------- reconcile

def stale_active_runs(now: datetime):
    return AutomationRun.objects.filter(status__in=[RunStatus.CREATED, RunStatus.ACTIVE],
                                        updated_at__lt=now - STALE_ACTIVE_AFTER)


def reconcile_stale_runs(now: datetime, limit: int | None = None) -> int:
    """Re-enqueue runs left `active` (or `created`) longer than STALE_ACTIVE_AFTER: their worker died.

    `write_run(run)` with no changes bumps updated_at first: it takes the run over (a worker that is
    merely slow finds zero rows on its next write and stops quietly) and keeps the next ticks from
    enqueueing it again for another STALE_ACTIVE_AFTER. The runner resumes an active run at
    current_node_key and never repeats a visit whose step row was recorded."""
    limit = settings.RELAY_SCHEDULER_BATCH if limit is None else limit
    stale = list(stale_active_runs(now).order_by("updated_at")[:limit])
    if not stale:
        return 0
    from automations import tasks
    from automations.runtime.runs import write_run

    enqueued = 0
    for run in stale:
        if write_run(run):
            tasks.advance_run.delay(run.pk)
            enqueued += 1
    return enqueued


# ------------------------------------------------------------------------------------- bookkeeping
# A tick's passing is recorded in two places: the SchedulerTick row (`record_tick`, read back with
# `last_tick` by readiness, the metrics scrape and the admin's health page) and `observe_tick` (metrics
# and the tick's one log line).

_ROUTINE_COUNTS = ("claimed", "enrolled", "reconciled", "redelivered", "schedules_planned",
                   "platform_deliveries_requeued", "platform_deliveries_pruned", "unfinished_events")
_JOB_OUTCOMES = ("done", "noop", "retried", "failed", "skipped")


def count_job_outcomes(report: TickReport) -> None:
    for outcome in _JOB_OUTCOMES:
        if getattr(report, outcome):
            metrics.SCHEDULER_JOBS.labels(outcome).inc(getattr(report, outcome))


def observe_tick(report: TickReport, seconds: float) -> None:
    """Count the tick and log it: INFO only when it did something (an idle tick every 15 s is noise),
    WARNING when something failed."""
    metrics.TICK_DURATION.observe(seconds)
    count_job_outcomes(report)
    if report.errors:
        logger.warning("scheduler: %s", report)
    elif any(getattr(report, name) for name in _ROUTINE_COUNTS) or report.partitions_created:
        logger.info("scheduler: %s", report)
    else:
        logger.debug("scheduler: %s", report)


def last_tick() -> SchedulerTick | None:
    """The last tick's row (None: the scheduler never ticked on this database)."""
    return SchedulerTick.objects.filter(pk=1).first()
