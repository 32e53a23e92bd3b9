"""`action_group`: contact changes, pauses, notifications and webhooks in order, `on_error`, its ports and
config checks."""

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationRun, ScheduledJob
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from contacts.models import Contact, ContactAutomationControl, Message
from tests import factories
from tests.automations.nodes.helpers import codes, errors, ports, run_flow, steps_of, warnings

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


def test_action_group_changes_the_contact_and_later_nodes_see_it(org, contact, conv):
    actions = [{"id": "1", "type": "tag_add", "tag": "lead"},
               {"id": "2", "type": "field_set", "field": "plan", "value": "{{context.plan}}"},
               {"id": "3", "type": "contact_field_set", "field": "email", "value": "new@example.com"},
               {"id": "4", "type": "tag_remove", "tag": "cold"},
               {"id": "5", "type": "field_clear", "field": "old"}]
    contact.tags, contact.custom_fields = ["cold"], {"old": 1}
    contact.save()
    check = {"predicates": {"all": [{"field": "tags", "op": "contains", "value": "lead"},
                                    {"field": "fields.plan", "op": "eq", "value": "pro"}]}}
    run = run_flow(org, contact, [("do", "action_group", {"actions": actions}), ("check", "condition", check),
                                  ("say", "message", {"blocks": [{"type": "text", "text": "{{contact.email}}"}]})],
                   [("do", "next", "check"), ("check", "true", "say")], context={"plan": "pro"})
    assert run.current_node_key == "say"
    assert Message.objects.get(run_id=run.pk).text == "new@example.com"
    contact.refresh_from_db()
    assert (contact.tags, contact.custom_fields, contact.email) == (["lead"], {"plan": "pro"}, "new@example.com")
    assert [a["ok"] for a in steps_of(run)[0].payload["actions"]] == [True] * 5


def test_action_group_on_error_continue_records_the_failure(org, contact, conv):
    actions = [{"id": "bad", "type": "tag_add", "tag": "{{context.missing}}", "on_error": "continue"},
               {"id": "good", "type": "tag_add", "tag": "ok"}]
    run = run_flow(org, contact, [("do", "action_group", {"actions": actions})])
    step = steps_of(run)[0]
    assert (step.outcome, step.exited_via_port_key, step.payload["failures"]) == ("success", "next", 1)
    assert step.payload["actions"][0]["error"]["code"] == "empty_value"
    contact.refresh_from_db()
    assert contact.tags == ["ok"]


def test_action_group_on_error_abort_leaves_through_error(org, contact, conv):
    actions = [{"id": "bad", "type": "contact_field_set", "field": "email", "value": "not-an-email"},
               {"id": "never", "type": "tag_add", "tag": "never"}]
    run = run_flow(org, contact, [("do", "action_group", {"actions": actions}), ("fix", "end", {"reason": "fixup"})],
                   [("do", "error", "fix")])
    step = steps_of(run)[0]
    assert (step.outcome, step.exited_via_port_key, step.error["action_id"]) == ("failed", "error", "bad")
    assert len(step.payload["actions"]) == 1
    assert run.exit_reason == "fixup"
    contact.refresh_from_db()
    assert "never" not in contact.tags


def test_action_group_abort_without_an_error_edge_fails_the_run(org, contact, conv):
    actions = [{"id": "bad", "type": "contact_field_set", "field": "email", "value": "not-an-email"}]
    run = run_flow(org, contact, [("do", "action_group", {"actions": actions})])
    assert (run.status, run.exit_reason) == ("failed", "handler_failure")
    assert steps_of(run)[0].error["action_id"] == "bad"


def test_action_group_pause_parks_the_run_at_its_next_node(org, contact, conv):
    actions = [{"id": "p", "type": "pause_automations_for_contact", "minutes": 30}]
    run = run_flow(org, contact, [("do", "action_group", {"actions": actions}), ("next", "end", {})],
                   [("do", "next", "next")])
    assert (run.status, run.waiting_for, run.current_node_key) == ("waiting", "external_event", "next")
    control = ContactAutomationControl.objects.get(contact=contact)
    assert control.automation_id is None and control.paused_until > timezone.now() + timedelta(minutes=29)
    assert ScheduledJob.objects.filter(kind="pause_expiry", payload__control_id=control.pk).exists()


def test_action_group_resume_lifts_a_pause_after_commit(org, contact, conv, django_capture_on_commit_callbacks):
    other = factories.automation(org)
    ContactAutomationControl.objects.create(organization=org, contact=contact, automation=other)
    actions = [{"id": "r", "type": "resume_automations_for_contact", "automation_id": other.pk}]
    with django_capture_on_commit_callbacks(execute=True):
        run = run_flow(org, contact, [("do", "action_group", {"actions": actions})])
    assert run.status == "completed"
    assert not ContactAutomationControl.objects.filter(contact=contact).exists()


