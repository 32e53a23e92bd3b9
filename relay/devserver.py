"""`./relayctl up`: run web, Celery worker and celery-beat in the foreground; Ctrl-C stops them all.

Each process's output is prefixed with its name. On the embedded default the private PostgreSQL is
stopped too when everything has exited.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

COLOURS = {"web": "\033[36m", "worker": "\033[33m", "beat": "\033[35m"}
RESET = "\033[0m"


def commands(port: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "web": [python, "manage.py", "runserver", f"0.0.0.0:{port}", "--noreload"],
        "worker": [python, "-m", "celery", "-A", "relay", "worker", "--loglevel=INFO", "--concurrency=2"],
        "beat": [python, "-m", "celery", "-A", "relay", "beat", "--loglevel=INFO",
                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
    }


def _pump(name: str, stream) -> None:
    colour = COLOURS.get(name, "") if sys.stdout.isatty() else ""
    reset = RESET if colour else ""
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{colour}{name:>6} |{reset} {line}")
        sys.stdout.flush()


def _fresh_metrics_dir() -> str:
    """The metrics files of web, worker and beat (all started here): emptied at each start."""
    import shutil

    from relay.settings import VAR_DIR

    directory = VAR_DIR / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return str(directory)


def main() -> int:
    from relay.settings import VAR_DIR

    port = os.environ.get("PORT", "8000")
    pid_file = VAR_DIR / "up.pid"  # `relayctl down` stops this process through it
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        env["PROMETHEUS_MULTIPROC_DIR"] = _fresh_metrics_dir()  # /metrics on the web shows the worker's counts
    processes: dict[str, subprocess.Popen] = {}
    for name, argv in commands(port).items():
        processes[name] = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        threading.Thread(target=_pump, args=(name, processes[name].stdout), daemon=True).start()
    print(f"relay: API http://127.0.0.1:{port}/v1  admin http://127.0.0.1:{port}/admin/  (Ctrl-C stops)",
          flush=True)

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"relay: {name} exited with {process.returncode}; stopping the rest", flush=True)
                exit_code = process.returncode or 1
                stopping = True
                break
        time.sleep(0.3)

    for process in processes.values():
        if process.poll() is None:
            process.terminate()  # the leader only: Celery then shuts its pool down warmly itself
    deadline = time.monotonic() + 10
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    if not os.environ.get("DATABASE_URL"):
        from relay.embedded import stop_postgres

        stop_postgres(VAR_DIR / "pg")
    pid_file.unlink(missing_ok=True)
    print("relay: stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay.settings")
    sys.exit(main())
