"""One behaviour test (or a few) per node kind, through the real runner."""

import json
import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationRun, ScheduledJob, StepRun
from automations.runtime.enrollment import enroll
from automations.runtime.resume import resume_waiting
from automations.runtime.runner import advance
from contacts.models import Contact, ContactAutomationControl, Message
from tests import factories

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def conv(contact, account):
    return factories.conversation(contact, account)


pytestmark = pytest.mark.usefixtures("eager_celery")


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


# -- message --------------------------------------------------------------------------------------------

def test_message_sends_text_buttons_and_quick_replies_then_waits(org, contact, conv):
    config = {"blocks": [{"type": "text", "text": "Hi {{contact.name}}, size? {{context.nope|pick one}}",
                          "buttons": [{"id": "big", "type": "branch", "label": "Big"},
                                      {"id": "site", "type": "url", "label": "Site", "url": "https://x.test"}]}],
              "quick_replies": [{"id": "later", "label": "Later"}], "no_response_timeout_min": 30}
    run = run_flow(org, contact, [("greet", "message", config), ("big", "end", {"reason": "big"})],
                   [("greet", "button.big", "big")], now=NOW)
    assert (run.status, run.waiting_for, run.current_node_key, run.waiting_until) == (
        "waiting", "reply", "greet", NOW + timedelta(minutes=30))
    message = Message.objects.get(run_id=run.pk)
    assert (message.direction, message.status, message.conversation_id, message.node_key) == (
        "outbound", "sent", conv.pk, "greet")  # the sandbox records the message sent with the step
    assert message.text == f"Hi {contact.name}, size? pick one"
    assert [b["id"] for b in message.payload["buttons"]] == ["big", "site"]
    assert message.payload["quick_replies"] == [{"id": "later", "label": "Later"}]
    [step] = steps_of(run)
    assert (step.outcome, step.exited_via_port_key, step.payload["message_id"]) == ("waiting", None, message.pk)
    job = ScheduledJob.objects.get(run=run)
    assert (job.kind, job.due_at, job.payload["port_key"]) == ("no_response_timeout", NOW + timedelta(minutes=30),
                                                              "no_response")
    assert resume_waiting(run, "button.big", payload={"button_id": "big"})
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("completed", "big")


def test_plain_message_continues_through_next_and_wait_for_reply_waits(org, contact, conv):
    second = {"blocks": [{"type": "text", "text": "two"}], "wait_for_reply": True}
    run = run_flow(org, contact, [("a", "message", {"blocks": [{"type": "text", "text": "one"}]}),
                                  ("b", "message", second)], [("a", "next", "b")])
    assert (run.status, run.waiting_for, run.current_node_key) == ("waiting", "reply", "b")
    assert list(Message.objects.filter(run_id=run.pk).order_by("created_at").values_list("text", flat=True)) == [
        "one", "two"]
    assert not ScheduledJob.objects.filter(run=run).exists()  # no no_response_timeout_min: no job


def test_message_without_a_conversation_leaves_through_error(org, account):
    lonely = factories.contact(org)  # no identity on any account: nowhere to send
    run = run_flow(org, lonely, [("greet", "message", {"blocks": [{"type": "text", "text": "hi"}]}),
                                 ("oops", "end", {"reason": "undeliverable"})], [("greet", "error", "oops")])
    assert (run.status, run.exit_reason) == ("completed", "undeliverable")
    step = steps_of(run)[0]
    assert (step.outcome, step.exited_via_port_key, step.error["code"]) == ("failed", "error", "no_conversation")
    assert not Message.objects.filter(run_id=run.pk).exists()


def test_message_parts_the_channel_cannot_carry_are_skipped(org):
    account = factories.social_account(org, channel="whatsapp")
    person = factories.contact(org, account=account)
    factories.conversation(person, account)
    card = {"type": "card", "title": "A card"}
    run = run_flow(org, person, [("greet", "message", {"blocks": [card]})], channel="whatsapp")
    step = steps_of(run)[0]
    assert (step.outcome, step.exited_via_port_key, step.error["code"]) == ("failed", None, "nothing_deliverable")
    assert step.payload["skipped"][0]["type"] == "card"
    assert (run.status, run.exit_reason) == ("failed", "handler_failure")


