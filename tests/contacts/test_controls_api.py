"""Contact automation controls API: list, pause (create/update per scope), resume (delete), expiry jobs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import Automation, JobKind, JobStatus, ScheduledJob
from contacts.models import ContactAutomationControl

pytestmark = pytest.mark.django_db


def automation(org, name="Flow"):
    return Automation.objects.create(organization=org, name=name, channel="instagram")


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def pause(api, contact, **body):
    return api.post(f"/v1/contacts/{contact.pk}/automation-pause", body, format="json")


def resume(api, contact, **body):
    return api.post(f"/v1/contacts/{contact.pk}/automation-resume", body, format="json")


def expiry_jobs(**filters):
    return ScheduledJob.objects.filter(kind=JobKind.PAUSE_EXPIRY, **filters)


def test_global_pause_creates_a_row_and_lists_it(api, contact):
    response = pause(api, contact, pause_reason="manual_takeover")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("actl_")
    assert body["contact_id"] == contact.pk
    assert body["automation_id"] is None
    assert body["pause_reason"] == "manual_takeover"
    assert body["paused_until"] is None
    assert body["created_at"].endswith("Z")

    listed = api.get(f"/v1/contacts/{contact.pk}/automation-controls").json()
    assert [row["id"] for row in listed["data"]] == [body["id"]]
    assert listed["has_more"] is False
    assert not expiry_jobs().exists()


def test_same_scope_twice_updates_the_existing_row(api, org, contact):
    flow = automation(org)
    first = pause(api, contact, automation_id=flow.pk, pause_reason="user_reply")
    assert first.status_code == 201
    second = pause(api, contact, automation_id=flow.pk, pause_reason="operator_paused")
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["pause_reason"] == "operator_paused"
    assert ContactAutomationControl.objects.filter(contact=contact).count() == 1

    # A global pause is a different scope: a second row.
    assert pause(api, contact, pause_reason="manual_takeover").status_code == 201
    assert ContactAutomationControl.objects.filter(contact=contact).count() == 2


def test_pause_with_paused_until_schedules_one_expiry_job_and_reschedules_on_update(api, contact):
    until = timezone.now() + timedelta(hours=1)
    control_id = pause(api, contact, pause_reason="x", paused_until=iso(until)).json()["id"]
    job = expiry_jobs().get()
    assert job.status == JobStatus.PENDING
    assert job.due_at == until
    assert job.run_id is None
    assert job.organization_id == contact.organization_id
    assert job.payload == {"control_id": control_id, "contact_id": contact.pk, "automation_id": None}

    later = until + timedelta(hours=1)
    pause(api, contact, pause_reason="x", paused_until=iso(later))
    assert expiry_jobs(status=JobStatus.PENDING).get().due_at == later
    assert expiry_jobs(status=JobStatus.CANCELLED).get().pk == job.pk

    pause(api, contact, pause_reason="x", paused_until=None)  # until resumed: no expiry at all
    assert not expiry_jobs(status=JobStatus.PENDING).exists()


def test_past_paused_until_is_422(api, contact):
    response = pause(api, contact, pause_reason="x", paused_until=iso(timezone.now() - timedelta(minutes=1)))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_paused_until"
    assert "paused_until" in response.json()["error"]["details"]
    assert not ContactAutomationControl.objects.exists()


def test_pause_body_is_validated(api, contact):
    missing = pause(api, contact)
    assert missing.status_code == 400
    assert "pause_reason" in missing.json()["error"]["details"]
    unknown = pause(api, contact, pause_reason="x", minutes=5)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_field"


def test_resume_deletes_the_scope_row_and_cancels_its_expiry(api, org, contact):
    flow = automation(org)
    pause(api, contact, pause_reason="global")
    pause(api, contact, automation_id=flow.pk, pause_reason="flow",
          paused_until=iso(timezone.now() + timedelta(hours=1)))

    response = resume(api, contact, automation_id=flow.pk)
    assert response.status_code == 200
    body = response.json()
    assert body["deleted"] is True
    assert body["control"]["automation_id"] == flow.pk
    assert body["control"]["id"].startswith("actl_")
    assert body["resumed_run_ids"] == []
    remaining = ContactAutomationControl.objects.get(contact=contact)
    assert remaining.automation_id is None  # the global row is untouched
    assert expiry_jobs().get().status == JobStatus.CANCELLED

    again = resume(api, contact, automation_id=flow.pk)  # idempotent
    assert again.status_code == 200
    assert again.json() == {"deleted": False, "control": None, "resumed_run_ids": []}

    assert resume(api, contact).json()["deleted"] is True  # the global scope
    assert not ContactAutomationControl.objects.exists()


def test_other_organizations_contacts_and_automations_are_404(api, other_api, org, other_org, contact):
    foreign_flow = automation(other_org)
    for response in (
        other_api.get(f"/v1/contacts/{contact.pk}/automation-controls"),
        pause(other_api, contact, pause_reason="x"),
        resume(other_api, contact),
        pause(api, contact, automation_id=foreign_flow.pk, pause_reason="x"),
        resume(api, contact, automation_id=foreign_flow.pk),
        pause(api, contact, automation_id="auto_doesnotexist", pause_reason="x"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert not ContactAutomationControl.objects.exists()


def test_controls_list_is_scoped_to_the_contact(api, org, account, contact):
    from tests import factories

    other_contact = factories.contact(org, account=account)
    pause(api, other_contact, pause_reason="x")
    assert api.get(f"/v1/contacts/{contact.pk}/automation-controls").json()["data"] == []
