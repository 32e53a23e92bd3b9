"""Tag and field changes (API or action_group) start tag_applied / tag_removed / field_changed entrypoints."""

import pytest

from automations.models import AutomationRun
from automations.runtime import enrollment
from automations.runtime.internal_events import fire
from contacts.models import Message
from tests import factories
from tests.inbound.helpers import active_flow, make_entrypoint, reply_flow

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def patch(api, capture, contact, body):
    with capture(execute=True):
        response = api.patch(f"/v1/contacts/{contact.id}", body, format="json")
    assert response.status_code == 200, response.json()


def test_tag_added_through_api_starts_tag_applied_automation(api, org, contact, account,
                                                             django_capture_on_commit_callbacks):
    vip = reply_flow(org, "Welcome to VIP")
    make_entrypoint(vip, kind="tag_applied", config={"tag_ids": ["vip"]})
    other = reply_flow(org, "other tag")
    make_entrypoint(other, kind="tag_applied", config={"tag_ids": ["beta"]})
    patch(api, django_capture_on_commit_callbacks, contact, {"tags": ["vip"]})
    run = AutomationRun.objects.get(contact=contact)
    assert run.automation_id == vip.id and run.context["trigger"] == {"kind": "tag_applied", "tag": "vip"}
    assert list(Message.objects.filter(direction="outbound").values_list("text", flat=True)) == ["Welcome to VIP"]


def test_tag_removed_and_field_changed(api, org, contact, django_capture_on_commit_callbacks):
    contact.tags = ["trial"]
    contact.custom_fields = {"plan": "free"}
    contact.save()
    removed = reply_flow(org)
    make_entrypoint(removed, kind="tag_removed", config={"tag_ids": ["trial"]})
    upgraded = reply_flow(org)
    make_entrypoint(upgraded, kind="field_changed", config={"field_keys": ["plan"], "from": "free", "to": "pro"})
    downgraded = reply_flow(org)
    make_entrypoint(downgraded, kind="field_changed", config={"field_keys": ["plan"], "to": "free"})
    patch(api, django_capture_on_commit_callbacks, contact, {"tags": [], "custom_fields": {"plan": "pro"}})
    started = set(AutomationRun.objects.filter(contact=contact).values_list("automation_id", flat=True))
    assert started == {removed.id, upgraded.id}


def test_unchanged_tags_fire_nothing(api, org, contact, django_capture_on_commit_callbacks):
    contact.tags = ["vip"]
    contact.save()
    make_entrypoint(reply_flow(org), kind="tag_applied", config={"tag_ids": ["vip"]})
    patch(api, django_capture_on_commit_callbacks, contact, {"tags": ["vip"], "name": "New name"})
    assert not AutomationRun.objects.exists()


def test_action_group_tag_fires_other_automation(org, contact, account, django_capture_on_commit_callbacks):
    factories.conversation(contact, account)
    tagger = active_flow(org, [("tag", "action_group", {"actions": [
        {"id": "a1", "type": "tag_add", "tag": "lead"}]})])
    follow_up = reply_flow(org, "Thanks, lead!")
    make_entrypoint(follow_up, kind="tag_applied", config={"tag_ids": ["lead"]})
    with django_capture_on_commit_callbacks(execute=True):
        result = enrollment.enroll(tagger, contact)
    assert result.ok
    run = AutomationRun.objects.get(automation=follow_up)
    assert run.status == "completed" and run.trigger_depth == 1
    assert list(Message.objects.filter(direction="outbound").values_list("text", flat=True)) == ["Thanks, lead!"]


def test_depth_guard_stops_ping_pong(org, contact):
    ping = reply_flow(org)
    make_entrypoint(ping, kind="tag_applied", config={"tag_ids": ["ping"]})
    reports = fire(contact, [("tag_applied", {"tag": "ping"})], trigger_depth=enrollment.MAX_TRIGGER_DEPTH + 1)
    assert reports == [{"event": "tag_applied", "blocked": "trigger_depth_exceeded"}]
    assert not AutomationRun.objects.exists()