def test_message_delivery_failure_without_an_error_edge_fails_the_run(org, contact, conv, monkeypatch):
    from automations.runtime import effects
    from tests.automations.test_effects import FailingProvider

    monkeypatch.setitem(effects.PROVIDERS, "sandbox", FailingProvider(refuse_account=True))
    run = run_flow(org, contact, [("greet", "message", {"blocks": [{"type": "text", "text": "hi"}]})])
    assert_failed_without_error_edge(run, "greet", "token_expired")


# -- input ----------------------------------------------------------------------------------------------

def test_input_waits_with_timeout_and_captures_through_resume(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "email", "input_type": "email", "timeout_min": 10}),
                                  ("ok", "end", {})], [("ask", "captured", "ok")], now=NOW)
    assert (run.status, run.waiting_for, run.waiting_until) == ("waiting", "input", NOW + timedelta(minutes=10))
    job = ScheduledJob.objects.get(run=run)
    assert (job.kind, job.due_at, job.payload) == ("input_timeout", NOW + timedelta(minutes=10),
                                                  {"node_key": "ask", "port_key": "timeout"})
    assert steps_of(run)[0].payload["field"] == "email"
    assert resume_waiting(run, "captured", context_updates={"email": "a@b.co"})
    run.refresh_from_db()
    assert (run.status, run.context) == ("completed", {"email": "a@b.co"})


# -- delay ----------------------------------------------------------------------------------------------

def test_delay_waits_and_schedules_resume_delay(org, contact, conv):
    run = run_flow(org, contact, [("pause", "delay", {"minutes": 2, "seconds": 30}), ("bye", "end", {})],
                   [("pause", "next", "bye")], now=NOW)
    due = NOW + timedelta(seconds=150)
    assert (run.status, run.waiting_for, run.waiting_until) == ("waiting", "delay", due)
    job = ScheduledJob.objects.get(run=run)
    assert (job.kind, job.due_at, job.payload["port_key"]) == ("resume_delay", due, "next")
    assert resume_waiting(run, "next")
    run.refresh_from_db()
    assert run.status == "completed"


# -- wait_event -----------------------------------------------------------------------------------------

def test_wait_event_waits_for_an_inbound_event(org, contact, conv):
    run = run_flow(org, contact, [("hold", "wait_event", {"event_kinds": ["comment_created"], "timeout_min": 60}),
                                  ("got", "end", {"reason": "commented"})], [("hold", "received", "got")], now=NOW)
    assert (run.status, run.waiting_for, run.waiting_until) == ("waiting", "inbound_event", NOW + timedelta(hours=1))
    assert ScheduledJob.objects.get(run=run).kind == "wait_event_timeout"
    assert resume_waiting(run, "received", context_updates={"comment": "nice"})
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("completed", "commented")


# -- condition ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("tags", "port"), [(["vip"], "true"), ([], "false")])
def test_condition_branches_on_contact_and_context(org, account, tags, port):
    person = factories.contact(org, account=account, tags=tags)
    predicates = {"all": [{"field": "tags", "op": "contains", "value": "vip"},
                          {"field": "context.total", "op": "gt", "value": 40}]}
    run = run_flow(org, person, [("check", "condition", {"predicates": predicates})], context={"total": 42})
    assert (run.current_port_key, steps_of(run)[0].payload) == (port, {"result": port == "true"})


# -- randomizer -----------------------------------------------------------------------------------------

def test_randomizer_picks_by_weight_and_stores_the_pick(org, contact, conv):
    variants = {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 1e-9}]}
    run = run_flow(org, contact, [("split", "randomizer", variants)])
    assert run.current_port_key == "variant.a"
    assert run.context["_randomizer"] == {"split": "a"}


