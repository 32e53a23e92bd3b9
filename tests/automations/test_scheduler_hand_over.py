"""The beat's tick hands claimed jobs to the workers in batches (`tasks.process_jobs`) instead of processing
them itself; the claim's lease still decides who may process a job, so every job is done exactly once —
also with two ticks at once (two beats by mistake) feeding real worker processes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations import tasks
from automations.models import JobStatus, RunStatus, ScheduledJob
from automations.runtime.scheduler import claim_due_jobs, claim_to_json, process_handed_over, tick
from tests import factories
from tests.automations.test_scheduler_jobs import delay_flow, run_until_it_stops, steps
from tests.helpers import race
from tests.reliability.support import Worker, private_broker, wait_until


def waiting_runs(count: int, *, minutes_ago: int = 5):
    """`count` runs parked at a one-minute delay whose resume job is already due."""
    org = factories.organization()
    account = factories.social_account(org)
    automation = delay_flow(org, minutes=1)
    started = timezone.now() - timedelta(minutes=minutes_ago)
    runs = [run_until_it_stops(automation, factories.contact(org, account=account), started) for _ in range(count)]
    assert {run.status for run in runs} == {RunStatus.WAITING}
    return runs


def assert_each_run_resumed_once(runs):
    for run in runs:
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED, (run.pk, run.status, run.exit_reason)
        assert [s.exited_via_port_key for s in steps(run, "wait")] == [None, "next"]
        assert len(steps(run, "after")) == 1
    assert set(ScheduledJob.objects.values_list("status", "attempts")) == {(JobStatus.DONE, 1)}


@pytest.mark.django_db
def test_a_handing_over_tick_sends_batches_that_the_worker_processes(eager_celery, django_capture_on_commit_callbacks):
    runs = waiting_runs(5)
    sent = []
    original = tasks.process_jobs.delay
    tasks.process_jobs.delay = lambda claims: sent.append(len(claims)) or original(claims)
    try:
        report = tick(hand_over=2, batch=200)
    finally:
        tasks.process_jobs.delay = original
    assert (report.claimed, report.handed_over, report.done) == (5, 5, 0)
    assert sent == [2, 2, 1]  # oldest first, in batches of two; processed by the task (eager here)
    assert_each_run_resumed_once(runs)


@pytest.mark.django_db
def test_a_handing_over_tick_claims_again_while_full_batches_come_back_up_to_its_limit(eager_celery):
    waiting_runs(7)
    report = tick(hand_over=2, batch=3, max_jobs=5)
    assert (report.claimed, report.handed_over) == (5, 5)  # 3, then 2 (the limit), not the 7th
    assert ScheduledJob.objects.filter(status=JobStatus.DONE).count() == 5
    assert tick(hand_over=2, batch=3, max_jobs=5).claimed == 2


@pytest.mark.django_db
def test_a_batch_that_waited_past_its_lease_skips_jobs_another_tick_claimed_again():
    (run,) = waiting_runs(1)
    stale = [claim_to_json(claim) for claim in claim_due_jobs(timezone.now(), 10)]
    # The lease ran out while the batch sat in the queue: the next tick claimed the job again and did it.
    assert tick(now=timezone.now() + timedelta(minutes=6)).done == 1
    report = process_handed_over(stale)
    assert (report.claimed, report.skipped, report.done) == (1, 1, 0)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and len(steps(run, "after")) == 1
    assert ScheduledJob.objects.get().attempts == 2


@pytest.mark.django_db
def test_the_beat_task_hands_over_per_the_setting_or_processes_itself_at_zero(settings, eager_celery):
    waiting_runs(3)
    settings.RELAY_SCHEDULER_JOBS_PER_TASK = 0
    settings.RELAY_SCHEDULER_BATCH = 1
    assert tasks.scheduler_tick()["done"] == 1
    settings.RELAY_SCHEDULER_JOBS_PER_TASK = 1
    result = tasks.scheduler_tick()
    assert (result["claimed"], result["handed_over"], result["done"]) == (2, 2, 0)
    assert ScheduledJob.objects.filter(status=JobStatus.DONE).count() == 3


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_handing_over_to_two_real_workers_do_every_job_once(tmp_path):
    runs = waiting_runs(60)
    workers = [Worker(tmp_path) for _ in range(2)]
    try:
        with private_broker(tmp_path):  # each of the two beats ticks four times
            batches = race(2, lambda _: [tick(hand_over=5, batch=10, max_jobs=20) for _ in range(4)])
        reports = batches[0] + batches[1]
        assert sum(r.claimed for r in reports) == sum(r.handed_over for r in reports) == 60
        wait_until(lambda: not ScheduledJob.objects.exclude(status=JobStatus.DONE).exists(),
                   "the workers to finish every handed-over job", timeout=120,
                   logs=lambda: "\n".join(w.logs() for w in workers))
    finally:
        for worker in workers:
            worker.stop()
    assert_each_run_resumed_once(runs)
