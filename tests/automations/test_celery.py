"""The Celery path for real: an enrollment commits, `advance_run` goes through a broker, a worker runs it."""

import time

import pytest

from automations.models import AutomationRun
from contacts.models import Message
from tests import factories


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
