"""`start_automation`: enrolling into another automation, the targets it skips or fails on, its ports and
config checks."""

import pytest

from automations.models import AutomationRun, StepRun
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from contacts.models import Message
from tests import factories
from tests.automations.nodes.helpers import codes, errors, is_warning, issues, ports, run_flow, steps_of

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


def test_start_automation_enrolls_into_the_target_with_context(org, contact, conv, django_capture_on_commit_callbacks,
                                                               eager_celery):
    target = factories.automation(org, factories.flow([("t", "message", {"blocks": [{"type": "text",
                                                                                        "text": "{{context.src}}"}]})]),
                                  status="active")
    with django_capture_on_commit_callbacks(execute=True):
        run = run_flow(org, contact, [("go", "start_automation", {"target_automation_id": target.pk,
                                                                  "pass_context": True})], context={"src": "parent"})
    step = steps_of(run)[0]
    child = AutomationRun.objects.get(automation=target)
    assert step.payload["run_id"] == child.pk and step.payload["blocked"] is None
    assert (child.context, child.trigger_depth, child.conversation_id) == ({"src": "parent"}, 1, conv.pk)
    assert child.status == "completed"  # advanced by the (eager) advance_run task after commit
    assert Message.objects.get(run_id=child.pk).text == "parent"


@pytest.mark.parametrize("case", ["self", "other_channel"])
def test_start_automation_skips_invalid_targets(org, contact, conv, case):
    automation = factories.automation(org, status="active")
    target = {"self": automation,
              "other_channel": factories.automation(org, status="active", channel="telegram")}[case]
    automation.graph = factories.flow([("go", "start_automation", {"target_automation_id": target.pk})])
    automation.save()
    run = enroll(automation, contact).run
    advance(run.pk)
    step = StepRun.objects.get(run_id=run.pk)
    assert (step.outcome, step.exited_via_port_key) == ("skipped", "next")
    assert AutomationRun.objects.filter(contact=contact).count() == 1


@pytest.mark.parametrize("status", ["paused", "archived", "draft"])
@pytest.mark.parametrize("error_edge", [False, True])
def test_start_automation_to_a_target_that_is_not_active_fails(api, org, contact, conv, status, error_edge,
                                                               django_capture_on_commit_callbacks):
    target = factories.automation(org, factories.flow([("t", "end", {})]), status=status)
    nodes = [("go", "start_automation", {"target_automation_id": target.pk}), ("after", "end", {"reason": "after"}),
             ("oops", "end", {"reason": "recovered"})]
    edges = [("go", "next", "after")] + ([("go", "error", "oops")] if error_edge else [])
    automation = factories.automation(org, factories.flow(nodes, edges), status="active")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/v1/automations/{automation.pk}/enroll", {"contact_id": contact.pk}, format="json")
    assert response.status_code == 201, response.json()
    run = api.get(f"/v1/automation-runs/{response.json()['id']}").json()
    step = api.get(f"/v1/automation-runs/{run['id']}/steps").json()["data"][0]
    assert step["node_key"] == "go" and step["outcome"] == "failed"
    assert step["error"]["code"] == "target_not_active"
    assert target.pk in step["error"]["message"] and status in step["error"]["message"]
    assert (step["error"]["target_automation_id"], step["error"]["target_status"]) == (target.pk, status)
    if error_edge:
        assert step["exited_via_port_key"] == "error"
        assert (run["status"], run["exit_reason"]) == ("completed", "recovered")
    else:
        assert step["exited_via_port_key"] is None
        assert (run["status"], run["exit_reason"], run["current_node_key"]) == ("failed", "handler_failure", "go")
    assert not AutomationRun.objects.filter(automation=target).exists()


def test_start_automation_error_port_can_be_wired(api, org):
    target = factories.automation(org, status="active")
    graph = {"root_node_key": "go", "nodes": [
        {"key": "go", "kind": "start_automation", "config": {"target_automation_id": target.pk}},
        {"key": "oops", "kind": "end", "config": {}}],
        "edges": [{"from_node": "go", "from_port": "error", "to_node": "oops"}]}
    data = api.post("/v1/automations", {"name": "f", "channel": "instagram", "graph": graph}, format="json").json()
    assert data["graph_errors"] == [] and data["graph"]["nodes"][0]["ports"] == ["next", "error"]


def test_start_automation_ports():
    assert ports("start_automation", {}) == ['next', 'error']


def test_start_automation_target_rules(org, other_org):
    me = factories.automation(org, channel="instagram")
    active_target = factories.automation(org, channel="instagram", status="active")
    draft_target = factories.automation(org, channel="instagram")
    other_channel = factories.automation(org, channel="telegram", status="active")
    foreign = factories.automation(other_org, channel="instagram", status="active")

    def check(target_id, **extra):
        return issues("start_automation", {"target_automation_id": target_id, **extra}, me)

    assert check(active_target.id) == []
    assert codes(check(me.id)) == ["start_automation_self"]
    assert codes(check(other_channel.id)) == ["channel_mismatch"]
    assert codes(check(foreign.id)) == ["unknown_automation"]
    assert codes(check("auto_missing")) == ["unknown_automation"]
    assert codes(check(draft_target.id)) == ["target_not_active"]
    assert all(is_warning(i) for i in check(draft_target.id))
    assert codes(errors("start_automation", {})) == ["invalid_config"]
    ep = factories.entrypoint(active_target)
    assert check(active_target.id, entrypoint_id=ep.id) == []
    assert codes(check(active_target.id, entrypoint_id="aep_other")) == ["unknown_entrypoint"]
