"""Running `./relayctl` the way a person does: a subprocess in the checkout, with its own var folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Settings a test session exports that a person's shell would not have.
SESSION_ONLY = {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "DJANGO_SETTINGS_MODULE", "PORT"}


def relayctl_env(var_dir: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY}
    env.update({"RELAY_VAR_DIR": str(var_dir), **extra})
    return env


def relayctl(*args: str, env: dict, cwd: Path = ROOT, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(cwd / "relayctl"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def embedded_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True
