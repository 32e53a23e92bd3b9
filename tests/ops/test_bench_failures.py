"""`bench` never hangs on its Celery worker and says plainly what failed: a worker that exits or logs an
error fails the measurement at once with the error's own line; a slow one is projected at its budget."""

import socket
import subprocess
import sys
import time

import pytest

from bench.env import BenchFailure, require_connections
from bench.worker import WorkerProcess, stop_process_group, wait_for_count
from tests.ops.relayctl import ROOT

TOO_MANY = "psycopg.OperationalError: connection failed: FATAL:  sorry, too many clients already"


def fake_worker(tmp_path, script: str) -> WorkerProcess:
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return WorkerProcess(process, log_path)


def test_a_worker_that_exits_fails_at_once_with_its_error_line(tmp_path):
    worker = fake_worker(tmp_path, f"import sys; print('Traceback (most recent call last):'); print({TOO_MANY!r}); "
                                   "sys.exit(1)")
    worker.process.wait(30)  # exited (else the error line alone reads "failed during": the next test's case)
    started = time.monotonic()
    with pytest.raises(BenchFailure) as failure:
        wait_for_count(lambda: 0, 8, 60, worker, "its warm-up runs")
    assert time.monotonic() - started < 10  # not the budget
    message = str(failure.value)
    assert message.startswith("the Celery worker exited with code 1 during its warm-up runs: psycopg.Operational")
    assert "too many clients" in message and "out of connections" in message


def test_a_task_error_fails_at_once_while_the_worker_keeps_running(tmp_path):
    line = ("[2026-12-03 10:00:00,000: ERROR/ForkPoolWorker-1] Task automations.tasks.advance_run[1f2e] "
            "raised unexpected: OperationalError('server closed the connection unexpectedly')")
    worker = fake_worker(tmp_path, f"import time; print({line!r}); time.sleep(120)")
    try:
        with pytest.raises(BenchFailure) as failure:
            wait_for_count(lambda: 0, 100, 60, worker, "100 runs")
        assert str(failure.value) == ("the Celery worker failed during 100 runs: "
                                      "OperationalError('server closed the connection unexpectedly')")
    finally:
        stop_process_group(worker.process)


def test_a_slow_worker_is_measured_until_its_budget_then_left(tmp_path):
    worker = fake_worker(tmp_path, "import time; print('celery@bench ready.'); time.sleep(120)")
    done = iter(range(1_000_000))
    try:
        count, seconds, complete = wait_for_count(lambda: next(done), 1_000_000, 0.5, worker, "runs", interval=0.01)
    finally:
        stop_process_group(worker.process)
    assert not complete and 0 < count < 1_000_000 and 0.5 <= seconds < 5


@pytest.mark.django_db
def test_too_few_free_connections_are_named_before_the_worker_starts():
    with pytest.raises(BenchFailure, match=r"needs 1000000 PostgreSQL connections but only \d+ are free "
                                           r"\(max_connections \d+"):
        require_connections(1_000_000, "a Celery worker with 999998 processes")
    require_connections(1, "one connection")  # there is room for one


def test_bench_with_an_unreachable_database_ends_with_one_plain_line(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/relay",
           "RELAY_VAR_DIR": str(tmp_path / "var"), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--output", str(tmp_path / "out.json")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bench: FAILED during creating and migrating the bench database: OperationalError")
    assert "Connection refused" in last
    assert not (tmp_path / "out.json").exists()
