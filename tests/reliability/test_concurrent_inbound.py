"""Fifty inbound events for one contact and one keyword, delivered at the same moment (distinct event
ids, one thread and one database connection each): exactly one run starts; every other event is
answered `reentry_blocked` (or `duplicate`) and starts nothing."""

import pytest
from rest_framework.test import APIClient

from automations.models import AutomationRun, InboundEvent, RunStatus
from contacts.models import Contact, Message
from tests import factories
from tests.helpers import race
from tests.inbound.helpers import event, make_entrypoint, reply_flow

EVENTS = 50


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_keyword_events_for_one_contact_start_exactly_one_run(eager_celery):
    org = factories.organization()
    _, raw = factories.api_key(org)
    account = factories.social_account(org)
    automation = reply_flow(org, text="Welcome!")
    make_entrypoint(automation, config={"keywords": ["start"]})
    bodies = [event(account, "start", user="psid-racer", event_id=f"race-{i}") for i in range(EVENTS)]

    def deliver(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = client.post("/v1/inbound-events", bodies[i], format="json")
        return response.status_code, response.json().get("outcome")

    outcomes = race(EVENTS, deliver)

    assert all(status == 202 for status, _ in outcomes), outcomes
    assert len(outcomes) == EVENTS
    results = [outcome for _, outcome in outcomes]
    assert results.count("enrolled") == 1, results
    assert set(results) <= {"enrolled", "reentry_blocked", "duplicate"}, results

    real_runs = AutomationRun.objects.exclude(status=RunStatus.EXITED, exit_reason="reentry_cooldown")
    assert real_runs.count() == 1
    run = real_runs.get()
    assert (run.status, run.exit_reason) == ("completed", "completed")  # eager Celery ran it to the end
    assert Contact.objects.count() == 1
    assert Message.objects.filter(direction="outbound", text="Welcome!").count() == 1
    assert Message.objects.filter(direction="inbound").count() == EVENTS
    assert InboundEvent.objects.count() == EVENTS
    assert InboundEvent.objects.filter(outcome="enrolled").get().run_id == run.pk
