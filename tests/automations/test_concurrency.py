"""Races that real deployments have: many workers enrolling one contact at once."""

import threading

import pytest
from django.db import connection

from automations.models import AutomationRun
from automations.runtime.enrollment import TRIGGER, enroll
from tests import factories
from tests.helpers import race

pytestmark = pytest.mark.usefixtures("eager_celery")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", ["manual", TRIGGER])
def test_twenty_threads_enrolling_one_contact_make_exactly_one_live_run(org, contact, source):
    # A delay keeps the run live (waiting) after it executes, so the window for double enrollment stays open.
    automation = factories.automation(org, factories.flow([("hold", "delay", {"minutes": 10})]), status="active")
    outcomes = race(20, lambda _: enroll(automation, contact, source=source).blocked or "enrolled")
    assert sorted(outcomes) == ["enrolled"] + ["reentry_blocked"] * 19
    live = AutomationRun.objects.filter(automation=automation, contact=contact, status__in=["active", "waiting"])
    assert live.count() == 1
    automation.refresh_from_db()
    assert automation.total_enrolled == 1
    skipped = AutomationRun.objects.filter(automation=automation, exit_reason="reentry_cooldown").count()
    assert skipped == (19 if source == TRIGGER else 0)
    assert automation.total_exited == skipped


@pytest.mark.django_db(transaction=True)
def test_a_run_that_ends_between_another_enrollments_check_and_insert_still_blocks_it(org, contact, account,
                                                                                    monkeypatch):
    """A enrolls, B checks re-entry before A commits, A's run completes, then B inserts: the live-run
    index no longer sees A's run, so only serialising the decision keeps B out (cooldown applies)."""
    from automations.runtime import enrollment
    from automations.runtime.runner import advance

    automation = factories.automation(org, factories.flow([("bye", "end", {"reason": "done"})]), status="active")
    factories.conversation(contact, account)  # nothing else (a conversation insert) orders the two
    real_check = enrollment.reentry_blocked
    a_checking, b_checked, a_done = threading.Event(), threading.Event(), threading.Event()
    roles = {}

    def check(*args, **kwargs):
        blocked = real_check(*args, **kwargs)
        if roles.get(threading.get_ident()) == "A":
            a_checking.set()
            b_checked.wait(timeout=2)  # without serialising, B decides now, before A commits
        else:
            b_checked.set()
            a_done.wait(timeout=10)  # B inserts only after A's run has ended
        return blocked

    monkeypatch.setattr(enrollment, "reentry_blocked", check)
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    outcomes, errors = {}, []

    def enroll_as(role):
        roles[threading.get_ident()] = role
        try:
            result = enroll(automation, contact, source=TRIGGER)
            outcomes[role] = result.blocked or "enrolled"
            if role == "A":
                advance(result.run.pk)  # the run completes: no longer live
                a_done.set()
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            if role == "A":
                a_done.set()  # never leave B waiting, even if A failed
            connection.close()

    a = threading.Thread(target=enroll_as, args=("A",))
    a.start()
    assert a_checking.wait(timeout=10)  # A is deciding (holding whatever its decision holds) first
    b = threading.Thread(target=enroll_as, args=("B",))
    b.start()
    a.join(timeout=30)
    b.join(timeout=30)
    assert errors == []
    assert outcomes == {"A": "enrolled", "B": "reentry_blocked"}
    assert AutomationRun.objects.filter(automation=automation, contact=contact).exclude(
        exit_reason="reentry_cooldown").count() == 1
