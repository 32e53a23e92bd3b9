"""A real Celery worker subprocess against the bench database and the bench queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench.env import Broker, database_url

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def celery_worker(broker: Broker, concurrency: int):
    """Start `celery -A relay worker` (prefork, `concurrency` processes) consuming only the bench queue;
    always stopped (TERM, then KILL) on exit. Yields a function returning the worker log's tail."""
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_TASK_ALWAYS_EAGER"}}
    env.update({"DATABASE_URL": database_url(), "RELAY_VAR_DIR": str(broker.var_dir), "PYTHONUNBUFFERED": "1",
                "CONN_MAX_AGE": "600", "DJANGO_SETTINGS_MODULE": "relay.settings"})
    if broker.url:
        env["CELERY_BROKER_URL"] = broker.url
    else:
        env.pop("CELERY_BROKER_URL", None)
    log_path = broker.var_dir / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "relay", "worker", "--pool=prefork",
            f"--concurrency={concurrency}", "-Q", broker.queue, "--loglevel=WARNING", "--without-heartbeat",
            "--without-gossip", "--without-mingle", f"--hostname=bench-{os.getpid()}@%h"]
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield lambda: log_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_for(condition, timeout: float, what: str, logs=None, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    detail = f"\n{logs()}" if logs else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
