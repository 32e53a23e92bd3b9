"""The `relay_` Prometheus metrics, the registry a scrape reads, and the multiprocess files behind them.

Counters and histograms are incremented from data the code already holds (no query of their own: the
runner's hot path stays as it is). What only the database knows — the due-job backlog by kind and the
last tick — is read when /metrics is scraped (`DatabaseCollector`).

Several processes (gunicorn workers, Celery prefork children, beat) each count their own work. With
PROMETHEUS_MULTIPROC_DIR set (before this module is first imported: prometheus_client decides then),
every process writes its values to files in that directory and a scrape sums them all, so /metrics on
the web process also shows what the workers did — on one host, where they share the directory. A
process that exits leaves its files behind; `compact` folds the files of processes no longer running
into one archive file per type (counter totals kept, never reset) and deletes them; it runs when gunicorn
reaps a worker, when a Celery child exits and when either starts. Without the variable everything stays
in the process (runserver, tests).

This module imports no Django, so a process can count before settings are loaded.
"""

from __future__ import annotations

import fcntl
import glob
import os
import time
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
if os.environ.get(MULTIPROC_ENV):
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)  # unlabelled metrics open their file right below

# --------------------------------------------------------------------------------------------- runs
RUNS_STARTED = Counter("relay_runs_started_total", "Runs enrolled, by the status they started in.", ["status"])
RUNS_FINISHED = Counter("relay_runs_finished_total", "Runs that ended, by final status and exit reason.",
                        ["status", "exit_reason"])
STEPS = Counter("relay_steps_total", "Step rows written, by node kind and outcome.", ["node_kind", "outcome"])

# ---------------------------------------------------------------------------------------- scheduler
SCHEDULER_LAG = Histogram("relay_scheduler_lag_seconds", "From a job's due time to the tick that claimed it.",
                          ["kind"], buckets=(0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600))
TICK_DURATION = Histogram("relay_scheduler_tick_duration_seconds", "Wall time of one scheduler tick.",
                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
SCHEDULER_JOBS = Counter("relay_scheduler_jobs_total", "Claimed jobs by what processing them came to.",
                         ["outcome"])

# ------------------------------------------------------------------------------------ in and out
INBOUND_EVENTS = Counter("relay_inbound_events_total", "Inbound events by outcome (error: processing raised).",
                         ["outcome"])
OUTBOUND_MESSAGES = Counter("relay_outbound_messages_total",
                            "Outbound message delivery attempts by provider and result.", ["provider", "result"])
HTTP_REQUEST_DURATION = Histogram("relay_http_request_duration_seconds", "HTTP request latency.",
                                  ["method", "route", "status"],
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def _children(metric):
    """A cache of labelled children: `labels()` takes a lock and builds a key on every call."""
    cache = {}

    def child(*labels):
        found = cache.get(labels)
        if found is None:
            found = cache[labels] = metric.labels(*labels)
        return found

    return child


step = _children(STEPS)
run_started = _children(RUNS_STARTED)
run_finished = _children(RUNS_FINISHED)
inbound_event = _children(INBOUND_EVENTS)
outbound_message = _children(OUTBOUND_MESSAGES)


def count_steps(rows, kind_index: int, outcome_index: int) -> None:
    """Count written step rows (tuples) by their node kind and outcome columns."""
    for row in rows:
        step(row[kind_index], row[outcome_index] or "").inc()


# ------------------------------------------------------------------------------------------- scrape

def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def scrape(extra_collectors=()) -> bytes:
    """The text exposition of every metric: all processes' files when multiprocess, else this process."""
    directory = multiprocess_dir()
    registry = CollectorRegistry(auto_describe=True)
    for collector in extra_collectors:
        registry.register(collector)
    if directory is None:
        from prometheus_client import REGISTRY

        return generate_latest(REGISTRY) + generate_latest(registry)
    MultiProcessCollector(registry, path=directory)
    with _files_lock(directory, exclusive=False):  # a compaction never runs while the files are read
        return generate_latest(registry)


class DatabaseCollector:
    """Gauges read from the database at scrape time: due pending jobs by kind, the last tick's time.
    `read` returns ({job kind: count}, last tick time or None); it is injected to keep this module free
    of Django."""

    def __init__(self, read):
        self.read = read

    def collect(self):
        try:
            backlog, last_tick = self.read()
        except Exception:  # noqa: BLE001 - the other metrics are still worth scraping
            yield GaugeMetricFamily("relay_metrics_database_up", "Whether the scrape could read the database.",
                                    value=0)
            return
        yield GaugeMetricFamily("relay_metrics_database_up", "Whether the scrape could read the database.",
                                value=1)
        gauge = GaugeMetricFamily("relay_scheduler_backlog_jobs", "Pending jobs already due, by job kind.",
                                  labels=["kind"])
        for kind, count in sorted(backlog.items()):
            gauge.add_metric([kind], count)
        yield gauge
        if last_tick is not None:
            yield GaugeMetricFamily("relay_scheduler_last_tick_timestamp_seconds",
                                    "When the scheduler last finished a tick (Unix time).",
                                    value=last_tick.timestamp())

    def describe(self):
        return []


# --------------------------------------------------------------------------------- process files

@contextmanager
def _files_lock(directory: str, *, exclusive: bool):
    with open(os.path.join(directory, ".compaction.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_of(path: str) -> int | None:
    stem = os.path.basename(path)[:-len(".db")]
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


ARCHIVED_TYPES = ("counter", "histogram")


def compact(directory: str | None = None, dead_pids=None) -> int:
    """Fold the files of processes that are gone (`dead_pids`, else every pid not running on this host)
    into `<type>_archive.db` and delete them; return how many files went. Counters and histogram
    buckets are sums, so the scraped totals do not move; live-gauge files of the dead are dropped
    (prometheus_client's mark_process_dead)."""
    directory = directory or multiprocess_dir()
    if not directory or not os.path.isdir(directory):
        return 0
    removed = 0
    with _files_lock(directory, exclusive=True):
        for path in sorted(glob.glob(os.path.join(directory, "*.db"))):
            pid = _pid_of(path)
            if pid is None:
                continue
            if dead_pids is not None and pid not in dead_pids:
                continue
            if dead_pids is None and (pid == os.getpid() or _running(pid)):
                continue
            typ = os.path.basename(path).split("_", 1)[0]
            if typ in ARCHIVED_TYPES:
                _fold_into_archive(directory, typ, path)
            if typ in ARCHIVED_TYPES or typ == "gauge":
                os.remove(path)
                removed += 1
        for pid in dead_pids or ():
            mark_process_dead(pid, directory)
    return removed


def _fold_into_archive(directory: str, typ: str, path: str) -> None:
    archive = MmapedDict(os.path.join(directory, f"{typ}_archive.db"))
    try:
        now = time.time()
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(path):
            current, _ = archive.read_value(key)
            archive.write_value(key, current + value, now)
    finally:
        archive.close()


def prepare_directory() -> None:
    """At a server's start (gunicorn master, Celery main process): create the directory and fold in the
    files of processes of earlier runs."""
    directory = multiprocess_dir()
    if directory:
        os.makedirs(directory, exist_ok=True)
        compact(directory)
