"""Shared pieces of the reliability tests: bounded polling, raw connections for the "other side" of a
race, and a real Celery worker subprocess against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from relay.database import database_url

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition, describe: str, timeout: float = 30.0, logs=None, interval: float = 0.02):
    """Poll `condition` until it returns something truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {describe}" + (f"\n{logs()}" if logs else ""))


def raw_connection(autocommit: bool = True) -> psycopg.Connection:
    """A psycopg connection to the test database that Django knows nothing about."""
    return psycopg.connect(database_url(), autocommit=autocommit)


def backend_pid() -> int:
    """The PostgreSQL backend serving Django's connection in this thread."""
    connection.ensure_connection()
    return connection.connection.info.backend_pid


@contextmanager
def private_broker(var_dir: Path):
    """This process's Celery producer sends to a filesystem broker in `var_dir` (what the worker reads)."""
    from relay.celery import app
    from relay.embedded import filesystem_broker_options

    saved = (app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager)

    def reset_pools():
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = "filesystem://"
    app.conf.broker_transport_options = filesystem_broker_options(var_dir)
    app.conf.task_always_eager = False
    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager = saved
        reset_pools()


class Worker:
    """`celery -A relay worker --pool=solo` on the filesystem broker in `var_dir`, in its own process group."""

    def __init__(self, var_dir: Path, **extra_env):
        env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"}}
        env.update({"DATABASE_URL": database_url(), "RELAY_VAR_DIR": str(var_dir), "DEBUG": "1",
                    "PYTHONUNBUFFERED": "1", "CONN_MAX_AGE": "0", "DJANGO_SETTINGS_MODULE": "relay.settings",
                    **extra_env})
        self.log = var_dir / "worker.log"
        argv = [sys.executable, "-m", "celery", "-A", "relay", "worker", "--pool=solo", "--loglevel=INFO",
                "--without-heartbeat", "--without-gossip", "--without-mingle",
                f"--hostname=reliability-{os.getpid()}@%h"]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def logs(self) -> str:
        return f"--- worker log ---\n{self.log.read_text()[-4000:]}"

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no ack, no goodbye to the database."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebServer:
    """The web process on 127.0.0.1 against the test database, in its own process group: `argv` gets
    `{port}` filled in (gunicorn as the Procfile runs it, or runserver as `relayctl up` does)."""

    def __init__(self, argv: list[str], var_dir: Path, **extra_env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"}}
        env.update({"DATABASE_URL": database_url(), "RELAY_VAR_DIR": str(var_dir), "DEBUG": "1",
                    "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "relay.settings", **extra_env})
        self.log = var_dir / "web.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen([arg.format(port=self.port) for arg in argv], cwd=ROOT, env=env,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._answers, f"the web server on {self.url}", timeout=60, logs=self.logs, interval=0.2)

    def _answers(self) -> bool:
        import urllib.request

        if self.process.poll() is not None:
            pytest.fail(f"the web server exited with {self.process.returncode}\n{self.logs()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def logs(self) -> str:
        return f"--- web log ---\n{self.log.read_text()[-6000:]}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
