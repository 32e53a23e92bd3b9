"""The five measurements. Each returns a dict of figures (and raises if the runtime did not do the work:
a fast wrong answer is not a benchmark)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations.models import AutomationRun, JobStatus, RunStatus, ScheduledJob, StepRun
from bench.data import RUNNER_GRAPH_NODES, World, delay_graph, inbound_graph, runner_graph
from bench.env import BenchFailure, Broker, point_celery_at, require_connections
from bench.worker import celery_worker, wait_for_count

STEP_PAYLOAD = {"message_id": "msg_0123456789abcdefghij", "rendered_text": "Hi Alice, thanks for writing!" * 3,
                "parts": [{"type": "text", "text": "Hi Alice, thanks for writing! " * 4}]}


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------- (a) ceiling

def ceiling(seconds: float) -> dict:
    """One step-like row (bigint id, run id, ~300 B jsonb) per transaction, as fast as one connection can."""
    payload = json.dumps(STEP_PAYLOAD)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_ceiling (id bigserial PRIMARY KEY, run_id varchar(40) NOT NULL, "
                       "payload jsonb NOT NULL, executed_at timestamptz NOT NULL DEFAULT now())")
        sql = "INSERT INTO bench_ceiling (run_id, payload) VALUES (%s, %s)"
        for _ in range(200):  # warm-up
            cursor.execute(sql, ["arun_warmup", payload])
        rows, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for _ in range(100):  # autocommit: every statement is its own transaction (its own commit)
                cursor.execute(sql, ["arun_0123456789abcdefghij", payload])
            rows += 100
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_ceiling")
    return {"rows": rows, "seconds": round(elapsed, 3), "rows_per_s": round(_rate(rows, elapsed), 1),
            "payload_bytes": len(payload)}


# ------------------------------------------------------------------------------------ (b) the runner

def _check_completed(ids: list[str], what: str) -> int:
    done = AutomationRun.objects.filter(pk__in=ids, status=RunStatus.COMPLETED).count()
    if done != len(ids):
        statuses = list(AutomationRun.objects.filter(pk__in=ids).exclude(status=RunStatus.COMPLETED)
                        .values_list("status", "exit_reason")[:5])
        raise RuntimeError(f"{what}: only {done} of {len(ids)} runs completed; e.g. {statuses}")
    return StepRun.objects.filter(run_id__in=ids).count()


def runner_direct(world: World, count: int, budget_s: float) -> dict:
    """`runtime.runner.advance(run_id)` in this process, one run after another: `count` runs, or fewer
    if `budget_s` runs out first."""
    from automations.runtime.runner import advance

    automation = world.automation("Runner (direct)", runner_graph())
    for run_id in world.active_runs(automation, 20):  # warm-up: imports, caches, connection
        advance(run_id)
    probe = world.active_runs(automation, 1)[0]
    with CaptureQueriesContext(connection) as queries:
        advance(probe)
    ids = world.active_runs(automation, count)
    world.settle()
    done = 0
    started = time.perf_counter()
    for run_id in ids:
        advance(run_id)
        done += 1
        if time.perf_counter() - started > budget_s:
            break
    elapsed = time.perf_counter() - started
    ids = ids[:done]
    steps = _check_completed(ids, "runner (direct)")
    if steps != done * RUNNER_GRAPH_NODES:
        raise RuntimeError(f"runner (direct): {steps} step rows for {done} runs of {RUNNER_GRAPH_NODES} nodes")
    return {"runs": done, "steps": steps, "seconds": round(elapsed, 3), "runs_per_s": round(_rate(done, elapsed), 1),
            "step_runs_per_s": round(_rate(steps, elapsed), 1), "queries_per_run": len(queries.captured_queries),
            "ms_per_run": round(elapsed * 1000 / max(done, 1), 3)}


def _completed(ids: list[str]):
    return AutomationRun.objects.filter(pk__in=ids, status=RunStatus.COMPLETED)


def runner_celery(world: World, broker: Broker, count: int, concurrency: int, budget_s: float,
                  boot_budget_s: float = 60.0) -> dict:
    """The same graph through a real worker: enqueue `count` advance_run tasks and wait until all completed
    or `budget_s` ran out (then the figure is projected from the runs completed by then).
    Throughput = completed runs / (last completed_at − first enqueue)."""
    from automations import tasks

    require_connections(concurrency + 2, f"a Celery worker with {concurrency} processes")
    point_celery_at(broker)
    automation = world.automation("Runner (celery)", runner_graph())
    warmup = world.active_runs(automation, 4 * concurrency)
    ids = world.active_runs(automation, count)
    world.settle()
    with celery_worker(broker, concurrency) as worker:
        for run_id in warmup:  # also waits for the worker to boot
            tasks.advance_run.delay(run_id)
        done, _, complete = wait_for_count(lambda: _completed(warmup).count(), len(warmup), boot_budget_s, worker,
                                           "its warm-up runs")
        if not complete:
            raise BenchFailure(f"the Celery worker completed {done} of {len(warmup)} warm-up runs in "
                               f"{boot_budget_s:.0f} s and logged no error (is the broker reachable?)",
                               log=worker.log_tail())
        started_at = timezone.now()
        started = time.perf_counter()
        for run_id in ids:
            tasks.advance_run.delay(run_id)
        enqueue_seconds = time.perf_counter() - started
        done, _, complete = wait_for_count(lambda: _completed(ids).count(), count, budget_s, worker,
                                           f"{count} runs")
    if done == 0:
        raise BenchFailure(f"the Celery worker completed none of {count} runs in {budget_s:.0f} s",
                           log=worker.log_tail())
    finished = list(_completed(ids).values_list("pk", "completed_at"))
    elapsed = (max(at for _, at in finished) - started_at).total_seconds()
    steps = _check_completed([pk for pk, _ in finished], "runner (celery)")
    return {"runs": len(finished), "runs_enqueued": count, "complete": complete, "steps": steps,
            "seconds": round(elapsed, 3), "runs_per_s": round(_rate(len(finished), elapsed), 1),
            "step_runs_per_s": round(_rate(steps, elapsed), 1), "worker_concurrency": concurrency,
            "broker": broker.label, "enqueue_seconds": round(enqueue_seconds, 3), "budget_s": budget_s}


# ---------------------------------------------------------------------------------------- (c) inbound

def inbound(world: World, count: int, budget_s: float) -> dict:
    """POST /v1/inbound-events through the test client, keyword entrypoint → message, tag, end, with
    Celery eager so each event's run completes inside its request. Every event is a new contact.
    `count` events, or fewer if `budget_s` runs out first."""
    from rest_framework.test import APIClient

    from automations.graph import entrypoints as entrypoint_service
    from automations.models import Entrypoint
    from relay.celery import app

    automation = world.automation("Inbound", inbound_graph())
    entrypoint_service.apply(Entrypoint(organization=world.org, automation=automation, channel="instagram",
                                        kind="dm_received", config={"keywords": ["bench"]}), create=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.api_key}")

    def post(i: int):
        body = {"event_id": f"evt-{i}", "social_account_id": world.account.pk, "kind": "dm_received",
                "contact": {"platform_user_id": f"user-{i}", "name": f"User {i}"}, "text": "bench"}
        response = client.post("/v1/inbound-events", body, format="json")
        if response.status_code != 202 or response.json().get("outcome") != "enrolled":
            raise RuntimeError(f"inbound event {i}: {response.status_code} {response.content[:300]!r}")
        return response.json()["run_id"]

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        for i in range(10):  # warm-up
            post(-1 - i)
        statements = []
        with connection.execute_wrapper(lambda execute, sql, *args: statements.append(sql) or execute(sql, *args)):
            post(-11)  # counted with a wrapper: the request's start resets Django's own query log
        ids = []
        started = time.perf_counter()
        for i in range(count):
            ids.append(post(i))
            if time.perf_counter() - started > budget_s:
                break
        elapsed = time.perf_counter() - started
    finally:
        app.conf.task_always_eager = previous
    _check_completed(ids, "inbound")
    return {"events": len(ids), "seconds": round(elapsed, 3), "events_per_s": round(_rate(len(ids), elapsed), 1),
            "ms_per_event": round(elapsed * 1000 / len(ids), 3), "queries_per_event": len(statements)}


# -------------------------------------------------------------------------------------- (d) scheduler

def scheduler(world: World, backlog: int, budget_s: float, batch: int = 200) -> dict:
    """One tick over `batch` due delay jobs, then a backlog of `backlog` due jobs drained by repeated ticks.
    Ticking stops when the backlog is drained or `budget_s` ran out (then the drain time is projected
    from the rate measured)."""
    from automations.runtime.scheduler import tick

    automation = world.automation("Delayed follow-up", delay_graph())
    due = timezone.now() - timedelta(seconds=1)
    world.delayed_runs(automation, 20, due)
    tick(batch=batch)  # warm-up; also creates the month partitions a real tick keeps ahead
    with CaptureQueriesContext(connection) as idle:  # housekeeping only: partitions, schedules, reconcile
        tick(batch=batch)
    probe = world.delayed_runs(automation, 5, due)
    with CaptureQueriesContext(connection) as busy:
        tick(batch=batch)
    queries_per_job = (len(busy.captured_queries) - len(idle.captured_queries)) / len(probe)

    ids = world.delayed_runs(automation, batch, due)
    world.settle()
    started = time.perf_counter()
    report = tick(batch=batch)
    tick_seconds = time.perf_counter() - started
    if report.claimed != batch or report.done != batch:
        raise RuntimeError(f"the {batch}-job tick claimed {report.claimed} and did {report.done}: {report}")
    _check_completed(ids, "scheduler tick")

    ids = world.delayed_runs(automation, backlog, due)
    world.settle()
    ticks, done = 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < budget_s:
        report = tick(batch=batch)
        ticks += 1
        done += report.done
        if report.claimed == 0:
            break
    drain_seconds = time.perf_counter() - started
    drained = ScheduledJob.objects.filter(run_id__in=ids, status=JobStatus.DONE).count()
    if drained != done:
        raise RuntimeError(f"the backlog: ticks reported {done} jobs done, the table says {drained}")
    complete = drained == backlog
    finished = AutomationRun.objects.filter(pk__in=ids, status=RunStatus.COMPLETED).count()
    if finished != drained:
        raise RuntimeError(f"the backlog: {drained} jobs done but {finished} runs completed")
    projected = drain_seconds if complete else drain_seconds * backlog / max(drained, 1)
    return {"tick_jobs": batch, "tick_ms": round(tick_seconds * 1000, 1),
            "tick_jobs_per_s": round(_rate(batch, tick_seconds), 1), "queries_per_job": round(queries_per_job, 1),
            "queries_per_idle_tick": len(idle.captured_queries),
            "backlog_jobs": backlog, "backlog_drained": drained, "backlog_complete": complete,
            "backlog_seconds": round(drain_seconds, 3), "backlog_projected_seconds": round(projected, 1),
            "backlog_ticks": ticks, "backlog_jobs_per_s": round(_rate(drained, drain_seconds), 1),
            "backlog_budget_s": budget_s}
