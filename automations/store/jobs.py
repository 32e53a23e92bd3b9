"""Statements on `automation_scheduled_jobs`.

Why hand-written: a tick claims its due jobs in ONE statement (lock the due rows nobody holds, count the
attempt, lease them, return them), where the ORM needs a transaction with a locking read and an update —
and on the measured machine Django spends about a millisecond compiling and adapting each statement,
several times what PostgreSQL spends running it (README, "Performance"). A claimed job that resumes a run
needs no read of its own: the claim carries the row, and `store.runs.LOAD_RUN_HOLDING_JOB` checks its hold
while reading the run. And the write that moves a run on cancels its wait's jobs (and marks done the job
that resumed it) in the same statement as the run write (`runtime.hooks`), not in one of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from automations.models import JobStatus, ScheduledJob
from automations.store.base import AFTER, execute, fetch, statement

# -- claiming due jobs -----------------------------------------------------------------------------


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


# Lock up to `limit` due pending rows nobody else holds, oldest first, count the attempt and lease them
# (their `due_at` becomes the lease, the claim token); return each with its original due time.
CLAIM_DUE_JOBS = statement(
    """WITH due AS (
           SELECT {job.id}, {job.due_at} FROM {job} WHERE {job.status} = '{pending}' AND {job.due_at} <= %(now)s
           ORDER BY {job.due_at}, {job.id} LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
       UPDATE {job} j SET {job.attempts} = j.{job.attempts} + 1, {job.due_at} = %(lease)s,
                          {job.updated_at} = %(updated_at)s
       FROM due WHERE j.{job.id} = due.{job.id}
       RETURNING j.{job.id} AS id, due.{job.due_at} AS original_due, j.{job.attempts} AS attempts,
                 j.{job.kind} AS kind, j.{job.run} AS run_id, j.{job.payload} AS payload""",
    job=ScheduledJob, pending=JobStatus.PENDING,
)


def claim_due_jobs(now: datetime, limit: int, lease: datetime, updated_at: datetime) -> list[Claim]:
    """Claim up to `limit` jobs due at `now` under `lease`, oldest first."""
    rows = fetch(CLAIM_DUE_JOBS, {"now": now, "limit": limit, "lease": lease, "updated_at": updated_at})
    claims = [Claim(id=row["id"], original_due=row["original_due"], attempts=row["attempts"], lease=lease,
                    kind=row["kind"], run_id=row["run_id"],
                    payload=json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"])
              for row in rows]
    return sorted(claims, key=lambda claim: (claim.original_due, claim.id))


# -- planning schedule triggers --------------------------------------------------------------------

_SCHEDULE_PLANNING_KEY = 734_190_612  # serialises schedule_trigger planning across ticks (next to partitions' key)
LOCK_SCHEDULE_PLANNING = f"SELECT pg_advisory_xact_lock({_SCHEDULE_PLANNING_KEY})"


def lock_schedule_planning() -> None:
    """Plan schedule triggers alone until the current transaction ends."""
    execute(LOCK_SCHEDULE_PLANNING, None)


# -- jobs written with a run -----------------------------------------------------------------------
# (cancelling a wait's jobs, finishing the claimed job; scheduling a new one stays on the ORM: it is in a
# transaction of its own statements anyway, see runtime.jobs.schedule)

# The run's pending jobs (of `kinds`, or all when NULL) cancelled.
CANCEL_RUN_JOBS = statement(
    """UPDATE {job} SET {job.status} = '{cancelled}', {job.updated_at} = %(now)s
       WHERE {job.run} = %(run)s AND {job.status} = '{pending}'
         AND (%(kinds)s::text[] IS NULL OR {job.kind} = ANY(%(kinds)s::text[])) AND {after}""",
    job=ScheduledJob, cancelled=str(JobStatus.CANCELLED), pending=str(JobStatus.PENDING), after=AFTER,
)

# The same, except the scheduler's claim (`claim`, still leased at `lease`) that resumed the run: marked
# done, with its due time back to `original_due` and no error — the tick has no closing write to make.
FINISH_CLAIM_CANCEL_RUN_JOBS = statement(
    """UPDATE {job} SET
           {job.status} = CASE WHEN {claimed} THEN '{done}' ELSE '{cancelled}' END,
           {job.due_at} = CASE WHEN {claimed} THEN %(original_due)s ELSE {job.due_at} END,
           {job.last_error} = CASE WHEN {claimed} THEN '' ELSE {job.last_error} END,
           {job.updated_at} = %(now)s
       WHERE {job.run} = %(run)s AND {job.status} = '{pending}'
         AND (%(kinds)s::text[] IS NULL OR {job.kind} = ANY(%(kinds)s::text[])) AND {after}""",
    job=ScheduledJob, claimed=statement("({job.id} = %(claim)s AND {job.due_at} = %(lease)s)", job=ScheduledJob),
    done=str(JobStatus.DONE), cancelled=str(JobStatus.CANCELLED), pending=str(JobStatus.PENDING), after=AFTER,
)