def test_randomizer_is_sticky_within_a_run(org, contact, conv):
    variants = {"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 1e-9}]}
    run = run_flow(org, contact, [("split", "randomizer", variants)], context={"_randomizer": {"split": "b"}})
    step = steps_of(run)[0]
    assert (run.current_port_key, step.payload) == ("variant.b", {"variant": "b", "reused": True})


# -- action_group ---------------------------------------------------------------------------------------

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


# -- http_request ---------------------------------------------------------------------------------------

def test_http_request_success_stores_the_response_in_context(org, contact, conv, settings):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    routes = {"/orders": (200, {"Content-Type": "application/json", "X-Secret": "s"}, b'{"status": "shipped"}')}
    with factories.local_http_server(routes) as server:
        config = {"method": "POST", "url": f"{server.url}/orders?id={{{{context.order_id}}}}",
                  "headers": {"Authorization": "Bearer {{context.token}}"}, "body": '{"id": "{{context.order_id}}"}',
                  "response_key": "order", "timeout_ms": 5000}
        run = run_flow(org, contact, [("call", "http_request", config), ("ok", "end", {})], [("call", "success", "ok")],
                       context={"order_id": "42", "token": "t0k"})
    request = server.requests[0]
    assert (request["path"], request["headers"]["Authorization"], request["body"]) == (
        "/orders?id=42", "Bearer t0k", b'{"id": "42"}')
    assert run.status == "completed"
    order = run.context["order"]
    assert (order["status"], order["body"], order["headers"]["content-type"]) == (200, {"status": "shipped"},
                                                                                "application/json")
    assert "x-secret" not in {name.lower() for name in order["headers"]}  # only a safe subset of headers
    step = steps_of(run)[0]
    assert step.payload["request"]["headers"]["Authorization"] == "[redacted]"
    assert step.payload["response"]["status"] == 200


@pytest.mark.django_db(transaction=True)
def test_http_request_commits_the_run_before_calling_out(org, contact, conv, settings, eager_celery):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    seen = {}

    def capture(handler):
        # Another connection, while the call is in flight, sees the committed state of the run.
        import psycopg
        from django.db import connection

        db = connection.settings_dict
        with psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
                             host=db["HOST"] or None, port=db["PORT"] or None) as other:
            seen["run"] = other.execute("SELECT status, current_node_key FROM automation_runs WHERE contact_id = %s",
                                        [contact.pk]).fetchone()
            seen["steps"] = other.execute("SELECT node_key FROM automation_step_runs").fetchall()
            seen["messages"] = other.execute("SELECT text FROM messages").fetchall()
        return 200, {}, b"ok"

    with factories.local_http_server({"/": capture}) as server:
        run = run_flow(org, contact, [("hello", "message", {"blocks": [{"type": "text", "text": "hi"}]}),
                                      ("call", "http_request", {"method": "GET", "url": server.url + "/"})],
                       [("hello", "next", "call")])
    assert seen == {"run": ("active", "call"), "steps": [("hello",)], "messages": [("hi",)]}
    assert (run.status, run.current_port_key) == ("completed", "success")


@pytest.mark.parametrize(("route", "config", "code"), [
    ("/boom", {}, "http_status"),
    ("/slow", {"timeout_ms": 200}, "timeout"),
    ("/huge", {}, "response_too_large"),
    ("/ok", {"body": "x" * (256 * 1024 + 1)}, "request_too_large"),
])
def test_http_request_failures_leave_through_error(org, contact, conv, settings, route, config, code):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True

    def slow(handler):
        time.sleep(1)
        return 200, {}, b"late"

    routes = {"/boom": (500, {}, b"down"), "/slow": slow, "/huge": (200, {}, b"x" * (512 * 1024 + 1)),
              "/ok": (200, {}, b"ok")}
    with factories.local_http_server(routes) as server:
        node = {"method": "POST", "url": server.url + route, "response_key": "r", **config}
        run = run_flow(org, contact, [("call", "http_request", node), ("bad", "end", {"reason": "http_failed"})],
                       [("call", "error", "bad")])
    step = steps_of(run)[0]
    assert (step.outcome, step.exited_via_port_key, step.error["code"]) == ("failed", "error", code)
    assert run.exit_reason == "http_failed"


def test_http_request_500_without_an_error_edge_fails_the_run(org, contact, conv, settings):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    with factories.local_http_server({"/boom": (500, {}, b"down")}) as server:
        run = run_flow(org, contact, [("call", "http_request", {"method": "GET", "url": server.url + "/boom"})])
    assert_failed_without_error_edge(run, "call", "http_status")


def test_action_group_abort_without_an_error_edge_fails_the_run(org, contact, conv):
    actions = [{"id": "bad", "type": "contact_field_set", "field": "email", "value": "not-an-email"}]
    run = run_flow(org, contact, [("do", "action_group", {"actions": actions})])
    assert (run.status, run.exit_reason) == ("failed", "handler_failure")
    assert steps_of(run)[0].error["action_id"] == "bad"


