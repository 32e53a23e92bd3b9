"""A real Celery worker subprocess against the bench database and the bench queue, and bounded waiting on it:
a worker that exits or logs an error fails the measurement at once with the error's own line (e.g.
PostgreSQL's "too many clients"), and no wait lasts longer than its budget."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from bench.env import BenchFailure, Broker
from relay.database import database_url

ROOT = Path(__file__).resolve().parents[1]

# A task that raised ("… raised unexpected: OperationalError(…)"), or the last line of a traceback.
TASK_FAILED = re.compile(r"raised unexpected: (?P<cause>.+)$")
EXCEPTION_LINE = re.compile(r"^(?P<cause>(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)\b.*)$")
OUT_OF_CONNECTIONS = "too many clients"


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def first_error(self) -> str | None:
        """The first error the worker logged, as one line."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            match = TASK_FAILED.search(line) or EXCEPTION_LINE.match(line.strip())
            if match:
                return match.group("cause").strip()
        return None

    def check(self, what: str) -> None:
        """Raise BenchFailure if the worker exited or logged an error while doing `what`."""
        exited = self.process.poll()
        error = self.first_error()
        if exited is None and error is None:
            return
        cause = error or "no error line in its log"
        if OUT_OF_CONNECTIONS in self.log_tail(100_000):
            cause += (" — PostgreSQL is out of connections (max_connections): other clients hold them; "
                      "close some or try again later")
        state = f"exited with code {exited}" if exited is not None else "failed"
        raise BenchFailure(f"the Celery worker {state} during {what}: {cause}", log=self.log_tail())


@contextmanager
def celery_worker(broker: Broker, concurrency: int):
    """Start `celery -A relay worker` (prefork, `concurrency` processes) consuming only the bench queue;
    always stopped (TERM, then KILL) on exit. Yields a WorkerProcess."""
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
        yield WorkerProcess(process, log_path)
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen, grace_s: float = 20) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for_count(count_done: Callable[[], int], total: int, budget_s: float, worker: WorkerProcess, what: str,
                   interval: float = 0.1) -> tuple[int, float, bool]:
    """Poll `count_done()` until it reaches `total` or `budget_s` passes; the worker exiting or logging an
    error raises BenchFailure at once. Returns (done, seconds waited, complete)."""
    started = time.monotonic()
    while True:
        done = count_done()
        elapsed = time.monotonic() - started
        if done >= total:
            return done, elapsed, True
        worker.check(what)
        if elapsed >= budget_s:
            return done, elapsed, False
        time.sleep(interval)
