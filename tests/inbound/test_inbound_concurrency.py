"""Ten deliveries of one event_id at the same moment: processed exactly once."""

import pytest
from rest_framework.test import APIClient

from automations.models import AutomationRun, InboundEvent
from contacts.models import Contact, Message
from tests import factories
from tests.helpers import race
from tests.inbound.helpers import event, make_entrypoint, reply_flow


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_deliveries_of_one_event_are_processed_once(eager_celery):
    org = factories.organization()
    _, raw = factories.api_key(org)
    account = factories.social_account(org)
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    body = event(account, "hi", event_id="same-event")

    def deliver(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client.post("/v1/inbound-events", body, format="json").json()["outcome"]

    outcomes = race(10, deliver)
    assert sorted(outcomes) == ["duplicate"] * 9 + ["enrolled"]
    assert InboundEvent.objects.count() == 1
    assert Contact.objects.count() == 1
    assert Message.objects.filter(direction="inbound").count() == 1
    assert AutomationRun.objects.count() == 1
