"""One multi-threaded web process (gunicorn, gthread) under a burst of 200 concurrent inbound events:
every event is answered 202 and the process never holds more PostgreSQL connections than its pool
(RELAY_DB_POOL_SIZE). Without a pool a threaded server kept one connection per concurrent request and
ran PostgreSQL out of them."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from automations.models import InboundEvent
from relay.database import database_url
from tests import factories
from tests.inbound.helpers import make_entrypoint, reply_flow
from tests.reliability.support import ROOT, raw_connection, wait_until

POOL_SIZE = 4
THREADS = 32  # one web process serving many requests at once: far more threads than pooled connections
BURST = 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PeakConnections:
    """Samples, every few milliseconds, how many client backends other than `ignored` use the database."""

    def __init__(self, ignored: set[int]):
        self.ignored, self.peak, self.running = ignored, 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        with raw_connection() as monitor:
            ignored = self.ignored | {monitor.info.backend_pid}
            while self.running:
                pids = {row[0] for row in monitor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend'").fetchall()}
                self.peak = max(self.peak, len(pids - ignored))
                time.sleep(0.005)

    @staticmethod
    def backends() -> set[int]:
        with raw_connection() as monitor:
            return {row[0] for row in monitor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchall()}

    def stop(self) -> int:
        self.running = False
        self.thread.join(timeout=10)
        return self.peak


def post(url: str, key: str, body: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_concurrent_events_is_served_within_the_pool(tmp_path):
    from django.db import connection

    org = factories.organization()
    _, key = factories.api_key(org)
    account = factories.social_account(org)
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    port = free_port()
    connection.ensure_connection()
    ours = PeakConnections.backends()  # this test process's own (pooled) connections
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"}}
    env.update({"DATABASE_URL": database_url(), "RELAY_VAR_DIR": str(tmp_path), "DEBUG": "1",
                "RELAY_DB_POOL_SIZE": str(POOL_SIZE), "RELAY_DB_POOL_TIMEOUT": "60", "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "relay.settings"})
    log = tmp_path / "web.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "relay.wsgi:application", "--bind",
                                   f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "gthread",
                                   "--threads", str(THREADS), "--timeout", "120"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy():
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(healthy, "the web process to answer", timeout=60, logs=lambda: log.read_text()[-3000:])
        peak = PeakConnections(ignored=ours)
        bodies = [{"event_id": f"burst-{n}", "social_account_id": account.pk, "kind": "dm_received",
                   "contact": {"platform_user_id": f"user-{n}"}, "text": "hi"} for n in range(BURST)]
        with ThreadPoolExecutor(max_workers=BURST) as senders:
            statuses = list(senders.map(lambda body: post(f"{base}/v1/inbound-events", key, body), bodies))
        most = peak.stop()
    finally:
        server.terminate()
        server.wait(timeout=20)
        wait_until(lambda: PeakConnections.backends() <= ours, "the web process's connections to close")

    assert statuses.count(202) == BURST, sorted(set(statuses))
    assert 1 <= most <= POOL_SIZE, most
    assert InboundEvent.objects.filter(event_id__startswith="burst-", outcome="enrolled").count() == BURST
