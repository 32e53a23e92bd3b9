"""Races that real deployments have: many workers enrolling one contact at once."""

import threading

import pytest
from django.db import connection

from automations.models import AutomationRun
from automations.runtime.enrollment import TRIGGER, enroll
from tests import factories


@pytest.fixture(autouse=True)
def inline_tasks():
    from relay.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", ["manual", TRIGGER])
def test_twenty_threads_enrolling_one_contact_make_exactly_one_live_run(org, contact, source):
    # A delay keeps the run live (waiting) after it executes, so the window for double enrollment stays open.
    automation = factories.automation(org, factories.flow([("hold", "delay", {"minutes": 10})]), status="active")
    barrier = threading.Barrier(20)
    outcomes, errors = [], []

    def worker():
        try:
            barrier.wait()
            result = enroll(automation, contact, source=source)
            outcomes.append(result.blocked or "enrolled")
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(outcomes) == ["enrolled"] + ["reentry_blocked"] * 19
    live = AutomationRun.objects.filter(automation=automation, contact=contact, status__in=["active", "waiting"])
    assert live.count() == 1
    automation.refresh_from_db()
    assert automation.total_enrolled == 1
    skipped = AutomationRun.objects.filter(automation=automation, exit_reason="reentry_cooldown").count()
    assert skipped == (19 if source == TRIGGER else 0)
    assert automation.total_exited == skipped
