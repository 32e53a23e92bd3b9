"""Enrollment reads what it decides on in one statement under its lock, and the live-run index stays the
last line of defence when the checks cannot see a live run."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationRun
from automations.runtime import enrollment
from automations.runtime.enrollment import MANUAL, TRIGGER, enroll
from contacts.models import ContactAutomationControl
from tests import factories
from tests.helpers import assert_statements

pytestmark = pytest.mark.django_db


@pytest.fixture
def automation(org):
    return factories.automation(org, factories.flow([("hi", "message", {"blocks": [{"type": "text", "text": "hi"}]})]),
                                status="active")


def test_an_enrollment_takes_its_lock_reads_once_and_inserts_once(automation, contact, account, monkeypatch):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    conversation = factories.conversation(contact, account)
    # the lock, the standing (status, pause, prior runs), the insert
    with assert_statements(3, transaction_control=False) as statements:
        result = enroll(automation, contact, conversation=conversation, social_account=conversation.social_account,
                        source=TRIGGER)
    assert result.ok
    assert "pg_advisory_xact_lock" in statements[0]
    automation.refresh_from_db()
    assert automation.total_enrolled == 1


@pytest.mark.parametrize("source", [TRIGGER, MANUAL])
def test_a_live_run_the_checks_missed_is_still_refused_by_the_index(automation, contact, monkeypatch, source):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    live = enroll(automation, contact).run
    monkeypatch.setattr(enrollment, "reentry_blocked", lambda *a, **k: False)  # the checks see nothing
    result = enroll(automation, contact, source=source)
    assert result.blocked == "reentry_blocked"
    assert AutomationRun.objects.filter(automation=automation, status="active").get().pk == live.pk
    automation.refresh_from_db()
    assert automation.total_enrolled == 1
    if source == TRIGGER:
        assert (result.run.status, result.run.exit_reason) == ("exited", "reentry_cooldown")
        assert automation.total_exited == 1
    else:
        assert result.run is None and automation.total_exited == 0


def test_the_global_pause_wins_over_an_automation_pause_and_its_end_parks_a_manual_run(automation, contact):
    until = timezone.now() + timedelta(hours=2)
    ContactAutomationControl.objects.create(organization=contact.organization, contact=contact,
                                            automation=automation, pause_reason="this one",
                                            paused_until=timezone.now() + timedelta(hours=5))
    ContactAutomationControl.objects.create(organization=contact.organization, contact=contact,
                                            pause_reason="everything", paused_until=until)
    run = enroll(automation, contact, source=MANUAL).run
    assert (run.status, run.waiting_for, run.waiting_until) == ("waiting", "external_event", until)
    assert AutomationRun.objects.get(pk=run.pk).waiting_until == until


def test_an_expired_pause_does_not_apply(automation, contact, monkeypatch):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    ContactAutomationControl.objects.create(organization=contact.organization, contact=contact,
                                            paused_until=timezone.now() - timedelta(minutes=1))
    assert enroll(automation, contact, source=TRIGGER).ok


def test_skip_rows_are_not_prior_runs_and_a_run_with_no_exit_reason_is(automation, contact, monkeypatch):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    entry = factories.entrypoint(automation, allow_reentry=False)
    first = enroll(automation, contact, entrypoint=entry, source=TRIGGER).run
    AutomationRun.objects.filter(pk=first.pk).update(status="exited", exit_reason="reentry_cooldown")
    assert enroll(automation, contact, entrypoint=entry, source=TRIGGER).ok  # a skip row is not a prior run
    AutomationRun.objects.filter(automation=automation, status="active").update(status="exited", exit_reason=None)
    assert enroll(automation, contact, entrypoint=entry, source=TRIGGER).blocked == "reentry_blocked"
