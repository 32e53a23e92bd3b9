"""/healthz is liveness; /readyz checks the database, the broker, a recent scheduler tick and next month's
step-run partition, and answers 503 naming what fails."""

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from automations.models import SchedulerTick
from automations.partitions import add_months, month_start, partition_name
from automations.runtime.scheduler import tick
from relay.celery import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ticked(db):
    tick(batch=0)


def failing(response) -> list[str]:
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    for name in error["details"]["failing"]:
        assert name in error["message"]
    return error["details"]["failing"]


def test_ready_when_everything_answers(client, ticked):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "scheduler": "ok",
                                                          "partitions": "ok"}}


def test_a_scheduler_that_never_ticked_is_not_ready(client, db):
    response = client.get("/readyz")
    assert failing(response) == ["scheduler"]
    assert "never finished a tick" in response.json()["error"]["details"]["checks"]["scheduler"]


def test_a_scheduler_silent_for_three_intervals_is_not_ready(client, ticked, settings):
    settings.RELAY_SCHEDULER_INTERVAL_SECONDS = 15
    SchedulerTick.objects.update(last_tick_at=timezone.now() - timedelta(seconds=40))
    assert client.get("/readyz").status_code == 200  # under three intervals
    SchedulerTick.objects.update(last_tick_at=timezone.now() - timedelta(seconds=50))
    response = client.get("/readyz")
    assert failing(response) == ["scheduler"]
    assert "3 intervals of 15 s" in response.json()["error"]["details"]["checks"]["scheduler"]


def test_a_missing_partition_for_next_month_is_not_ready(client, ticked):
    name = partition_name(add_months(month_start(timezone.now()), 1))
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{name}"')  # rolled back with the test
    response = client.get("/readyz")
    assert failing(response) == ["partitions"]
    assert name in response.json()["error"]["details"]["checks"]["partitions"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_broker_is_not_ready(client, ticked):
    saved = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{_closed_port()}/0"
    app._after_fork()
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = saved
        app._after_fork()
    assert failing(response) == ["broker"]


def test_an_unreachable_database_is_not_ready_and_says_so_once():
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL"}}
    env.update({"DATABASE_URL": f"postgres://postgres@127.0.0.1:{_closed_port()}/relay?connect_timeout=2",
                "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "relay.settings", "CELERY_BROKER_URL": "memory://",
                "LOG_LEVEL": "CRITICAL"})
    code = ("import django, json; django.setup()\n"
            "from django.test import Client\n"
            "response = Client().get('/readyz')\n"
            "print(response.status_code, json.dumps(response.json()))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    status, _, body = done.stdout.strip().partition(" ")
    error = json.loads(body)["error"]
    assert status == "503" and error["details"]["failing"] == ["database"]
    assert error["details"]["checks"]["broker"] == "ok"
    assert error["details"]["checks"]["scheduler"] == "not checked: the database is unavailable"


def test_healthz_stays_a_liveness_answer(client, db):
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}  # never ticked: still alive
