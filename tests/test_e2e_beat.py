"""End to end through real processes: `celery -A relay beat` (DatabaseScheduler, the PeriodicTask from
`setup_schedules` at a 1 s interval) fires `automations.tasks.scheduler_tick` into a private
filesystem broker; a real `celery -A relay worker` runs it (and `advance_run`) against this test's
database. A delay, an input timeout and a pause expiry each complete without anyone calling tick().

Waits are bounded polls; the subprocesses are always killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from automations.management.commands.setup_schedules import ensure_beat_schedule
from automations.models import Automation, AutomationRun, JobKind, JobStatus, RunStatus, ScheduledJob
from automations.runtime.controls import pause_contact
from automations.runtime.enrollment import enroll
from contacts.models import ContactAutomationControl
from relay.database import database_url
from tests import factories
from tests.reliability.support import private_broker

ROOT = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 90


@contextmanager
def celery_processes(var_dir: Path):
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"}}
    env.update({"DATABASE_URL": database_url(), "RELAY_VAR_DIR": str(var_dir), "DEBUG": "1",
                "RELAY_SCHEDULER_INTERVAL_SECONDS": "1", "PYTHONUNBUFFERED": "1", "CONN_MAX_AGE": "0",
                "DJANGO_SETTINGS_MODULE": "relay.settings"})
    commands = {
        "worker": [sys.executable, "-m", "celery", "-A", "relay", "worker", "--pool=solo", "--loglevel=INFO",
                   "--without-heartbeat", "--without-gossip", "--without-mingle",
                   f"--hostname=e2e-{os.getpid()}@%h"],
        "beat": [sys.executable, "-m", "celery", "-A", "relay", "beat", "--loglevel=INFO",
                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                 f"--pidfile={var_dir / 'beat.pid'}", f"--schedule={var_dir / 'beat-schedule'}"],
    }
    processes, logs = {}, {}
    try:
        for name, argv in commands.items():
            logs[name] = var_dir / f"{name}.log"
            processes[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=logs[name].open("w"),
                                               stderr=subprocess.STDOUT, start_new_session=True)
        yield lambda: "\n".join(f"--- {name} ---\n{path.read_text()[-4000:]}" for name, path in logs.items())
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def wait_until(condition, describe, logs, timeout=WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {describe}\n{logs()}")


def node(key, kind, **config):
    return {"key": key, "kind": kind, "config": config}


def edge(from_node, port, to_node):
    return {"from_node": from_node, "from_port": port, "to_node": to_node, "to_port": "in"}


def flow(org, name, nodes, edges):
    return Automation.objects.create(organization=org, name=name, channel="instagram", status="active",
                                     graph={"nodes": nodes, "edges": edges, "root_node_key": "start"})


def run_of(automation) -> AutomationRun:
    return AutomationRun.objects.get(automation=automation)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_delay_input_timeout_and_pause_expiry_complete_through_beat_and_a_worker(tmp_path):
    org = factories.organization()
    account = factories.social_account(org)
    delayed, asked, paused = (factories.contact(org, account=account) for _ in range(3))
    delay_flow = flow(org, "Delay", [node("start", "condition", predicates={}), node("wait", "delay", seconds=2),
                                     node("done", "end", reason="delay_done")],
                      [edge("start", "true", "wait"), edge("wait", "next", "done")])
    input_flow = flow(org, "Input", [node("start", "condition", predicates={}),
                                     node("ask", "input", field="email", input_type="email", timeout_min=1),
                                     node("late", "end", reason="input_timed_out")],
                      [edge("start", "true", "ask"), edge("ask", "timeout", "late")])
    pause_flow = flow(org, "Paused", [node("start", "end", reason="ran_after_pause")], [])
    ensure_beat_schedule(1)

    with private_broker(tmp_path), celery_processes(tmp_path) as logs:
        # Enrollment enqueues advance_run on commit: the worker walks each run to its wait.
        assert enroll(delay_flow, delayed).ok
        assert enroll(input_flow, asked).ok
        control, _ = pause_contact(paused, pause_reason="manual_takeover",
                                   paused_until=timezone.now() + timedelta(seconds=4))
        parked = enroll(pause_flow, paused).run  # paused contact: parked at the root, not executed
        assert parked.waiting_for == "external_event"

        # The input node waits a whole minute; once the worker parked the run there, move its
        # timeout job to now instead of sleeping (the worker's beat-driven tick must fire it).
        wait_until(lambda: ScheduledJob.objects.filter(run__automation=input_flow, kind=JobKind.INPUT_TIMEOUT,
                                                       status=JobStatus.PENDING).exists(),
                   "the input run to wait with its timeout job", logs)
        assert run_of(input_flow).waiting_for == "input"
        ScheduledJob.objects.filter(run__automation=input_flow, kind=JobKind.INPUT_TIMEOUT).update(
            due_at=timezone.now())

        wait_until(lambda: run_of(delay_flow).status == RunStatus.COMPLETED, "the delay to complete", logs)
        wait_until(lambda: run_of(input_flow).status == RunStatus.COMPLETED, "the input timeout", logs)
        wait_until(lambda: run_of(pause_flow).status == RunStatus.COMPLETED, "the pause expiry", logs)

    assert run_of(delay_flow).exit_reason == "delay_done"
    assert run_of(input_flow).exit_reason == "input_timed_out"
    assert run_of(pause_flow).exit_reason == "ran_after_pause"
    assert not ContactAutomationControl.objects.filter(pk=control.pk).exists()
    kinds_done = set(ScheduledJob.objects.filter(status=JobStatus.DONE).values_list("kind", flat=True))
    assert {JobKind.RESUME_DELAY, JobKind.INPUT_TIMEOUT, JobKind.PAUSE_EXPIRY} <= kinds_done
    # Dozens of ticks at INFO, and not one line each: neither beat sending it nor the worker receiving it.
    beat_log, worker_log = (tmp_path / "beat.log").read_text(), (tmp_path / "worker.log").read_text()
    assert "beat: Starting..." in beat_log and "Sending due task" not in beat_log
    assert "Task automations.advance_run[" in worker_log and "Task automations.tasks.scheduler_tick[" not in worker_log
