"""A real Celery prefork worker (two children) counting into PROMETHEUS_MULTIPROC_DIR: the scrape adds up
what both children did, and the children's files are folded into the archive when they exit. It logs in
JSON, one object per line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from automations.models import AutomationRun
from automations.runtime.enrollment import enroll
from relay.database import database_url
from relay.observability import metrics
from tests import factories
from tests.reliability.support import private_broker

ROOT = Path(__file__).resolve().parents[2]
RUNS = 6


def finished_runs(reason: str) -> float:
    for family in text_string_to_metric_families(metrics.scrape().decode()):
        for sample in family.samples:
            if sample.name == "relay_runs_finished_total" and sample.labels.get("exit_reason") == reason:
                return sample.value
    return 0.0


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_s_children_are_summed_and_folded_in_when_they_exit(tmp_path, monkeypatch):
    metrics_dir = tmp_path / "metrics"
    org = factories.organization()
    account = factories.social_account(org)
    nodes = [("greet", "message", {"blocks": [{"type": "text", "text": "Hi"}]}), ("bye", "end", {"reason": "mp"})]
    automation = factories.automation(org, factories.flow(nodes, [("greet", "next", "bye")]), status="active")
    contacts = [factories.contact(org, account=account) for _ in range(RUNS)]
    for contact in contacts:
        factories.conversation(contact, account)

    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"}}
    env.update({"DATABASE_URL": database_url(), "RELAY_VAR_DIR": str(tmp_path), "DEBUG": "1", "CONN_MAX_AGE": "0",
                "DJANGO_SETTINGS_MODULE": "relay.settings", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"})
    log = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "relay", "--quiet", "worker", "--pool=prefork", "--concurrency=2",
            "--without-heartbeat", "--without-gossip", "--without-mingle", f"--hostname=metrics-{os.getpid()}@%h"]
    with private_broker(tmp_path), log.open("w") as out:
        worker = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            runs = [enroll(automation, contact).run.pk for contact in contacts]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and AutomationRun.objects.filter(
                    pk__in=runs, status="completed").count() < RUNS:
                time.sleep(0.2)
            assert AutomationRun.objects.filter(pk__in=runs, status="completed").count() == RUNS, log.read_text()
            monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
            while time.monotonic() < deadline and finished_runs("mp") < RUNS:
                time.sleep(0.1)  # a child counts right after its run's write commits
            assert finished_runs("mp") == RUNS
            children = {int(p) for p in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()}
            assert len(children) == 2
        finally:
            worker.send_signal(signal.SIGTERM)  # warm shutdown: the children leave through the pool
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=5)
    assert finished_runs("mp") == RUNS  # the totals stay…
    leftover = [p.name for p in metrics_dir.glob("*.db") if any(f"_{pid}.db" in p.name for pid in children)]
    assert leftover == [], log.read_text()  # …but not the children's files
    # LOG_FORMAT=json: the worker's output is JSON lines (but the notice Celery prints from its signal
    # handler, where logging is unsafe: "worker: Warm shutdown (MainProcess)").
    lines = [line for line in log.read_text().splitlines() if line.strip() and not line.startswith("worker: ")]
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any(entry["logger"] == "celery.app.trace" for entry in entries)