def test_http_request_refuses_private_destinations_by_default(org, contact, conv, settings):
    settings.RELAY_HTTP_ALLOW_PRIVATE = False
    with factories.local_http_server({"/": (200, {}, b"secret")}) as server:
        run = run_flow(org, contact, [("call", "http_request", {"method": "GET", "url": server.url + "/"})])
    assert server.requests == []
    step = steps_of(run)[0]
    assert (step.outcome, step.exited_via_port_key, step.error["code"]) == ("failed", None, "destination_refused")
    assert (run.status, run.exit_reason, run.current_node_key) == ("failed", "handler_failure", "call")


# -- start_automation -----------------------------------------------------------------------------------

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


# -- goto / end -----------------------------------------------------------------------------------------

def test_goto_jumps_to_its_target(org, contact, conv):
    run = run_flow(org, contact, [("jump", "goto", {"target_node_key": "far"}), ("near", "end", {"reason": "near"}),
                                  ("far", "end", {"reason": "far"})])
    assert run.exit_reason == "far"
    assert [s.node_key for s in steps_of(run)] == ["jump", "far"]


def test_goto_to_a_missing_node_completes(org, contact, conv):
    run = run_flow(org, contact, [("jump", "goto", {"target_node_key": "gone"})])
    assert (run.status, run.exit_reason, run.current_node_key) == ("completed", "completed", "jump")


def test_end_defaults_to_completed(org, contact, conv):
    run = run_flow(org, contact, [("stop", "end", {})])
    assert (run.status, run.exit_reason) == ("completed", "completed")


def test_merge_tags_never_crash_a_run(org, contact, conv):
    weird = "{{contact.}} {{}} {{context.a.b.c}} {{fields.x|fallback}} {{unknown.thing}} {{ contact.name"
    run = run_flow(org, contact, [("say", "message", {"blocks": [{"type": "text", "text": weird}]})])
    assert run.status == "completed"
    assert "fallback" in Message.objects.get(run_id=run.pk).text


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


# -- Idempotency-Key on calls out ---------------------------------------------------------------------

class WorkerKilled(BaseException):
    """Stands in for the process dying in the middle of a call (nothing after it runs)."""


def idempotency_key(headers: dict):
    return next((value for name, value in headers.items() if name.lower() == "idempotency-key"), None)


def test_a_call_repeated_after_a_crash_carries_the_same_idempotency_key(org, contact, conv, settings, monkeypatch):
    from automations.runtime import outbound_http

    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    real_perform, calls = outbound_http.perform, []

    def perform(method, url, **kwargs):
        calls.append(idempotency_key(kwargs["headers"]))
        if len(calls) == 1:
            raise WorkerKilled()
        return real_perform(method, url, **kwargs)

    monkeypatch.setattr(outbound_http, "perform", perform)
    with factories.local_http_server({"/": (200, {}, b"ok")}) as server:
        call = {"method": "POST", "url": server.url + "/"}
        automation = factories.automation(org, factories.flow(
            [("hello", "message", {"blocks": [{"type": "text", "text": "hi"}]}), ("call", "http_request", call),
             ("again", "http_request", call), ("third", "goto", {"target_node_key": "fourth"}),
             ("fourth", "action_group", {"actions": [
                 {"id": "a", "type": "webhook_out", "url": server.url + "/"},
                 {"id": "b", "type": "webhook_out", "url": server.url + "/", "headers": {"idempotency-key": "mine"}},
                 {"id": "c", "type": "webhook_out", "url": server.url + "/"}]})],
            [("hello", "next", "call"), ("call", "success", "again"), ("again", "success", "third")]), status="active")
        run = enroll(automation, contact).run
        with pytest.raises(WorkerKilled):
            advance(run.pk)
        advance(run.pk)  # recovery: the interrupted visit is repeated
    run.refresh_from_db()
    assert run.status == "completed"
    crashed, retried, again, first, own, third = calls
    assert crashed == retried and crashed.startswith("relay-")
    assert len({retried, again, first, third}) == 4 and own == "mine"
    assert [idempotency_key(r["headers"]) for r in server.requests] == [retried, again, first, own, third]
    other_run = enroll(factories.automation(org, automation.graph, status="active"), contact).run
    with factories.local_http_server({"/": (200, {}, b"ok")}) as server:
        advance(other_run.pk)
    assert calls[6] not in calls[:6]
