"""`http_request`: one outgoing call, committed before it is made, its failures, the Idempotency-Key a
repeated call carries, its ports and config checks."""

import time

import pytest

from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from tests import factories
from tests.automations.nodes.helpers import (
    VALID,
    assert_failed_without_error_edge,
    codes,
    errors,
    ports,
    run_flow,
    steps_of,
)

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


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


def test_http_request_refuses_private_destinations_by_default(org, contact, conv, settings):
    settings.RELAY_HTTP_ALLOW_PRIVATE = False
    with factories.local_http_server({"/": (200, {}, b"secret")}) as server:
        run = run_flow(org, contact, [("call", "http_request", {"method": "GET", "url": server.url + "/"})])
    assert server.requests == []
    step = steps_of(run)[0]
    assert (step.outcome, step.exited_via_port_key, step.error["code"]) == ("failed", None, "destination_refused")
    assert (run.status, run.exit_reason, run.current_node_key) == ("failed", "handler_failure", "call")


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


def test_http_request_ports():
    assert ports("http_request", {}) == ['success', 'error']


@pytest.mark.parametrize("change, code", [
    ({"method": "FETCH"}, "invalid_config"),
    ({"url": "not a url"}, "invalid_url"),
    ({"timeout_ms": 30001}, "timeout_too_long"),
    ({"timeout_ms": 0}, "invalid_config"),
    ({"response_key": "has space"}, "invalid_config"),
    ({"headers": {"A": 1}}, "invalid_config"),
    ({"body": {"json": "object"}}, "invalid_config"),
    ({"body": "x" * (256 * 1024 + 1)}, "body_too_large"),
])
def test_http_request_errors(change, code):
    assert code in codes(errors("http_request", {**VALID["http_request"], **change}))
