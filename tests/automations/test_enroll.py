"""Enrollment rules (active automation, pauses, re-entry) and POST /v1/automations/{id}/enroll."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationRun, StepRun
from automations.runtime.enrollment import TRIGGER, enroll
from automations.runtime.resume import resume_parked
from automations.runtime.runner import advance
from contacts.models import ContactAutomationControl, Message
from tests import factories

RUN_FIELDS = {"id", "automation_id", "organization_id", "entrypoint_id", "binding_id", "contact_id", "conversation_id",
              "social_account_id", "status", "current_node_key", "current_port_key", "context", "waiting_until",
              "waiting_for", "exit_reason", "started_at", "completed_at", "updated_at"}


pytestmark = pytest.mark.usefixtures("eager_celery")


@pytest.fixture
def automation(org):
    return factories.automation(org, factories.flow([("hi", "message", {"blocks": [{"type": "text", "text": "hi"}]})]),
                                status="active")


def finish(run, minutes_ago=0, status="completed"):
    AutomationRun.objects.filter(pk=run.pk).update(status=status, completed_at=timezone.now() - timedelta(
        minutes=minutes_ago))


def test_enroll_creates_an_active_run_at_the_root(automation, contact, account):
    result = enroll(automation, contact, context={"src": "test"})
    run = result.run
    assert result.ok and run.status == "active" and run.current_node_key == "hi"
    conversation = run.conversation
    assert (run.social_account_id, conversation.contact_id, conversation.social_account_id) == (
        account.pk, contact.pk, account.pk)
    assert run.context == {"src": "test"}
    automation.refresh_from_db()
    assert automation.total_enrolled == 1


def test_inactive_automation_refuses(org, contact):
    for status in ("draft", "paused", "archived"):
        automation = factories.automation(org, factories.flow([("e", "end", {})]), status=status)
        assert enroll(automation, contact).blocked == "automation_not_active"
    assert not AutomationRun.objects.exists()


def test_a_live_run_blocks_reentry(automation, contact):
    assert enroll(automation, contact).ok
    result = enroll(automation, contact)
    assert (result.blocked, result.run) == ("reentry_blocked", None)
    assert AutomationRun.objects.count() == 1


def test_a_completed_run_within_the_cooldown_blocks(automation, contact):
    entry = factories.entrypoint(automation, reentry_cooldown_min=60)
    first = enroll(automation, contact, entrypoint=entry).run
    finish(first, minutes_ago=30)
    assert enroll(automation, contact, entrypoint=entry).blocked == "reentry_blocked"
    finish(first, minutes_ago=61)
    assert enroll(automation, contact, entrypoint=entry).ok


def test_cooldown_zero_and_failed_runs_do_not_block(automation, contact):
    entry = factories.entrypoint(automation, reentry_cooldown_min=0)
    finish(enroll(automation, contact, entrypoint=entry).run)
    assert enroll(automation, contact, entrypoint=entry).ok
    other = factories.contact(automation.organization)
    finish(enroll(automation, other).run, status="failed")
    assert enroll(automation, other).ok  # a failed run is not a "completed run within the cooldown"


def test_allow_reentry_false_blocks_after_any_prior_run(automation, contact):
    entry = factories.entrypoint(automation, allow_reentry=False)
    finish(enroll(automation, contact, entrypoint=entry).run, minutes_ago=60 * 24 * 365, status="exited")
    assert enroll(automation, contact, entrypoint=entry).blocked == "reentry_blocked"


def test_trigger_path_reentry_skip_is_recorded(automation, contact):
    entry = factories.entrypoint(automation)
    live = enroll(automation, contact, entrypoint=entry, source=TRIGGER).run
    result = enroll(automation, contact, entrypoint=entry, source=TRIGGER)
    assert result.blocked == "reentry_blocked"
    skip = result.run
    assert (skip.status, skip.exit_reason, skip.entrypoint_id, skip.completed_at) == (
        "exited", "reentry_cooldown", entry.pk, skip.started_at)
    assert AutomationRun.objects.get(pk=live.pk).status == "active"
    automation.refresh_from_db()
    assert (automation.total_enrolled, automation.total_exited) == (1, 1)  # the skip row counts as exited
    # A skip row is not a prior run: it never blocks later enrollments by itself.
    AutomationRun.objects.filter(pk=live.pk).delete()
    assert enroll(automation, contact, entrypoint=factories.entrypoint(automation, allow_reentry=False)).ok


def test_trigger_path_skips_a_paused_contact_and_records_it(automation, contact):
    ContactAutomationControl.objects.create(organization=automation.organization, contact=contact)
    result = enroll(automation, contact, source=TRIGGER)
    assert result.blocked == "contact_paused"
    assert (result.run.status, result.run.exit_reason) == ("exited", "contact_paused")
    assert not StepRun.objects.exists()
    automation.refresh_from_db()
    assert (automation.total_enrolled, automation.total_exited) == (0, 1)


def test_manual_enroll_of_a_paused_contact_parks_without_executing(automation, contact):
    until = timezone.now() + timedelta(hours=1)
    control = ContactAutomationControl.objects.create(organization=automation.organization, contact=contact,
                                                      automation=automation, paused_until=until)
    run = enroll(automation, contact).run
    assert (run.status, run.waiting_for, run.current_node_key, run.waiting_until) == (
        "waiting", "external_event", "hi", until)
    assert advance(run.pk) is None and not StepRun.objects.exists()
    control.delete()
    assert resume_parked(run)
    run.refresh_from_db()
    assert (run.status, run.current_node_key) == ("completed", "hi")
    assert StepRun.objects.get(run_id=run.pk).entered_via_port_key is None


# -- API -------------------------------------------------------------------------------------------------

def test_enroll_endpoint_returns_the_full_run(api, automation, contact, account):
    entry = factories.entrypoint(automation)
    response = api.post(f"/v1/automations/{automation.pk}/enroll",
                        {"contact_id": contact.pk, "entrypoint_id": entry.pk, "context_overrides": {"source": "api"}},
                        format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == RUN_FIELDS
    assert (body["status"], body["contact_id"], body["entrypoint_id"], body["context"], body["social_account_id"]) == (
        "active", contact.pk, entry.pk, {"source": "api"}, account.pk)
    assert body["id"].startswith("arun_") and body["started_at"].endswith("Z")


def test_enroll_endpoint_refusals(api, org, automation, contact):
    assert api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": contact.pk}, format="json"
                    ).status_code == 201
    again = api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": contact.pk}, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "reentry_blocked")
    draft = factories.automation(org)
    refused = api.post(f"/v1/automations/{draft.pk}/enroll", {"contact_id": contact.pk}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "automation_not_active")
    unknown = api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": contact.pk, "extra": 1},
                       format="json")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "unknown_field")
    missing = api.post(f"/v1/automations/{automation.pk}/enroll", {}, format="json")
    assert missing.status_code == 400 and "contact_id" in missing.json()["error"]["details"]


def test_enroll_endpoint_hides_other_organizations(api, other_org, automation):
    stranger = factories.contact(other_org)
    response = api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": stranger.pk}, format="json")
    assert response.status_code == 404
    foreign = factories.automation(other_org, status="active")
    assert api.post(f"/v1/automations/{foreign.pk}/enroll", {"contact_id": stranger.pk}, format="json"
                    ).status_code == 404
    other_entry = factories.entrypoint(factories.automation(automation.organization, status="active"))
    contact = factories.contact(automation.organization)
    mismatch = api.post(f"/v1/automations/{automation.pk}/enroll",
                        {"contact_id": contact.pk, "entrypoint_id": other_entry.pk}, format="json")
    assert mismatch.status_code == 404


def test_enrolled_run_is_executed_after_commit(api, automation, contact, account, django_capture_on_commit_callbacks):
    factories.conversation(contact, account)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": contact.pk}, format="json")
    assert response.json()["status"] == "active"  # the response is written before the run executes
    assert len(callbacks) == 1  # advance_run on the enrollment's commit (the sandbox records messages sent)
    run = AutomationRun.objects.get(pk=response.json()["id"])
    assert run.status == "completed"
    assert Message.objects.get(run_id=run.pk).status == "sent"


def test_enroll_endpoint_parks_a_paused_contact(api, automation, contact):
    ContactAutomationControl.objects.create(organization=automation.organization, contact=contact)
    body = api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": contact.pk}, format="json").json()
    assert (body["status"], body["waiting_for"]) == ("waiting", "external_event")
