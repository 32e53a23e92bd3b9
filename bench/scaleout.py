"""(h) Scale-out: the same work with 1, 2 and 4 Celery worker processes.

- runs/s: the 10-node runner graph through `advance_run` tasks (scenarios.runner_celery) per worker count;
- a backlog of due delay jobs drained by the beat's tick as it runs in production: it claims the jobs and
  hands them to the workers in batches (`tasks.process_jobs`), so the drain rate is the workers' rate,
  not one process's. The tick is called here in a loop (as beat would, only without waiting for the
  interval) until nothing is due; the drain ends when the table says every job is done.

Each drain is bounded by `budget_s` (then projected from the rate measured); every job and run is checked."""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone

from automations.models import AutomationRun, JobStatus, RunStatus, ScheduledJob
from bench import scenarios
from bench.data import World, delay_graph
from bench.env import BenchFailure, Broker, forget_queue, point_celery_at, require_connections
from bench.worker import celery_worker, wait_for_count

WORKER_COUNTS = (1, 2, 4)
JOBS_PER_TASK = 50


def scale_out(world: World, broker: Broker, runs: int, backlog: int, budget_s: float,
              counts: tuple[int, ...] = WORKER_COUNTS) -> dict:
    curve = []
    for concurrency in counts:
        runner = scenarios.runner_celery(world, broker, runs, concurrency, budget_s)
        drain = backlog_through_workers(world, broker, backlog, budget_s, concurrency)
        curve.append({"workers": concurrency, "runs_per_s": runner["runs_per_s"],
                      "step_runs_per_s": runner["step_runs_per_s"], **drain})
    return {"curve": curve, "runs": runs, "backlog_jobs": backlog, "jobs_per_task": JOBS_PER_TASK,
            "flattens_at": flattens_at(curve)}


def flattens_at(curve: list[dict], gain: float = 1.15) -> int:
    """The first worker count after which one more step (×2 processes) gains less than `gain`×."""
    for before, after in zip(curve, curve[1:], strict=False):
        if after["runs_per_s"] < before["runs_per_s"] * gain:
            return before["workers"]
    return curve[-1]["workers"]


def backlog_through_workers(world: World, broker: Broker, count: int, budget_s: float, concurrency: int) -> dict:
    from automations.runtime.scheduler import tick

    require_connections(concurrency + 2, f"a Celery worker with {concurrency} processes")
    point_celery_at(broker)
    automation = world.automation(f"Backlog x{concurrency}", delay_graph())
    due = timezone.now() - timedelta(seconds=1)
    warmup = world.delayed_runs(automation, 4 * concurrency, due)
    ids = world.delayed_runs(automation, count, due)
    # Only the warm-up is due at first: the backlog's jobs wait until the worker is up.
    ScheduledJob.objects.filter(run_id__in=ids).update(due_at=due + timedelta(days=1))
    world.settle()
    jobs = ScheduledJob.objects.filter(run_id__in=ids)
    with celery_worker(broker, concurrency) as worker:
        tick(hand_over=JOBS_PER_TASK, max_jobs=len(warmup))
        warm = ScheduledJob.objects.filter(run_id__in=warmup, status=JobStatus.DONE)
        done, _, complete = wait_for_count(warm.count, len(warmup), 120, worker, f"the backlog x{concurrency} warm-up")
        if not complete:
            raise BenchFailure(f"backlog x{concurrency}: the worker did {done} of {len(warmup)} warm-up jobs in 120 s",
                               log=worker.log_tail())
        jobs.update(due_at=due)
        started = time.perf_counter()
        ticks = claimed = 0
        while time.perf_counter() - started < budget_s:
            report = tick(hand_over=JOBS_PER_TASK, max_jobs=count)
            ticks += 1
            claimed += report.claimed
            if claimed >= count or report.claimed == 0:
                break
        claim_seconds = time.perf_counter() - started
        done_jobs = jobs.filter(status=JobStatus.DONE)
        wait_for_count(done_jobs.count, count, max(budget_s - (time.perf_counter() - started), 0), worker,
                       f"the {count}-job backlog x{concurrency}")
        seconds = time.perf_counter() - started
    forget_queue(broker)  # batches left after the budget ran out must not reach the next measurement
    drained = jobs.filter(status=JobStatus.DONE).count()
    if jobs.filter(attempts__gt=1).exists():
        raise BenchFailure(f"backlog x{concurrency}: a job was claimed more than once")
    finished = AutomationRun.objects.filter(pk__in=ids, status=RunStatus.COMPLETED).count()
    if finished != drained:
        raise BenchFailure(f"backlog x{concurrency}: {drained} jobs done but {finished} runs completed")
    complete = drained == count
    projected = seconds if complete else seconds * count / max(drained, 1)
    return {"backlog_drained": drained, "backlog_complete": complete, "backlog_seconds": round(seconds, 2),
            "backlog_projected_seconds": round(projected, 1), "backlog_jobs_per_s": round(drained / seconds, 1),
            "claim_seconds": round(claim_seconds, 2), "ticks": ticks}
