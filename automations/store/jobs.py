"""Statements on `automation_scheduled_jobs`.

Why hand-written: the write that moves a run on cancels its wait's jobs (and marks done the job that
resumed it) in the same statement as the run write (`runtime.hooks`), not in one of its own: Django
spends about a millisecond compiling and adapting each ORM statement on the measured machine (README,
"Performance").
"""

from __future__ import annotations

from automations.models import JobStatus, ScheduledJob
from automations.store.base import AFTER, statement

# -- claiming due jobs -----------------------------------------------------------------------------
# (the scheduler's claim)


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
