"""Run inspection and stop: GET /automations/{id}/runs, GET /automation-runs/{id}, …/steps, POST …/stop."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationRun, ScheduledJob
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from tests import factories

pytestmark = pytest.mark.usefixtures("eager_celery")


@pytest.fixture
def automation(org):
    nodes = [("a", "condition", {}), ("b", "condition", {}), ("wait", "delay", {"minutes": 5})]
    return factories.automation(org, factories.flow(nodes, [("a", "true", "b"), ("b", "true", "wait")]),
                                status="active")


def started(automation, contact, *, started_at=None):
    run = enroll(automation, contact, now=started_at).run
    advance(run.pk)
    run.refresh_from_db()
    return run


def test_list_runs_newest_first_with_filters_and_cursor(api, org, automation):
    base = timezone.now() - timedelta(days=1)
    contacts = [factories.contact(org) for _ in range(3)]
    runs = [started(automation, c, started_at=base + timedelta(hours=i)) for i, c in enumerate(contacts)]
    AutomationRun.objects.filter(pk=runs[0].pk).update(status="completed")
    url = f"/v1/automations/{automation.pk}/runs"
    body = api.get(url).json()
    assert [r["id"] for r in body["data"]] == [r.pk for r in reversed(runs)] and body["has_more"] is False
    first = api.get(url, {"limit": 2}).json()
    assert first["has_more"] and len(first["data"]) == 2
    second = api.get(url, {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in second["data"]] == [runs[0].pk] and not second["has_more"]
    assert [r["id"] for r in api.get(url, {"status": "completed"}).json()["data"]] == [runs[0].pk]
    assert [r["id"] for r in api.get(url, {"contact_id": contacts[1].pk}).json()["data"]] == [runs[1].pk]
    after = (base + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    before = (base + timedelta(hours=1, minutes=30)).isoformat().replace("+00:00", "Z")
    window = api.get(url, {"started_after": after, "started_before": before}).json()["data"]
    assert [r["id"] for r in window] == [runs[1].pk]


def test_list_runs_rejects_bad_filters(api, automation):
    url = f"/v1/automations/{automation.pk}/runs"
    assert api.get(url, {"status": "sleeping"}).status_code == 400
    assert api.get(url, {"started_after": "yesterday"}).status_code == 400


def test_retrieve_a_run(api, automation, contact):
    run = started(automation, contact)
    body = api.get(f"/v1/automation-runs/{run.pk}").json()
    assert (body["id"], body["status"], body["waiting_for"], body["current_node_key"]) == (
        run.pk, "waiting", "delay", "wait")
    assert body["waiting_until"].endswith("Z")


def test_steps_are_listed_oldest_first_and_paginate_forward(api, automation, contact):
    run = started(automation, contact)
    url = f"/v1/automation-runs/{run.pk}/steps"
    body = api.get(url).json()
    assert [s["node_key"] for s in body["data"]] == ["a", "b", "wait"]
    step = body["data"][0]
    assert set(step) == {"id", "run_id", "automation_id", "node_key", "node_kind", "entered_via_port_key",
                         "exited_via_port_key", "outcome", "duration_ms", "payload", "error", "executed_at"}
    assert isinstance(step["id"], int) and step["run_id"] == run.pk
    page = api.get(url, {"limit": 2}).json()
    rest = api.get(url, {"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [s["node_key"] for s in page["data"] + rest["data"]] == ["a", "b", "wait"]


def test_stop_exits_a_waiting_run_and_cancels_its_jobs(api, automation, contact):
    run = started(automation, contact)
    response = api.post(f"/v1/automation-runs/{run.pk}/stop")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["exit_reason"]) == ("exited", "admin_stopped")
    assert ScheduledJob.objects.get(run_id=run.pk).status == "cancelled"
    again = api.post(f"/v1/automation-runs/{run.pk}/stop")
    assert (again.status_code, again.json()["error"]["code"]) == (422, "invalid_state")


def test_stop_an_active_run(api, automation, contact):
    run = enroll(automation, contact).run  # not executed yet: still active
    assert api.post(f"/v1/automation-runs/{run.pk}/stop").json()["status"] == "exited"
    assert advance(run.pk) is None  # the worker that picks it up later finds nothing to do


def test_other_organizations_runs_are_404(other_api, automation, contact):
    run = started(automation, contact)
    for path in (f"/v1/automation-runs/{run.pk}", f"/v1/automation-runs/{run.pk}/steps",
                 f"/v1/automations/{automation.pk}/runs"):
        assert other_api.get(path).status_code == 404
    assert other_api.post(f"/v1/automation-runs/{run.pk}/stop").status_code == 404
    run.refresh_from_db()
    assert run.status == "waiting"
