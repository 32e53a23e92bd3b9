"""The Celery path for real: an enrollment commits, `advance_run` goes through a broker, a worker runs it."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connection

from automations.models import AutomationRun
from contacts.models import Message
from relay.celery import app
from tests import factories


def _close_worker_connection(**kwargs):
    connection.close()  # runs in the worker thread: its DB connection must not outlive the test database


@pytest.fixture
def worker():
    """A real Celery worker (solo pool, in a thread) on an in-memory broker."""
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


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_enroll_endpoint_runs_through_a_real_worker(worker, api, org, contact, account):
    factories.conversation(contact, account)
    nodes = [("greet", "message", {"blocks": [{"type": "text", "text": "Hi {{contact.name}}"}]}),
             ("bye", "end", {"reason": "greeted"})]
    automation = factories.automation(org, factories.flow(nodes, [("greet", "next", "bye")]), status="active")
    response = api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": contact.pk}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "active"
    run_id = response.json()["id"]
    assert wait_for(lambda: AutomationRun.objects.get(pk=run_id).status == "completed")
    run = AutomationRun.objects.get(pk=run_id)
    assert run.exit_reason == "greeted"
    assert wait_for(lambda: Message.objects.get(run_id=run_id).status == "sent")
    assert Message.objects.get(run_id=run_id).text == f"Hi {contact.name}"
