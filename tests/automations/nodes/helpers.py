"""Shared by the per-kind node tests: run a small flow through the real runner, read its steps, ask a
kind's module for its ports and config issues."""

from django.utils import timezone

from automations.graph.config_checks import is_warning
from automations.models import AutomationRun, StepRun
from automations.nodes import registry
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from tests import factories

NOW = timezone.now().replace(microsecond=0)


def run_flow(org, contact, nodes, edges=(), *, context=None, channel="instagram", now=None):
    automation = factories.automation(org, factories.flow(nodes, edges), status="active", channel=channel)
    result = enroll(automation, contact, context=context)
    assert result.ok, result.blocked
    advance(result.run.pk, now=now)
    return AutomationRun.objects.get(pk=result.run.pk)


def steps_of(run):
    return list(StepRun.objects.filter(run_id=run.pk).order_by("executed_at", "id"))


def assert_failed_without_error_edge(run, node_key, error_code):
    """The run ended failed/handler_failure at `node_key`; its step kept the error; counted as failed."""
    assert (run.status, run.exit_reason, run.current_node_key) == ("failed", "handler_failure", node_key)
    [step] = steps_of(run)
    assert (step.outcome, step.exited_via_port_key, step.error["code"]) == ("failed", None, error_code)
    run.automation.refresh_from_db()
    assert (run.automation.total_failed, run.automation.total_completed) == (1, 0)


def ports(kind, config):
    return registry.get(kind).derive_ports(config)


def issues(kind, config, automation=None):
    return registry.get(kind).validate(config, automation=automation)


def errors(kind, config, automation=None):
    return [i for i in issues(kind, config, automation) if not is_warning(i)]


def warnings(kind, config, automation=None):
    return [i for i in issues(kind, config, automation) if is_warning(i)]


def codes(found):
    return [i["code"] for i in found]


def text(t="Hello {{contact.name}}", **extra):
    return {"type": "text", "text": t, **extra}


def branch(button_id, label="Go"):
    return {"id": button_id, "type": "branch", "label": label}


VALID = {
    "message": {"blocks": [text(buttons=[branch("a")])], "quick_replies": [{"id": "q", "label": "Q"}],
                "no_response_timeout_min": 10},
    "input": {"field": "email", "input_type": "email", "max_retries": 3, "timeout_min": 60, "skip_allowed": True},
    "delay": {"minutes": 5},
    "wait_event": {"event_kinds": ["dm_received", "comment_created"], "timeout_min": 30},
    "condition": {"predicates": {"all": [{"field": "tags", "op": "contains", "value": "vip"}]}},
    "randomizer": {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 2.5, "label": "B"}]},
    "action_group": {"actions": [{"id": "1", "type": "tag_add", "tag": "lead"},
                                 {"id": "2", "type": "field_set", "field": "plan", "value": "{{context.plan}}"},
                                 {"id": "3", "type": "field_clear", "field": "old"},
                                 {"id": "4", "type": "contact_field_set", "field": "email", "value": "{{context.e}}"},
                                 {"id": "5", "type": "pause_automations_for_contact", "minutes": 60},
                                 {"id": "6", "type": "resume_automations_for_contact"},
                                 {"id": "7", "type": "webhook_out", "url": "https://hooks.test/x", "method": "POST",
                                  "headers": {"X-A": "1"}, "body": {"id": "{{contact.id}}"}, "on_error": "continue"},
                                 {"id": "8", "type": "notify_admin", "message": "New lead"}]},
    "http_request": {"method": "POST", "url": "https://api.test/{{context.id}}", "headers": {"A": "b"},
                     "body": "{}", "timeout_ms": 30000, "response_key": "api"},
    "start_automation": {"target_automation_id": "auto_x", "pass_context": True},
    "goto": {"target_node_key": "start"},
    "end": {"reason": "bought"},
}
