"""PostgreSQL out of reach — before, during and after an event is recorded: the API answers 503
service_unavailable with Retry-After (never a 500), recording an event is all or nothing, and the
sender's retry of the same event completes it exactly once."""

import socket
import threading
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection

from automations.models import AutomationRun, InboundEvent
from automations.runtime import inbound
from automations.store import inbound as inbound_store
from contacts.models import Contact, Message
from relay.database import database_url
from tests.inbound.helpers import event, make_entrypoint, reply_flow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


class PostgresProxy:
    """A TCP proxy in front of the test database: `down()` closes every connection through it and
    refuses new ones (the server is gone), `up()` serves again on the same port."""

    def __init__(self, target_host, target_port):
        self.target = (target_host or "127.0.0.1", int(target_port or 5432))
        self.port = None
        self.listener = None
        self.sockets = []
        self.lock = threading.Lock()
        self.serving = False
        self.up()

    def up(self):
        close_old_connections()  # drop the connection the outage broke, as Django does between requests
        if getattr(connection, "pool", None):
            connection.close_pool()  # rather than wait for the pool's reconnection backoff (1 s, 2 s, 4 s…)
        self.listener = socket.create_server(("127.0.0.1", self.port or 0))
        self.port = self.listener.getsockname()[1]
        self.serving = True
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self):
        with self.lock:
            self.serving = False
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(): closing alone would not
            except OSError:
                pass
            self.listener.close()
            for sock in self.sockets:
                self._close(sock)
            self.sockets = []

    def terminate(self, backend_pid):
        """End a backend from the server side (as a restarting server does), bypassing the proxy."""
        with psycopg.connect(database_url(), host=self.target[0], port=self.target[1], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    @staticmethod
    def _close(sock):
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv() and tells the other end at once
        except OSError:
            pass
        sock.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                return
            with self.lock:
                if not self.serving or listener is not self.listener:  # accepted just as it went down
                    self._close(client)
                    self._close(server)
                    return
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass


@pytest.fixture
def proxy():
    """The default connection goes through a PostgresProxy for the test."""
    saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT", "OPTIONS")}
    running = PostgresProxy(saved["HOST"], saved["PORT"])
    connection.close()
    connection.close_pool()  # a pool keeps the address it was made with
    options = dict(saved["OPTIONS"])
    if options.get("pool"):  # wait 1 s (not the default 10) for a connection before answering 503
        options["pool"] = {**options["pool"], "timeout": 1}
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(running.port), OPTIONS=options)
    yield running
    connection.close()
    connection.close_pool()
    running.down()
    connection.settings_dict.update(saved)
    # The proxied backends end when PostgreSQL notices their sockets closed; the database is dropped next.
    with connection.cursor() as cursor:
        for _ in range(100):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()")
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)


@contextmanager
def outage(proxy):
    proxy.down()
    try:
        yield
    finally:
        proxy.up()


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    assert int(response["Retry-After"]) > 0


@pytest.fixture
def setup(proxy, api, org, account):
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    return api, account


def post(api, body):
    close_old_connections()  # what Django does at every request start (the test client turns it off)
    return api.post("/v1/inbound-events", body, format="json")


def assert_recorded_once(event_id):
    row = InboundEvent.objects.get(event_id=event_id)
    assert row.outcome == "enrolled"
    assert Message.objects.filter(direction="inbound", payload__event_id=event_id).count() == 1
    assert AutomationRun.objects.filter(pk=row.run_id, status="completed").exists()


def test_requests_while_the_database_is_down_get_503_and_write_nothing(setup, proxy):
    api, account = setup
    body = event(account, "hi", event_id="during-outage")
    with outage(proxy):
        for _ in range(3):  # the broken connection, then refused reconnects
            assert_unavailable(post(api, body))
            close_old_connections()
            assert_unavailable(api.get("/v1/contacts"))
    assert not InboundEvent.objects.exists() and not Message.objects.exists() and not Contact.objects.exists()
    assert post(api, body).json()["outcome"] == "enrolled"
    assert_recorded_once("during-outage")


def test_an_outage_in_the_middle_of_recording_leaves_nothing(setup, proxy, monkeypatch):
    api, account = setup
    real_record = inbound._record

    def record_then_lose_the_server(*args, **kwargs):
        real_record(*args, **kwargs)  # every row written, not committed yet
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(inbound, "_record", record_then_lose_the_server)
    body = event(account, "hi", event_id="mid-record")
    assert_unavailable(post(api, body))
    assert not InboundEvent.objects.exists() and not Message.objects.exists() and not Contact.objects.exists()
    monkeypatch.setattr(inbound, "_record", real_record)
    assert post(api, body).json()["outcome"] == "enrolled"
    assert_recorded_once("mid-record")


def test_an_outage_after_recording_is_completed_by_the_retry(setup, proxy, monkeypatch):
    api, account = setup
    real_situation = inbound_store.situation
    calls = []

    def lose_the_server_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            proxy.down()
            proxy.terminate(connection.connection.info.backend_pid)  # the server side goes away for sure
        return real_situation(*args, **kwargs)

    monkeypatch.setattr(inbound_store, "situation", lose_the_server_once)
    body = event(account, "hi", event_id="after-record")
    assert_unavailable(post(api, body))
    proxy.up()
    assert not AutomationRun.objects.exists()
    retry = post(api, body)
    assert retry.status_code == 202 and retry.json()["outcome"] == "enrolled"
    assert_recorded_once("after-record")
    assert post(api, body).json()["outcome"] == "duplicate"
