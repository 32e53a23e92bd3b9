"""X-Request-ID: accepted when plausible, generated otherwise, answered, and carried into the Celery tasks a
request enqueues, so the worker's log lines for that task carry it too."""

import logging
import time

import pytest

from automations.models import AutomationRun
from relay.observability import logs
from tests import factories


def test_a_plausible_request_id_is_kept_and_answered(client, db):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.DEF:456")
    assert response["X-Request-ID"] == "abc-123.DEF:456"


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "<script>", "a\u00e9b"])
def test_an_implausible_request_id_is_replaced(client, db, given):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)
    answered = response["X-Request-ID"]
    assert answered != given and len(answered) == 32 and logs.valid_request_id(answered) == answered


def test_without_a_request_id_each_request_gets_its_own(client, db):
    first, second = client.get("/healthz")["X-Request-ID"], client.get("/healthz")["X-Request-ID"]
    assert first != second and len(first) == 32


def test_log_lines_of_an_api_request_carry_request_and_organization_ids(api, org, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    api.get("/v1/automations/auto_doesnotexist", HTTP_X_REQUEST_ID="req-404-check")
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records, "Django logs a 404 under django.request"
    assert records[-1].request_id == "req-404-check"
    assert records[-1].organization_id == org.pk
    assert logs.REQUEST_ID.get() is None and logs.ORGANIZATION_ID.get() is None  # reset after the request


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_the_request_id_reaches_the_worker_running_the_task_the_request_enqueued(worker, api, org, contact, account):
    factories.conversation(contact, account)
    nodes = [("greet", "message", {"blocks": [{"type": "text", "text": "Hi"}]}), ("bye", "end", {"reason": "done"})]
    automation = factories.automation(org, factories.flow(nodes, [("greet", "next", "bye")]), status="active")
    trace_logger = logging.getLogger("celery.app.trace")  # "Task … succeeded", logged in the worker thread
    collect, saved_level = Collect(), trace_logger.level
    trace_logger.addHandler(collect)
    trace_logger.setLevel(logging.INFO)
    try:
        response = api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": contact.pk}, format="json",
                            HTTP_X_REQUEST_ID="req-enroll-42")
        assert response.status_code == 201 and response["X-Request-ID"] == "req-enroll-42"
        run_id = response.json()["id"]
        mine = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not mine:
            # The in-memory broker may still hold other tests' messages: look for this request's line.
            mine = [r for r in collect.records if "automations.advance_run" in r.getMessage()
                    and getattr(r, "request_id", None) == "req-enroll-42"]
            time.sleep(0.05)
    finally:
        trace_logger.removeHandler(collect)
        trace_logger.setLevel(saved_level)
    assert mine, [(r.getMessage(), getattr(r, "request_id", None)) for r in collect.records]
    assert AutomationRun.objects.get(pk=run_id).status == "completed"
    assert logs.REQUEST_ID.get() is None
