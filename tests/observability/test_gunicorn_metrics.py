"""Under gunicorn with several workers and PROMETHEUS_MULTIPROC_DIR, /metrics adds up what every worker
counted, and a worker that is replaced leaves its counts behind (folded into the archive), not its files."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.database import database_url

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 10) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


class Healthz:
    """GET /healthz, counting the answers (each is one observation in some worker)."""

    def __init__(self, base: str):
        self.url, self.answered = f"{base}/healthz", 0

    def ok(self) -> bool:
        status, _ = _get(self.url, timeout=30)  # long: a timed-out request would still be counted
        self.answered += 1
        return status == 200


def _healthz_count(base: str) -> float:
    _, text = _get(f"{base}/metrics")
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "relay_http_request_duration_seconds_count"
                    and sample.labels.get("route") == "healthz"):
                total += sample.value
    return total


def _workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def _wait(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_are_summed_and_a_replaced_worker_keeps_its_counts(tmp_path):
    port, metrics_dir = _free_port(), tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if k not in {"RELAY_METRICS_TOKEN", "SENTRY_DSN"}}
    env.update({"DATABASE_URL": database_url(), "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "relay.settings",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "CELERY_BROKER_URL": "memory://",
                "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "0"})
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "relay.wsgi:application", "--config", "python:relay.observability.gunicorn",
         "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    healthz = Healthz(base)
    try:
        _wait(lambda: healthz.ok() and len(_workers(server.pid)) == 2, "gunicorn and its two workers")
        for _ in range(20):
            assert healthz.ok()
        assert _healthz_count(base) == healthz.answered  # whichever worker answered each
        first = _workers(server.pid)

        for pid in first:
            os.kill(pid, signal.SIGTERM)  # the master reaps them (child_exit) and starts new ones
        _wait(lambda: len(_workers(server.pid) - first) == 2 and healthz.ok(), "two new workers")
        assert _healthz_count(base) == healthz.answered  # nothing the old workers counted is lost
        assert not any(f"_{pid}.db" in path.name for pid in first for path in metrics_dir.glob("*.db"))
        assert (metrics_dir / "histogram_archive.db").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
