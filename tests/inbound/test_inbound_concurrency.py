"""Ten deliveries of one event_id at the same moment: processed exactly once."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from automations.models import AutomationRun, InboundEvent
from contacts.models import Contact, Message
from tests import factories
from tests.inbound.helpers import event, make_entrypoint, reply_flow


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_deliveries_of_one_event_are_processed_once(eager_celery):
    org = factories.organization()
    _, raw = factories.api_key(org)
    account = factories.social_account(org)
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    body = event(account, "hi", event_id="same-event")
    barrier = threading.Barrier(10)
    outcomes, errors = [], []

    def deliver():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        try:
            barrier.wait(timeout=10)
            response = client.post("/v1/inbound-events", body, format="json")
            outcomes.append(response.json()["outcome"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(outcomes) == ["duplicate"] * 9 + ["enrolled"]
    assert InboundEvent.objects.count() == 1
    assert Contact.objects.count() == 1
    assert Message.objects.filter(direction="inbound").count() == 1
    assert AutomationRun.objects.count() == 1