def test_action_group_notify_admin_logs_after_commit(org, contact, conv, caplog, django_capture_on_commit_callbacks):
    actions = [{"id": "n", "type": "notify_admin", "message": "{{contact.name}} needs help"}]
    with caplog.at_level(logging.WARNING, logger="relay.notify_admin"), \
            django_capture_on_commit_callbacks(execute=True):
        run_flow(org, contact, [("do", "action_group", {"actions": actions})])
    assert f"{contact.name} needs help" in caplog.text


def test_action_group_webhook_out_posts_json(org, contact, conv, settings):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    with factories.local_http_server({"/hook": (204, {}, b""), "/down": (500, {}, b"no")}) as server:
        actions = [{"id": "w", "type": "webhook_out", "url": f"{server.url}/hook",
                    "body": {"who": "{{contact.name}}"}},
                   {"id": "x", "type": "webhook_out", "url": f"{server.url}/down", "on_error": "continue"}]
        run = run_flow(org, contact, [("do", "action_group", {"actions": actions})])
    assert server.requests[0]["method"] == "POST"
    assert json.loads(server.requests[0]["body"]) == {"who": contact.name}
    results = steps_of(run)[0].payload["actions"]
    assert (results[0]["status"], results[1]["ok"], results[1]["error"]["code"]) == (204, False, "http_status")


def test_contact_rows_are_not_written_until_the_step_persists(org, contact, conv):
    """A stale writer's contact changes vanish with its run write."""
    automation = factories.automation(org, factories.flow([("do", "action_group", {"actions": [
        {"id": "t", "type": "tag_add", "tag": "once"}]})]), status="active")
    run = enroll(automation, contact).run
    stale = AutomationRun.objects.get(pk=run.pk)
    advance(run.pk)
    Contact.objects.filter(pk=contact.pk).update(tags=[])
    assert advance(stale) is None
    contact.refresh_from_db()
    assert contact.tags == []


def test_action_group_error_port_iff_an_action_aborts():
    aborting = {"actions": [{"id": "1", "type": "tag_add", "tag": "x"}]}  # on_error defaults to abort
    continuing = {"actions": [{"id": "1", "type": "tag_add", "tag": "x", "on_error": "continue"}]}
    mixed = {"actions": [continuing["actions"][0], {"id": "2", "type": "tag_remove", "tag": "y", "on_error": "abort"}]}
    assert ports("action_group", aborting) == ["next", "error"]
    assert ports("action_group", continuing) == ["next"]
    assert ports("action_group", mixed) == ["next", "error"]
    assert ports("action_group", {"actions": []}) == ["next"]


@pytest.mark.parametrize("action, code", [
    ({"id": "1", "type": "launch_rocket"}, "unknown_action_type"),
    ({"type": "tag_add", "tag": "x"}, "invalid_config"),
    ({"id": "1", "type": "tag_add"}, "invalid_config"),
    ({"id": "1", "type": "tag_add", "tag": ""}, "invalid_config"),
    ({"id": "1", "type": "field_set", "field": "plan"}, "invalid_config"),
    ({"id": "1", "type": "contact_field_set", "field": "tags", "value": "x"}, "invalid_config"),
    ({"id": "1", "type": "pause_automations_for_contact", "automation_id": "nope"}, "invalid_config"),
    ({"id": "1", "type": "pause_automations_for_contact", "minutes": 0}, "invalid_config"),
    ({"id": "1", "type": "webhook_out", "url": "javascript:alert(1)"}, "invalid_url"),
    ({"id": "1", "type": "webhook_out", "url": "https://x.test", "method": "BREW"}, "invalid_config"),
    ({"id": "1", "type": "notify_admin", "message": ""}, "invalid_config"),
    ({"id": "1", "type": "tag_add", "tag": "x", "on_error": "explode"}, "invalid_config"),
])
def test_action_errors(action, code):
    assert code in codes(errors("action_group", {"actions": [action]}))


def test_duplicate_action_ids_and_empty_groups():
    duplicate = {"actions": [{"id": "1", "type": "tag_add", "tag": "a"}, {"id": "1", "type": "tag_add", "tag": "b"}]}
    assert "duplicate_id" in codes(errors("action_group", duplicate))
    assert codes(warnings("action_group", {"actions": []})) == ["empty_actions"]


def test_action_automation_reference_must_exist_in_the_org(org, other_org):
    mine = factories.automation(org)
    foreign = factories.automation(other_org)
    config = {"actions": [{"id": "1", "type": "pause_automations_for_contact", "automation_id": foreign.id}]}
    assert codes(errors("action_group", config, mine)) == ["unknown_automation"]
    config["actions"][0]["automation_id"] = mine.id
    assert errors("action_group", config, mine) == []
