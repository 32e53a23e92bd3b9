"""An event whose processing failed after its claim committed is processed by the provider's retry."""

import pytest

from automations.models import AutomationRun, InboundEvent
from automations.runtime import matcher
from contacts.models import Contact, Message
from tests.inbound.helpers import event, make_entrypoint, reply_flow

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def test_event_that_failed_midway_is_processed_on_retry(api, org, account, monkeypatch,
                                                        django_capture_on_commit_callbacks):
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    real_decide = matcher.decide
    calls = []

    def flaky_decide(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("matcher blew up")
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(matcher, "decide", flaky_decide)
    body = event(account, "hi", event_id="flaky-1")
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/v1/inbound-events", body, format="json")
    assert first.status_code == 500
    assert first.json()["error"]["code"] == "internal_error"
    assert InboundEvent.objects.get(event_id="flaky-1").outcome is None

    with django_capture_on_commit_callbacks(execute=True):
        retry = api.post("/v1/inbound-events", body, format="json")
    assert retry.status_code == 202, retry.json()
    assert retry.json()["outcome"] == "enrolled"
    assert AutomationRun.objects.count() == 1
    assert retry.json()["run_id"] == AutomationRun.objects.get().id
    assert Contact.objects.count() == 1
    assert Message.objects.filter(direction="inbound").count() == 1
    assert InboundEvent.objects.get(event_id="flaky-1").outcome == "enrolled"

    with django_capture_on_commit_callbacks(execute=True):
        again = api.post("/v1/inbound-events", body, format="json")
    assert again.json()["outcome"] == "duplicate"
    assert AutomationRun.objects.count() == 1


def test_duplicate_with_a_different_body_changes_nothing(api, org, account, django_capture_on_commit_callbacks):
    make_entrypoint(reply_flow(org), config={"keywords": ["hi", "bye"]})
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/v1/inbound-events", event(account, "hi", event_id="same"), format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        second = api.post("/v1/inbound-events", event(account, "bye", user="someone-else", event_id="same"),
                          format="json").json()
    assert second["outcome"] == "duplicate" and second["run_id"] is None
    assert second["contact_id"] == first["contact_id"]
    assert second["conversation_id"] == first["conversation_id"]
    assert Contact.objects.count() == 1
    assert list(Message.objects.filter(direction="inbound").values_list("text", flat=True)) == ["hi"]
    assert AutomationRun.objects.count() == 1
