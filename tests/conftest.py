"""Test-session wiring: every run gets its own database name (the PostgreSQL server may be shared)."""

import os
import secrets

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connection
from rest_framework.test import APIClient

from tests import factories
from tests.fakes.platforms import fake_platforms  # noqa: F401 - the fixture, for every test package


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    from django.conf import settings

    unique = f"test_relay_{os.getpid()}_{secrets.token_hex(4)}"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = unique


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, plus: before it drops the test database, end the connections a test's thread left
    checked out of the pool (else the DROP fails and the database is left on the shared server)."""
    yield
    with django_db_blocker.unblock():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        except Exception:  # noqa: BLE001 - best effort; the drop reports what is left
            pass


@pytest.fixture(scope="session", autouse=True)
def in_memory_celery_broker():
    """Tasks enqueued by tests go to an in-memory broker, never to ./var/queue or a shared Redis. Tests
    that need a worker start one (or point the producer at their own broker) themselves."""
    from relay.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options")}
    app.conf.update(broker_url="memory://", broker_transport_options={})
    app._after_fork()  # drop pools made for the configured broker
    yield
    app.conf.update(saved)
    app._after_fork()


@pytest.fixture
def org(db):
    return factories.organization()


@pytest.fixture
def api_key(org):
    _, raw = factories.api_key(org)
    return raw


@pytest.fixture
def api(api_key):
    """An APIClient authenticated as `org`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def other_org(db):
    return factories.organization()


@pytest.fixture
def other_api(other_org):
    _, raw = factories.api_key(other_org)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def account(org):
    return factories.social_account(org)


@pytest.fixture
def contact(org, account):
    return factories.contact(org, account=account)


@pytest.fixture
def eager_celery():
    """Run Celery tasks inline (with django_capture_on_commit_callbacks(execute=True) this executes runs
    enqueued on commit inside a normal, rolled-back test)."""
    from relay.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


def _close_worker_connection(**kwargs):
    connection.close()  # runs in the worker thread: its DB connection must not outlive the test database


@pytest.fixture
def worker():
    """A real Celery worker (solo pool, in a thread) on an in-memory broker."""
    from relay.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options", "task_always_eager")}
    app.conf.update(broker_url="memory://", broker_transport_options={}, task_always_eager=False)
    app._after_fork()  # drop connection pools made for the previous broker (what a forked worker does)
    task_postrun.connect(_close_worker_connection)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10) as w:
            yield w
    finally:
        task_postrun.disconnect(_close_worker_connection)
        app.conf.update(saved)
        app._after_fork()
