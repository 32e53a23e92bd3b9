"""The README's tour, run as written (twice) against a live `./relayctl up` on its own database and port."""

import os
import re
import secrets
import signal
import subprocess
import time
import urllib.request

import psycopg
import pytest

from relay.database import database_url
from tests.ops.relayctl import ROOT, relayctl, relayctl_env
from tests.ops.test_relayctl import free_port


def readme_tour() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A short tour", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def server_connection():
    return psycopg.connect(database_url("postgres"), autocommit=True)


@pytest.fixture
def live_up(tmp_path):
    """`./relayctl up` on a fresh database of the tests' server and a free port; stopped with `relayctl down`."""
    name = f"tour_{os.getpid()}_{secrets.token_hex(4)}"
    with server_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    env = relayctl_env(tmp_path / "var", DATABASE_URL=database_url(name), PORT=str(port))
    log = tmp_path / "up.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(ROOT / "relayctl"), "up"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"up exited:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"up did not answer in time:\n{log.read_text()[-4000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    if response.status == 200 and "worker" in log.read_text():
                        break
            except OSError:
                pass
            time.sleep(0.5)
        yield env, port, log
        stopped = relayctl("down", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
        assert "relay: stopped" in log.read_text()
        assert not (tmp_path / "var" / "up.pid").exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        with server_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_readme_tour_runs_twice_against_a_live_up(live_up, tmp_path):
    env, port, log = live_up
    printed = log.read_text()
    assert f"database: {database_url('x').rsplit('/', 1)[0]}" in printed  # says which database it uses
    assert f"Admin        : http://127.0.0.1:{port}/admin/" in printed  # and where, on PORT
    assert f"http://127.0.0.1:{port}/v1" in printed
    script = tmp_path / "tour.sh"
    script.write_text(readme_tour())
    for attempt in (1, 2):
        result = subprocess.run(["bash", "-e", "-o", "pipefail", str(script)], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"run {attempt}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert not re.search(r'"error":\s*\{', result.stdout), f"run {attempt}:\n{result.stdout}"  # no error envelope
        assert "Large is 9 EUR" in result.stdout, f"run {attempt}:\n{result.stdout}"  # the button led on
        assert '"exit_reason":"admin_stopped"' in result.stdout.replace(" ", ""), f"run {attempt}:\n{result.stdout}"
