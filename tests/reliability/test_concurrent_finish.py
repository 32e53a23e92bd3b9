"""Many runs of one automation finishing at the same moment, each writing its contact and the
automation's shared counter, while runs of a second automation write the same contacts and start the
first automation for them (the transaction path: contact, enrollment, steps, counter). Every write locks
in the declared phase order — contact before counter — so none deadlocks, and the counters are exact."""

import pytest

from automations.models import Automation, AutomationRun, RunStatus
from automations.runtime import enrollment
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from tests import factories
from tests.helpers import race

CONTACTS = 10


def tagging(tag):
    return "action_group", {"actions": [{"id": "a", "type": "tag_add", "tag": tag}]}


@pytest.mark.django_db(transaction=True)
def test_runs_finishing_together_do_not_deadlock_and_count_exactly(org, account, monkeypatch):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    shared = factories.automation(org, factories.flow([("t", *tagging("y")), ("bye", "end", {})],
                                                      [("t", "next", "bye")]), status="active")
    starter = factories.automation(org, factories.flow(
        [("t", *tagging("x")), ("go", "start_automation", {"target_automation_id": shared.pk}), ("bye", "end", {})],
        [("t", "next", "go"), ("go", "next", "bye")]), status="active")
    contacts = [factories.contact(org, account=account) for _ in range(CONTACTS)]
    run_ids = [enroll(automation, contact, source="manual").run.pk
               for contact in contacts for automation in (shared, starter)]

    advanced = race(len(run_ids), lambda i: advance(run_ids[i]))

    assert all(run is not None for run in advanced)
    runs = AutomationRun.objects.filter(pk__in=run_ids)
    assert set(runs.values_list("status", flat=True)) == {RunStatus.COMPLETED}
    for automation in (shared, starter):
        counted = Automation.objects.get(pk=automation.pk)
        finished = AutomationRun.objects.filter(automation=automation)
        assert counted.total_completed == finished.filter(status=RunStatus.COMPLETED).count()
        assert counted.total_exited == finished.filter(status=RunStatus.EXITED).count()
    assert Automation.objects.get(pk=starter.pk).total_completed == CONTACTS
    for contact in contacts:
        contact.refresh_from_db()
        assert {"x", "y"} <= set(contact.tags)
