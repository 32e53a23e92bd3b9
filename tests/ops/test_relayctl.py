"""relayctl's own behaviour: who stops the embedded PostgreSQL, which Python it accepts, what it says about
the database and the port before starting anything, and how it installs."""

import os
import shutil
import socket
import subprocess
import sys

from relay.embedded import start_postgres, stop_postgres
from tests.ops.relayctl import ROOT, embedded_running, relayctl, relayctl_env


def test_commands_stop_the_embedded_postgres_they_started_and_down_stops_one_left_running(tmp_path):
    var = tmp_path / "var"
    env = relayctl_env(var)
    try:
        result = relayctl("manage", "check", env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (var / "pg" / "PG_VERSION").exists()  # it did start (and initialise) the embedded server
        assert not embedded_running(var / "pg"), "manage left the PostgreSQL it started running"

        start_postgres(var / "pg")  # someone else's server (an `up`, another command): left alone
        result = relayctl("manage", "check", env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert embedded_running(var / "pg")

        result = relayctl("down", env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "stopping the embedded PostgreSQL" in result.stderr
        assert not embedded_running(var / "pg")

        (var / "demo_api_key").write_text("old")
        result = relayctl("reset", "--yes", env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert not var.exists()
    finally:
        stop_postgres(var / "pg")


def test_a_bad_database_url_stops_up_in_one_line(tmp_path):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for url, says in [(f"postgres://relay:secret@127.0.0.1:{port}/relay", "does not answer"),
                      ("mysql://relay@127.0.0.1/relay", "must be a postgres:// URL")]:
        result = relayctl("up", env=relayctl_env(tmp_path / "var", DATABASE_URL=url, PORT=str(free_port())))
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], result.stderr
        assert "secret" not in result.stderr  # the password is not printed
        assert result.stdout == ""  # nothing started, no credentials printed


def test_a_taken_port_stops_up_before_anything_is_printed(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = relayctl("up", env=relayctl_env(tmp_path / "var", PORT=str(port)))
    assert result.returncode == 1
    assert result.stderr.strip() == f"relayctl: port {port} is in use; choose another one, e.g. PORT=8001 ./relayctl up"
    assert result.stdout == ""
    assert not (tmp_path / "var").exists()  # no database was started


def fake_python(bin_dir, name: str, version: str) -> None:
    """A `python` that reports `version` and records being asked to create the venv."""
    script = bin_dir / name
    script.write_text(f"""#!/bin/sh
case "$*" in
  --version) echo "Python {version}.0" ;;
  "-m venv .venv") echo {name} > "$(dirname "$0")/chosen"; exit 3 ;;
  *) echo {version} ;;
esac
""")
    script.chmod(0o755)


def copy_of_relayctl(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("relayctl", "requirements.txt", "requirements-dev.txt", "constraints.txt"):
        shutil.copy2(ROOT / name, checkout / name)
    return checkout


def test_python_3_11_to_3_13_is_accepted_and_others_are_refused_plainly(tmp_path):
    checkout = copy_of_relayctl(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    names = ["python3", "python3.13", "python3.12", "python3.11", "python"]
    for name in names:
        fake_python(bin_dir, name, "3.14" if name == "python3" else "3.10")
    env = relayctl_env(tmp_path / "var", PATH=f"{bin_dir}:/usr/bin:/bin")
    env.pop("PYTHON", None)
    result = relayctl("manage", "check", env=env, cwd=checkout)
    assert result.returncode == 1
    assert "Python 3.11, 3.12 or 3.13 is required" in result.stderr

    fake_python(bin_dir, "python3.13", "3.13")
    result = relayctl("manage", "check", env=env, cwd=checkout)
    assert "creating .venv with Python 3.13.0" in result.stderr
    assert (bin_dir / "chosen").read_text().strip() == "python3.13"


def test_install_shows_progress_and_pins_transitive_versions_from_the_constraints(tmp_path):
    """A tiny requirements pair in a copy: the constraints decide the version of what it pulls in."""
    checkout = copy_of_relayctl(tmp_path)
    (checkout / "requirements.txt").write_text("six\n")  # unpinned: constraints.txt says which
    (checkout / "requirements-dev.txt").write_text("-r requirements.txt\n")
    (checkout / "manage.py").write_text("import six\nprint('six', six.__version__)\n")
    result = relayctl("manage", env=relayctl_env(tmp_path / "var", PYTHON=sys.executable), cwd=checkout, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"six {pinned_version('six')}" in result.stdout
    assert "  collecting six" in result.stderr  # one line per package as pip goes
    assert "requirements installed in" in result.stderr
    pip = subprocess.run([checkout / ".venv/bin/python", "-m", "pip", "--version"], capture_output=True, text=True)
    assert pip.stdout.split()[1] == pinned_version("pip")


def pinned_version(package: str) -> str:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return next(line.split("==")[1] for line in lines if line.startswith(f"{package}=="))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_test_installs_chromium_with_apt_get_when_it_is_missing(tmp_path):
    """`relayctl test` as root installs Debian's chromium for the browser test when it is missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-get.calls"
    apt_get = bin_dir / "apt-get"
    apt_get.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    apt_get.chmod(0o755)
    env = relayctl_env(tmp_path / "var", PATH=f"{bin_dir}:{os.environ['PATH']}",
                       RELAY_CHROMIUM=str(tmp_path / "no-chromium"), DATABASE_URL=os.environ.get("DATABASE_URL", ""))
    relayctl("test", "--collect-only", "-q", "tests/ops/__init__.py", env=env)
    if os.geteuid() == 0:
        assert "install -y -q chromium" in calls.read_text()
    else:
        assert not calls.exists()  # only root may install packages


def test_a_configuration_error_in_manage_is_one_line():
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(DEBUG="0", DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "relay: configuration error: SECRET_KEY must be set when DEBUG is off"
