"""The benchmark's process environment and its own database: everything decided before and around Django.

- Settings are production-like: DEBUG off (Django's debug cursor would time every query), a throwaway
  SECRET_KEY, the test client's host allowed.
- PostgreSQL is chosen like the tests: DATABASE_URL if set (`./relayctl bench` exports it when
  127.0.0.1:5432 answers), else the embedded server. The run creates its own uniquely named database,
  migrates it, and drops it at the end, so a shared server is never touched otherwise.
- The Celery broker for the worker measurement: CELERY_BROKER_URL if set, else Redis on
  127.0.0.1:6379 if it answers (a unique queue name keeps other users' workers away), else the
  filesystem broker in a private temporary folder.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


class BenchFailure(Exception):
    """A measurement could not be made; the message says why in one line, `log` holds what explains it."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


@dataclass
class Broker:
    url: str  # what the worker subprocess gets as CELERY_BROKER_URL ("" = filesystem)
    kind: str  # redis | filesystem | other
    queue: str  # unique per bench run
    var_dir: Path  # private RELAY_VAR_DIR of the worker (filesystem broker folders live here)

    @property
    def label(self) -> str:
        return f"{self.kind} (queue {self.queue})"


def redis_answers(host: str = REDIS_HOST, port: int = REDIS_PORT, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def prepare() -> Broker:
    """Set the environment variables the settings module reads; call before importing Django."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay.settings")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(24))
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["SECURE_SSL_REDIRECT"] = "0"  # the bench's clients speak plain HTTP to a production-like setup
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    # One connection per process, as the figures in the README were measured (and a refused connection
    # reports itself, not as a pool timeout); a deployment's pool is sized by RELAY_DB_POOL_SIZE.
    os.environ.setdefault("RELAY_DB_POOL_SIZE", "0")
    # DEBUG off adds WhiteNoise, which warns that collectstatic never ran: irrelevant to an API benchmark.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    var_dir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    queue = f"bench-{os.getpid()}-{secrets.token_hex(3)}"
    url = os.environ.get("CELERY_BROKER_URL", "").strip()
    if url:
        kind = "redis" if url.startswith("redis") else "other"
    elif redis_answers():
        url, kind = f"redis://{REDIS_HOST}:{REDIS_PORT}/0", "redis"
        os.environ["CELERY_BROKER_URL"] = url
    else:
        kind = "filesystem"
    return Broker(url=url, kind=kind, queue=queue, var_dir=var_dir)


def point_celery_at(broker: Broker) -> None:
    """This process's producer: the chosen broker, the bench queue, tasks really sent (not eager)."""
    from relay.celery import app

    if broker.kind == "filesystem":
        from relay.embedded import filesystem_broker_options

        app.conf.broker_url = "filesystem://"
        app.conf.broker_transport_options = filesystem_broker_options(broker.var_dir)
    app.conf.task_default_queue = broker.queue
    app.conf.task_always_eager = False
    app._pool = None  # kombu pools are keyed by the connection settings read above
    app.amqp._producer_pool = None


def forget_queue(broker: Broker) -> None:
    """Delete what the bench queue left in Redis (the list and kombu's binding set)."""
    if broker.kind != "redis":
        return
    try:
        import redis

        client = redis.Redis.from_url(broker.url, socket_timeout=2)
        client.delete(broker.queue, f"_kombu.binding.{broker.queue}")
    except Exception:  # noqa: BLE001 - cleanup is best effort
        pass


# -------------------------------------------------------------------------------------- database

def create_database() -> tuple[str, str]:
    """Create and migrate a uniquely named database; point Django at it. Returns (original, new) names."""
    from django.conf import settings
    from django.db import connection

    original = settings.DATABASES["default"]["NAME"]
    name = f"bench_relay_{os.getpid()}_{secrets.token_hex(4)}"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return original, name


def drop_database(original: str, name: str) -> None:
    """Drop the bench database (WITH FORCE: a killed worker may leave a connection behind)."""
    from django.conf import settings
    from django.db import connection

    connection.close()
    settings.DATABASES["default"]["NAME"] = original
    connection.settings_dict["NAME"] = original
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_connections(needed: int, what: str) -> None:
    """Fail plainly before starting `what` when PostgreSQL cannot give it `needed` more connections (a shared
    server's max_connections used up by other clients made the worker fail deep inside its tasks)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int, "
                       "current_setting('superuser_reserved_connections')::int, "
                       "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')")
        limit, reserved, used = cursor.fetchone()
    free = limit - reserved - used
    if free < needed:
        raise BenchFailure(f"{what} needs {needed} PostgreSQL connections but only {free} are free "
                           f"(max_connections {limit}, {used} in use by other clients): close some or try again")


def machine() -> dict:
    """Where the figures came from."""
    import platform

    from django.db import connection

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        synchronous_commit = cursor.fetchone()[0]
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "python": platform.python_version(),
            "postgresql": server_version, "synchronous_commit": synchronous_commit,
            "database_host": connection.settings_dict.get("HOST") or "local socket"}
