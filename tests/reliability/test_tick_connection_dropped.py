"""The scheduler tick's database connection is terminated (pg_terminate_backend from another connection)
while the tick works on its claimed jobs. The tick fails cleanly — nothing half-written, no job marked
done that did not run — the jobs stay pending, and the next tick does them, each run exactly once.

The moment of the kill is made deterministic with a lock held by the other connection: the tick
blocks on it, the test sees the tick's backend waiting for that lock, and only then terminates it."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import OperationalError, close_old_connections
from django.utils import timezone

from automations.models import AutomationRun, JobKind, JobStatus, RunStatus, ScheduledJob, StepRun
from automations.runtime.enrollment import enroll
from automations.runtime.scheduler import CLAIM_LEASE, tick
from contacts.models import Message
from tests import factories
from tests.reliability.support import backend_pid, raw_connection, wait_until

RUNS = 6


def delayed_runs(count):
    """Runs parked at a delay by the runtime itself (eager Celery: enrollment advances them to the
    delay), their resume_delay jobs then made due."""
    org = factories.organization()
    account = factories.social_account(org)
    graph = factories.flow(
        [("start", "condition", {}), ("wait", "delay", {"seconds": 60}),
         ("follow", "message", {"blocks": [{"type": "text", "text": "Still there?"}]}),
         ("done", "end", {"reason": "followed_up"})],
        [("start", "true", "wait"), ("wait", "next", "follow"), ("follow", "next", "done")])
    automation = factories.automation(org, graph, status="active")
    ids = []
    for _ in range(count):
        contact = factories.contact(org, account=account)
        factories.conversation(contact, account)
        ids.append(enroll(automation, contact).run.pk)
    jobs = ScheduledJob.objects.filter(run_id__in=ids, kind=JobKind.RESUME_DELAY)
    assert jobs.filter(status=JobStatus.PENDING).count() == count
    jobs.update(due_at=timezone.now() - timedelta(seconds=1))
    return ids


class Killer(threading.Thread):
    """Holds `lock_sql` on its own connection; once `victim` waits for that lock, terminates it."""

    def __init__(self, victim_pid: int, lock_sql: str, params=()):
        super().__init__(daemon=True)
        self.victim_pid = victim_pid
        self.holder = raw_connection(autocommit=False)
        self.holder.execute(lock_sql, params)  # taken now, before the tick starts
        self.terminated = False
        self.error = None

    def run(self):
        try:
            with raw_connection() as watcher:
                def victim_waits_for_lock():
                    row = watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                          [self.victim_pid]).fetchone()
                    return row is not None and row[0] == "Lock"

                wait_until(victim_waits_for_lock, "the tick to block on the held lock", timeout=30)
                self.terminated = watcher.execute("SELECT pg_terminate_backend(%s)", [self.victim_pid]).fetchone()[0]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread by finish()
            self.error = exc
        finally:
            self.holder.rollback()
            self.holder.close()

    def finish(self):
        self.join(timeout=60)
        assert not self.is_alive(), "the killer thread hung"
        if self.error is not None:
            raise self.error
        assert self.terminated


def assert_each_run_completed_once(ids):
    for run in AutomationRun.objects.filter(pk__in=ids):
        assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "followed_up")
        visits = Counter(StepRun.objects.filter(run_id=run.pk).values_list("node_key", flat=True))
        assert visits == {"start": 1, "wait": 2, "follow": 1, "done": 1}  # wait: parked, then resumed
        assert Message.objects.filter(run_id=run.pk, node_key="follow", status="sent").count() == 1
    assert set(ScheduledJob.objects.filter(run_id__in=ids).values_list("status", flat=True)) == {JobStatus.DONE}


@pytest.mark.django_db(transaction=True)
def test_connection_killed_while_the_tick_reads_fails_the_tick_and_the_next_tick_does_the_jobs(eager_celery):
    ids = delayed_runs(RUNS)
    now = timezone.now()
    # ACCESS EXCLUSIVE on automation_runs: the claim (scheduled jobs only) goes through; the first claimed
    # job's read of its run blocks — outside any transaction of the tick.
    killer = Killer(backend_pid(), "LOCK TABLE automation_runs IN ACCESS EXCLUSIVE MODE")
    killer.start()
    with pytest.raises(OperationalError):
        tick(now=now)
    killer.finish()
    close_old_connections()  # what Celery's Django fixup does after every task: drop the broken connection

    jobs = ScheduledJob.objects.filter(run_id__in=ids)
    assert set(jobs.values_list("status", flat=True)) == {JobStatus.PENDING}
    assert set(jobs.values_list("attempts", flat=True)) == {1}  # claimed (leased) once, done never
    assert set(AutomationRun.objects.filter(pk__in=ids).values_list("status", "current_node_key")) == {
        (RunStatus.WAITING, "wait")}
    assert not Message.objects.filter(run_id__in=ids).exists()

    assert tick(now=now).claimed == 0  # leased: not due again before the lease ends
    report = tick(now=now + CLAIM_LEASE + timedelta(seconds=1))
    assert (report.claimed, report.done, report.retried) == (RUNS, RUNS, 0), report
    assert_each_run_completed_once(ids)


@pytest.mark.django_db(transaction=True)
def test_connection_killed_inside_a_jobs_transaction_rolls_it_back_and_retries_that_job(eager_celery):
    ids = delayed_runs(RUNS)
    victim = ids[RUNS // 2]
    now = timezone.now()
    # A row lock on one run: the tick resumes the jobs before it, then blocks in that run's write
    # (UPDATE … WHERE updated_at = …) inside the transaction that also holds its step rows and message.
    killer = Killer(backend_pid(), "SELECT 1 FROM automation_runs WHERE id = %s FOR UPDATE", [victim])
    killer.start()
    report = tick(now=now)
    killer.finish()

    assert report.claimed == RUNS
    assert (report.done, report.retried) == (RUNS - 1, 1), report
    job = ScheduledJob.objects.get(run_id=victim)
    assert job.status == JobStatus.PENDING and job.attempts == 1 and job.due_at > now
    assert "OperationalError" in job.last_error
    run = AutomationRun.objects.get(pk=victim)
    assert (run.status, run.current_node_key) == (RunStatus.WAITING, "wait")
    assert not Message.objects.filter(run_id=victim).exists()  # the aborted transaction left nothing
    assert Counter(StepRun.objects.filter(run_id=victim).values_list("node_key", flat=True)) == {"start": 1, "wait": 1}

    report = tick(now=job.due_at + timedelta(seconds=1))
    assert (report.claimed, report.done) == (1, 1), report
    assert_each_run_completed_once(ids)
