"""POST /v1/inbound-events with tag_applied / tag_removed / field_changed: the contact changes once and the
listening automations start, as for a change through the contacts API."""

import pytest

from automations.models import AutomationRun, InboundEvent
from contacts.models import Contact
from tests.inbound.helpers import make_entrypoint, reply_flow

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def post(api, capture, body):
    with capture(execute=True):
        return api.post("/v1/inbound-events", body, format="json")


def change(account, contact, kind, event_id, **extra):
    return {"event_id": event_id, "social_account_id": account.id, "kind": kind, "contact_id": contact.id, **extra}


def test_tag_applied_event_tags_the_contact_and_starts_the_automation(api, org, account, contact,
                                                                     django_capture_on_commit_callbacks):
    vip = reply_flow(org, "Welcome to VIP")
    make_entrypoint(vip, kind="tag_applied", config={"tag_ids": ["vip"]})
    response = post(api, django_capture_on_commit_callbacks, change(account, contact, "tag_applied", "t-1", tag="vip"))
    assert response.status_code == 202, response.json()
    body = response.json()
    run = AutomationRun.objects.get(contact=contact)
    assert body["outcome"] == "enrolled" and body["run_id"] == run.id and body["contact_id"] == contact.id
    assert run.automation_id == vip.id and run.context["trigger"] == {"kind": "tag_applied", "tag": "vip"}
    assert "vip" in Contact.objects.get(pk=contact.pk).tags
    assert InboundEvent.objects.get(event_id="t-1").outcome == "enrolled"

    again = post(api, django_capture_on_commit_callbacks, change(account, contact, "tag_applied", "t-1", tag="vip"))
    assert again.json()["outcome"] == "duplicate" and AutomationRun.objects.count() == 1


def test_tag_removed_and_field_changed_events(api, org, account, contact, django_capture_on_commit_callbacks):
    Contact.objects.filter(pk=contact.pk).update(tags=["trial", "x"], custom_fields={"plan": "free"})
    upgraded = reply_flow(org, "Thanks for upgrading")
    make_entrypoint(upgraded, kind="field_changed", config={"field_keys": ["plan"], "from": "free", "to": "pro"})
    removed = post(api, django_capture_on_commit_callbacks,
                   change(account, contact, "tag_removed", "r-1", tag="trial")).json()
    assert removed["outcome"] == "no_match" and removed["run_id"] is None
    assert Contact.objects.get(pk=contact.pk).tags == ["x"]
    field = post(api, django_capture_on_commit_callbacks,
                 change(account, contact, "field_changed", "f-1", field="plan", value="pro")).json()
    assert field["outcome"] == "enrolled"
    assert AutomationRun.objects.get(pk=field["run_id"]).automation_id == upgraded.id
    assert Contact.objects.get(pk=contact.pk).custom_fields == {"plan": "pro"}


def test_contact_change_events_need_their_fields(api, account, contact):
    for kind, extra in (("tag_applied", {}), ("tag_removed", {"tag": " "}), ("field_changed", {"field": "plan"})):
        response = api.post("/v1/inbound-events", change(account, contact, kind, f"bad-{kind}", **extra),
                            format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert InboundEvent.objects.count() == 0


def test_tag_event_for_a_new_platform_user_creates_the_contact(api, org, account, django_capture_on_commit_callbacks):
    body = {"event_id": "n-1", "social_account_id": account.id, "kind": "tag_applied", "tag": "lead",
            "contact": {"platform_user_id": "psid-new"}}
    result = post(api, django_capture_on_commit_callbacks, body).json()
    assert result["outcome"] == "no_match"
    assert Contact.objects.get(pk=result["contact_id"]).tags == ["lead"]
