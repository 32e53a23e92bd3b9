"""(f) Inbound over real HTTP: the Procfile's server (gunicorn, 2 sync workers) and a real Celery worker,
`clients` concurrent clients on loopback, each phase bounded by `seconds`:

1. the ceiling — `POST /bench/ceiling` (bench/http_ceiling.py: authenticate the key, insert one row) as
   fast as the clients can (closed loop: each client sends its next request when the last one answered);
2. inbound — `POST /v1/inbound-events` the same way (keyword → 3-node graph, a new contact per event);
3. inbound at half the ceiling's rate — requests sent on a fixed schedule (open loop), each latency
   counted from the moment its request was due, so a server that falls behind shows it in p99;
4. the same at half of what (2) reached: the latency at a load the inbound path can carry.

Each phase also reports the CPU it cost per request, per process group (`_CpuMeter`).

Every response is checked (202, `enrolled`), and afterwards every run the server enrolled must complete
through the worker."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

from django.db import connection

from automations.models import AutomationRun, RunStatus
from bench.data import World, inbound_graph
from bench.env import BenchFailure, Broker, require_connections
from bench.http_ceiling import CEILING_TABLE, CREATE_SQL
from bench.worker import ROOT, celery_worker, stop_process_group, wait_for_count
from relay.database import database_url

HOST = "127.0.0.1"
WEB_WORKERS = 2  # the Procfile's web process on a 2-core machine (WEB_CONCURRENCY)


def inbound_http(world: World, broker: Broker, seconds: float, clients: int, worker_concurrency: int = 2) -> dict:
    from automations.graph import entrypoints as entrypoint_service
    from automations.models import Entrypoint

    automation = world.automation("Inbound over HTTP", inbound_graph())
    entrypoint_service.apply(Entrypoint(organization=world.org, automation=automation, channel="instagram",
                                        kind="dm_received", config={"keywords": ["bench"]}), create=True)
    with connection.cursor() as cursor:
        cursor.execute(CREATE_SQL)
    events = _EventBodies(world)
    require_connections(worker_concurrency + WEB_WORKERS + 2, "gunicorn and a Celery worker")
    with celery_worker(broker, worker_concurrency) as worker, gunicorn(broker) as (port, server_logs, web):
        load = _Load(port, world.api_key)
        for _ in range(4 * WEB_WORKERS):  # warm-up: each server process's imports, connection, prepared plans
            load.send("/bench/ceiling", {"warm": True})
            load.send("/v1/inbound-events", events.next())
        cpu = _CpuMeter(web, f"--hostname=bench-{os.getpid()}@")
        ceiling_body = {"event_id": "ceiling", "text": "bench"}
        ceiling = cpu.during(lambda: load.closed_loop("/bench/ceiling", lambda: ceiling_body, clients, seconds))
        inbound = cpu.during(lambda: load.closed_loop("/v1/inbound-events", events.next, clients, seconds))
        half_rate = ceiling["per_s"] / 2
        at_half = cpu.during(lambda: load.open_loop("/v1/inbound-events", events.next, clients, seconds, half_rate))
        own_half = inbound["per_s"] / 2  # for the latency at a load the inbound path itself can carry
        at_own_half = cpu.during(lambda: load.open_loop("/v1/inbound-events", events.next, clients, seconds, own_half))
        run_ids = inbound.pop("run_ids") + at_half.pop("run_ids") + at_own_half.pop("run_ids")
        ceiling.pop("run_ids")
        finished = AutomationRun.objects.filter(pk__in=run_ids).exclude(status=RunStatus.ACTIVE)
        wait_for_count(finished.count, len(run_ids), max(60.0, len(run_ids) / 20), worker,
                       f"{len(run_ids)} inbound runs through the worker")
        errors = ceiling["errors"] + inbound["errors"] + at_half["errors"] + at_own_half["errors"]
        if errors:
            raise BenchFailure(f"inbound over HTTP: {errors} failed requests, e.g. {load.first_error}",
                               log=server_logs())
    completed = AutomationRun.objects.filter(pk__in=run_ids, status=RunStatus.COMPLETED).count()
    if completed != len(run_ids):
        raise BenchFailure(f"inbound over HTTP: {completed} of {len(run_ids)} runs completed")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {CEILING_TABLE} WHERE payload->>'event_id' = 'ceiling'")
        if cursor.fetchone()[0] != ceiling["requests"]:
            raise BenchFailure("inbound over HTTP: the ceiling endpoint did not insert a row per request")
    return {"clients": clients, "seconds_per_phase": seconds, "web_workers": WEB_WORKERS,
            "worker_concurrency": worker_concurrency, "ceiling": ceiling, "inbound": inbound,
            "inbound_at_half_ceiling": {**at_half, "offered_per_s": round(half_rate, 1)},
            "inbound_at_half_its_own": {**at_own_half, "offered_per_s": round(own_half, 1)},
            "ratio": round(inbound["per_s"] / ceiling["per_s"], 3) if ceiling["per_s"] else 0.0}


class _EventBodies:
    """`POST /v1/inbound-events` bodies: the keyword, a new contact each (thread-safe counter)."""

    def __init__(self, world: World):
        self.account_id = world.account.pk
        self.lock = threading.Lock()
        self.count = 0

    def next(self) -> dict:
        with self.lock:
            self.count += 1
            i = self.count
        return {"event_id": f"http-{i}", "social_account_id": self.account_id, "kind": "dm_received",
                "contact": {"platform_user_id": f"http-user-{i}", "name": f"User {i}"}, "text": "bench"}


class _CpuMeter:
    """CPU seconds per request spent by the web server, the Celery worker, the PostgreSQL backends serving
    the bench database, this process (the clients) and everything else on the machine (Redis, PostgreSQL's
    own background work — and, on a shared machine, other people's work) while a phase ran: where the time
    of a request goes when the cores are the limit."""

    def __init__(self, web_pgid: int, worker_marker: str):
        self.web_pgid = web_pgid
        self.worker_pgid = next((pid for pid, cmdline in _processes() if worker_marker in cmdline), None)

    def _sample(self) -> dict:
        groups = {"web": 0.0, "worker": 0.0}
        for pid, _ in _processes():
            pgid, seconds = _process_cpu(pid)
            if pgid == self.web_pgid:
                groups["web"] += seconds
            elif pgid == self.worker_pgid:
                groups["worker"] += seconds
        with connection.cursor() as cursor:  # the bench database's backends (the server runs on this machine)
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            groups["backends"] = {row[0]: _process_cpu(row[0])[1] for row in cursor.fetchall()}
        groups["clients"] = time.process_time()
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        groups["machine"] = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait
        return groups

    def during(self, phase) -> dict:
        before = self._sample()
        result = phase()
        after = self._sample()
        before_backends, after_backends = before.pop("backends"), after.pop("backends")
        used = {name: after[name] - before[name] for name in before}
        # A backend that closed during the phase takes its CPU time with it (counted under "rest").
        used["postgres"] = sum(seconds - before_backends.get(pid, 0.0) for pid, seconds in after_backends.items())
        used["rest"] = used.pop("machine") - used["web"] - used["worker"] - used["postgres"] - used["clients"]
        used = {name: used[name] for name in ("web", "worker", "postgres", "clients", "rest")}
        requests = max(result["requests"], 1)
        result["cpu_ms_per_request"] = {name: round(value * 1000 / requests, 2) for name, value in used.items()}
        result["cpu_busy"] = round(sum(used.values()) / result["seconds"] / (os.cpu_count() or 1), 2)
        return result


def _processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    yield int(entry), cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue


def _process_cpu(pid: int) -> tuple[int, float]:
    """(process group, user + system CPU seconds) of a process; (0, 0) once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0.0
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _summary(latencies: list[float], elapsed: float, errors: int, run_ids: list[str]) -> dict:
    ms = [value * 1000 for value in latencies]
    return {"requests": len(ms), "errors": errors, "seconds": round(elapsed, 2),
            "per_s": round(len(ms) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(percentile(ms, 0.50), 1), "p95_ms": round(percentile(ms, 0.95), 1),
            "p99_ms": round(percentile(ms, 0.99), 1), "max_ms": round(max(ms, default=0.0), 1), "run_ids": run_ids}


class _Load:
    """Loopback HTTP clients in threads (stdlib http.client; gunicorn's sync workers close every connection)."""

    def __init__(self, port: int, api_key: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.first_error = ""

    def send(self, path: str, body: dict) -> tuple[bool, str | None]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request("POST", path, json.dumps(body), self.headers)
            response = conn.getresponse()
            content = response.read()
        except OSError as exc:
            self.first_error = self.first_error or f"{path}: {exc!r}"
            return False, None
        finally:
            conn.close()
        data = json.loads(content) if content[:1] == b"{" else {}
        ok = response.status == 202 and (path == "/bench/ceiling" or data.get("outcome") == "enrolled")
        if not ok:
            self.first_error = self.first_error or f"{path}: {response.status} {content[:300]!r}"
        return ok, data.get("run_id")

    def closed_loop(self, path: str, body, clients: int, seconds: float) -> dict:
        def client(record):
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                ok, run_id = self.send(path, body())
                record(ok, time.perf_counter() - started, run_id)

        return self._run(client, clients)

    def open_loop(self, path: str, body, clients: int, seconds: float, rate: float) -> dict:
        """Request k is due at start + k/rate; client i sends requests i, i+clients, …; latency from due time."""
        total = max(1, int(rate * seconds))
        start = time.perf_counter() + 0.05

        def client(record, index):
            for k in range(index, total, clients):
                due = start + k / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                ok, run_id = self.send(path, body())
                record(ok, time.perf_counter() - due, run_id)

        return self._run(client, clients, indexed=True)

    def _run(self, client, clients: int, indexed: bool = False) -> dict:
        lock = threading.Lock()
        latencies, run_ids, errors = [], [], [0]

        def record(ok, latency, run_id):
            with lock:
                if ok:
                    latencies.append(latency)
                    if run_id:
                        run_ids.append(run_id)
                else:
                    errors[0] += 1

        threads = [threading.Thread(target=client, args=(record, i) if indexed else (record,), daemon=True)
                   for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        return _summary(latencies, time.perf_counter() - started, errors[0], run_ids)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(broker: Broker):
    """`gunicorn relay.wsgi:application` as the Procfile runs it (its config, WEB_CONCURRENCY=2 on two cores,
    the settings' own database connection handling), on a free loopback port, against the bench database;
    its tasks go to the bench queue. Always stopped (TERM, then KILL)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "CELERY_TASK_ALWAYS_EAGER"}
    env.update({"DATABASE_URL": database_url(), "RELAY_VAR_DIR": str(broker.var_dir),
                "RELAY_BENCH_ENDPOINTS": "1", "CELERY_TASK_DEFAULT_QUEUE": broker.queue, "DEBUG": "0",
                "DJANGO_SETTINGS_MODULE": "relay.settings", "PYTHONUNBUFFERED": "1"})
    if broker.url:
        env["CELERY_BROKER_URL"] = broker.url
    log_path = broker.var_dir / "gunicorn.log"
    argv = [sys.executable, "-m", "gunicorn", "relay.wsgi:application", "--config",
            "python:relay.observability.gunicorn", "--bind", f"{HOST}:{port}", "--workers", str(WEB_WORKERS),
            "--log-level", "warning", "--backlog", "256"]
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)

    def logs() -> str:
        return log_path.read_text()[-3000:]

    def answers() -> bool:
        if process.poll() is not None:
            raise BenchFailure(f"gunicorn exited with code {process.returncode}", log=logs())
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    try:
        deadline = time.monotonic() + 60
        while not answers():
            if time.monotonic() > deadline:
                raise BenchFailure("gunicorn did not answer /healthz within 60 s", log=logs())
            time.sleep(0.2)
        yield port, logs, process.pid
    finally:
        stop_process_group(process)
