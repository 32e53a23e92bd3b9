"""An event whose attempt died after its record committed (outcome still NULL) is completed by the
scheduler tick once the grace has passed and no live attempt holds its lock — exactly once, without
waiting for the sender to retry."""

import time
from datetime import timedelta

import pytest
from django.db import connections

from automations.models import AutomationRun, InboundEvent
from automations.runtime import inbound, internal_events, matcher, scheduler
from automations.store import inbound as inbound_store
from contacts.actions import Sender
from contacts.models import Contact, Message
from tests import factories
from tests.helpers import race
from tests.inbound.helpers import event, make_entrypoint, reply_flow

GRACE = timedelta(seconds=60)


def interrupt_processing(monkeypatch, module, name):
    """The first call of module.name raises (the attempt dies after the record committed)."""
    real = getattr(module, name)
    calls = []

    def dies_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("worker lost mid-processing")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, dies_once)


def interrupted_event(api, capture, monkeypatch, body):
    interrupt_processing(monkeypatch, matcher, "decide")
    with capture(execute=True):
        assert api.post("/v1/inbound-events", body, format="json").status_code == 500
    row = InboundEvent.objects.get(event_id=body["event_id"])
    assert row.outcome is None and Message.objects.filter(payload__event_id=body["event_id"]).count() == 1
    return row


def tick_after(row, capture, seconds, hand_over=0):
    with capture(execute=True):
        return scheduler.tick(now=row.received_at + timedelta(seconds=seconds), hand_over=hand_over)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
@pytest.mark.parametrize("hand_over", [0, 50], ids=["in the tick", "on a worker"])
def test_the_tick_completes_an_event_interrupted_after_its_record(api, org, account, monkeypatch, hand_over,
                                                                  django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    body = event(account, "Hi", event_id="died-1")
    row = interrupted_event(api, capture, monkeypatch, body)

    report = tick_after(row, capture, GRACE.total_seconds() + 1, hand_over)
    assert report.unfinished_events == 1 and not report.errors
    row.refresh_from_db()
    run = AutomationRun.objects.get()
    assert row.outcome == "enrolled" and row.run_id == run.id and row.trace
    assert run.status == "completed" and run.context["trigger"]["text"] == "Hi"
    assert Message.objects.filter(direction="inbound").count() == 1
    assert list(Message.objects.filter(direction="outbound").values_list("text", flat=True)) == ["Hello!"]

    with capture(execute=True):
        retry = api.post("/v1/inbound-events", body, format="json")
    assert retry.json()["outcome"] == "duplicate"
    assert tick_after(row, capture, 600, hand_over).unfinished_events == 0
    assert AutomationRun.objects.count() == 1 and Contact.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_the_completion_reads_the_events_inputs_back_from_the_stored_rows(api, org, account, monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    """Post, payload id and parent comment decide the match as they did for the sender's attempt: a
    reply to a comment is left out by an entrypoint that excludes replies."""
    capture = django_capture_on_commit_callbacks
    automation = reply_flow(org)
    make_entrypoint(automation, kind="comment_created", config={"post_ids": ["p-1"], "include_replies": False})
    reply = interrupted_event(api, capture, monkeypatch, event(
        account, "nice", kind="comment_created", event_id="c-reply", post_id="p-1", parent_comment_id="c-0"))
    top = event(account, "nice", kind="comment_created", event_id="c-top", post_id="p-1", user="psid-2")
    interrupt_processing(monkeypatch, matcher, "decide")
    with capture(execute=True):
        assert api.post("/v1/inbound-events", top, format="json").status_code == 500

    tick_after(reply, capture, 120)
    assert InboundEvent.objects.get(event_id="c-reply").outcome == "no_match"
    completed = InboundEvent.objects.get(event_id="c-top")
    assert completed.outcome == "enrolled"
    assert AutomationRun.objects.get().context["trigger"]["post_id"] == "p-1"


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_an_interrupted_contact_change_is_completed_by_the_tick(api, org, account, contact, monkeypatch,
                                                                django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    make_entrypoint(reply_flow(org, "Welcome to VIP"), kind="tag_applied", config={"tag_ids": ["vip"]})
    interrupt_processing(monkeypatch, internal_events, "fire")
    body = {"event_id": "t-died", "social_account_id": account.id, "kind": "tag_applied", "contact_id": contact.id,
            "tag": "vip"}
    with capture(execute=True):
        assert api.post("/v1/inbound-events", body, format="json").status_code == 500
    row = InboundEvent.objects.get(event_id="t-died")
    assert row.outcome is None and "vip" in Contact.objects.get(pk=contact.pk).tags

    tick_after(row, capture, 61)
    row.refresh_from_db()
    assert row.outcome == "enrolled" and AutomationRun.objects.get().pk == row.run_id
    with capture(execute=True):
        assert api.post("/v1/inbound-events", body, format="json").json()["outcome"] == "duplicate"
    assert AutomationRun.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_an_event_within_the_grace_or_locked_by_a_live_attempt_is_left_alone(api, org, account, monkeypatch,
                                                                             django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    row = interrupted_event(api, capture, monkeypatch, event(account, "hi", event_id="slow-1"))

    assert tick_after(row, capture, GRACE.total_seconds() - 5).unfinished_events == 0
    assert InboundEvent.objects.get(pk=row.pk).outcome is None

    live_attempt = type(connections["default"])(dict(connections["default"].settings_dict))  # its own session
    try:
        with live_attempt.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"inbound-event:{row.pk}"])
        report = tick_after(row, capture, 3600)
        assert report.unfinished_events == 0 and not report.errors
        assert InboundEvent.objects.get(pk=row.pk).outcome is None and not AutomationRun.objects.exists()
        with live_attempt.cursor() as cursor:  # the attempt ends without finishing
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [f"inbound-event:{row.pk}"])
    finally:
        live_attempt.close()

    assert tick_after(row, capture, 3600).unfinished_events == 1
    assert InboundEvent.objects.get(pk=row.pk).outcome == "enrolled" and AutomationRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_complete_an_event_once(eager_celery, monkeypatch):
    org = factories.organization()
    account = factories.social_account(org)
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    interrupt_processing(monkeypatch, matcher, "decide")
    sender = Sender(platform_user_id="psid-race", name="Rae")
    with pytest.raises(RuntimeError):
        inbound.receive_event(account, event_id="race-1", kind="dm_received", sender=sender, text="hi")
    row = InboundEvent.objects.get(event_id="race-1")
    assert row.outcome is None

    real_situation = inbound_store.situation

    def slow_situation(*args, **kwargs):  # keeps the first sweep inside the event while the second arrives
        time.sleep(0.5)
        return real_situation(*args, **kwargs)

    monkeypatch.setattr(inbound_store, "situation", slow_situation)
    reports = race(2, lambda _: scheduler.tick(now=row.received_at + timedelta(seconds=120)))
    assert len(reports) == 2
    assert not any(report.errors for report in reports)
    assert sorted(report.unfinished_events for report in reports) == [0, 1]
    row.refresh_from_db()
    assert row.outcome == "enrolled"
    assert AutomationRun.objects.count() == 1 and AutomationRun.objects.get().pk == row.run_id
    assert Message.objects.filter(direction="inbound").count() == 1
    assert Message.objects.filter(direction="outbound").count() == 1
