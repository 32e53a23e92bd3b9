"""An event whose processing failed after its claim committed is processed by the provider's retry."""

import pytest

from automations.models import AutomationRun, InboundEvent
from automations.runtime import matcher
from contacts.actions import Sender
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


def test_a_duplicate_arriving_while_the_first_attempt_processes_answers_at_once(
        api, org, account, monkeypatch, django_capture_on_commit_callbacks):
    """The first attempt holds the event's lock while it processes (maybe calling out over HTTP): the
    duplicate must answer `duplicate` without waiting for it, and must not process the event itself."""
    import time

    from django.db import connection, connections

    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    monkeypatch.setattr(matcher, "decide", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash")))
    body = event(account, "hi", event_id="slow-1")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/v1/inbound-events", body, format="json").status_code == 500
    row = InboundEvent.objects.get(event_id="slow-1")
    assert row.outcome is None  # looks unfinished: the first attempt is still going

    first_attempt = type(connections["default"])(dict(connections["default"].settings_dict))  # own session
    try:
        with first_attempt.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"inbound-event:{row.pk}"])
        with connection.cursor() as cursor:  # a waiting duplicate fails instead of hanging the test
            cursor.execute("SET LOCAL lock_timeout = '3s'")
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            duplicate = api.post("/v1/inbound-events", body, format="json")
        assert time.monotonic() - started < 2
        assert duplicate.status_code == 202, duplicate.json()
        assert duplicate.json()["outcome"] == "duplicate" and duplicate.json()["run_id"] is None
        assert InboundEvent.objects.get(pk=row.pk).outcome is None  # left to the live attempt
        assert AutomationRun.objects.count() == 0
    finally:
        first_attempt.close()


def test_a_database_error_while_recording_surfaces_and_releases_the_events_lock(org, account, monkeypatch):
    """The claim's statement took the event's session lock; recording then fails in the database. The
    error raised is that failure (not "current transaction is aborted" from releasing the lock inside the
    aborted transaction), the lock is released, and the same event is recorded by the next delivery."""
    from django.db import DataError, connection

    from automations.runtime import inbound

    real_record = inbound._record

    def failing_record(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(inbound, "_record", failing_record)
    sender = Sender(platform_user_id="psid-db-error", name="Dee")
    with pytest.raises(DataError, match="division by zero"):
        inbound.receive_event(account, event_id="db-error-1", kind="dm_received", sender=sender, text="hi")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 0
    assert not InboundEvent.objects.filter(event_id="db-error-1").exists()  # the claim rolled back

    monkeypatch.setattr(inbound, "_record", real_record)
    result = inbound.receive_event(account, event_id="db-error-1", kind="dm_received", sender=sender, text="hi")
    assert result.outcome != "duplicate"
    assert Contact.objects.get(pk=InboundEvent.objects.get(event_id="db-error-1").contact_id).name == "Dee"
