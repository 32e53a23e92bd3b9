"""runtime.effects: the transactional outbox for messages, providers, and the capped outbound HTTP client."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.channels.sandbox import SandboxProvider
from automations.models import AutomationRun, StepRun
from automations.runtime import effects, outbound_http
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from contacts.models import Message
from tests import factories

pytestmark = pytest.mark.usefixtures("eager_celery")


@pytest.fixture
def conv(contact, account):
    return factories.conversation(contact, account)


def hello_run(org, contact, text="hello"):
    automation = factories.automation(org, factories.flow([("say", "message", {"blocks": [
        {"type": "text", "text": text}]})]), status="active")
    return enroll(automation, contact).run


class OutboxProvider(SandboxProvider):
    """A provider that talks to a network: its messages go through the outbox (delivered after commit)."""

    records_in_transaction = False

    def __init__(self):
        self.delivered = []

    def deliver(self, message):
        self.delivered.append(message.pk)
        return f"net-{message.pk}"


@pytest.fixture
def outbox(monkeypatch):
    provider = OutboxProvider()
    monkeypatch.setitem(effects.PROVIDERS, "sandbox", provider)
    return provider


def test_the_sandbox_records_a_message_sent_in_the_run_transaction(org, contact, conv, monkeypatch,
                                                                   django_capture_on_commit_callbacks):
    handed_over = []
    monkeypatch.setattr(effects, "deliver_messages", lambda ids: handed_over.extend(ids))
    run = hello_run(org, contact)
    with django_capture_on_commit_callbacks(execute=True):
        advance(run.pk)
    message = Message.objects.get(run_id=run.pk)
    assert (message.status, message.provider_message_id) == ("sent", f"sandbox-{message.pk}")
    assert message.sent_at is not None and handed_over == []


class FailingProvider:
    name = "sandbox"

    def __init__(self, refuse_account=False):
        self.refuse_account = refuse_account
        self.delivered = []

    def check(self, account):
        if self.refuse_account:
            raise effects.DeliveryError("token_expired", "the account's token expired")

    def deliver(self, message):
        self.delivered.append(message.pk)
        raise effects.DeliveryError("rejected", "provider said no")


def test_outbox_row_is_written_with_the_step_and_delivered_after_commit(org, contact, conv, outbox,
                                                                        django_capture_on_commit_callbacks):
    run = hello_run(org, contact)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        advance(run.pk)
    message = Message.objects.get(run_id=run.pk)
    step = StepRun.objects.get(run_id=run.pk)
    assert (message.status, message.text, step.payload["message_id"]) == ("pending", "hello", message.pk)
    assert len(callbacks) == 1  # delivery waits for the commit
    callbacks[0]()
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == ("sent", f"net-{message.pk}")
    assert message.sent_at is not None and outbox.delivered == [message.pk]


def test_delivery_is_idempotent(org, contact, conv, outbox):
    run = hello_run(org, contact)
    advance(run.pk)
    message = Message.objects.get(run_id=run.pk)
    assert effects.deliver_messages([message.pk]) == 1
    sent_at = Message.objects.get(pk=message.pk).sent_at
    assert effects.deliver_messages([message.pk]) == 0
    assert Message.objects.get(pk=message.pk).sent_at == sent_at


def test_a_provider_failure_after_commit_marks_the_message_failed(org, contact, conv, monkeypatch):
    provider = FailingProvider()
    monkeypatch.setitem(effects.PROVIDERS, "sandbox", provider)
    run = hello_run(org, contact)
    advance(run.pk)
    message = Message.objects.get(run_id=run.pk)
    assert effects.deliver_messages([message.pk]) == 0
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", "provider said no")
    assert effects.deliver_messages([message.pk]) == 0 and provider.delivered == [message.pk]


def test_an_account_the_provider_refuses_fails_the_run_without_an_error_edge(org, contact, conv, monkeypatch):
    monkeypatch.setitem(effects.PROVIDERS, "sandbox", FailingProvider(refuse_account=True))
    run = hello_run(org, contact)
    advance(run.pk)
    run.refresh_from_db()
    step = StepRun.objects.get(run_id=run.pk)
    assert (step.outcome, step.exited_via_port_key, step.error["code"]) == ("failed", None, "token_expired")
    assert (run.status, run.exit_reason, run.current_port_key) == ("failed", "handler_failure", None)
    assert not Message.objects.filter(run_id=run.pk).exists()


def test_a_provider_crash_on_one_message_leaves_only_that_one_pending(org, contact, conv, monkeypatch):
    class FlakyProvider(OutboxProvider):
        def deliver(self, message):
            if message.text == "first":
                raise ConnectionError("provider unreachable")
            return super().deliver(message)

    provider = FlakyProvider()
    monkeypatch.setitem(effects.PROVIDERS, "sandbox", provider)
    automation = factories.automation(org, factories.flow([("say", "message", {"blocks": [
        {"type": "text", "text": "first"}, {"type": "text", "text": "second"}]})]), status="active")
    run = enroll(automation, contact).run
    advance(run.pk)
    first, second = (Message.objects.get(run_id=run.pk, text=text) for text in ("first", "second"))
    assert effects.deliver_messages([first.pk, second.pk]) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status, provider.delivered) == ("pending", "sent", [second.pk])


def test_the_sweeper_delivers_messages_left_pending(org, contact, conv, outbox):
    run = hello_run(org, contact)
    advance(run.pk)  # in a test transaction the on-commit delivery never runs: the row stays pending
    Message.objects.filter(run_id=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert effects.deliver_pending(older_than_seconds=60) == 1
    assert Message.objects.get(run_id=run.pk).status == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_committed_run_delivers_its_messages(org, contact, conv, outbox):
    run = hello_run(org, contact)  # eager advance_run after the enrollment commits
    assert AutomationRun.objects.get(pk=run.pk).status == "completed"
    message = Message.objects.get(run_id=run.pk)
    assert (message.status, outbox.delivered) == ("sent", [message.pk])


def test_the_tick_sweeps_the_outbox(org, contact, conv, outbox):
    from automations.runtime.scheduler import tick

    run = hello_run(org, contact)
    advance(run.pk)  # in a test transaction the on-commit delivery never runs: the row stays pending
    Message.objects.filter(run_id=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert tick().redelivered == 1
    assert Message.objects.get(run_id=run.pk).status == "sent"


# -- outbound HTTP ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://localhost:8080/x", "http://10.1.2.3/",
                                 "http://192.168.0.10/", "http://169.254.169.254/latest/meta-data",
                                 "http://[::1]/", "http://0.0.0.0/"])
def test_private_loopback_and_link_local_destinations_are_refused(settings, url):
    settings.RELAY_HTTP_ALLOW_PRIVATE = False
    with pytest.raises(outbound_http.HttpError) as caught:
        outbound_http.perform("GET", url)
    assert caught.value.code == "destination_refused"


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "http://", "not a url"])
def test_only_http_urls_are_allowed(settings, url):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    with pytest.raises(outbound_http.HttpError) as caught:
        outbound_http.perform("GET", url)
    assert caught.value.code == "invalid_url"


def test_redirects_are_returned_not_followed(settings):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    with factories.local_http_server({"/go": (302, {"Location": "/secret"}, b""),
                                      "/secret": (200, {}, b"secret")}) as server:
        response = outbound_http.perform("GET", server.url + "/go")
    assert (response.status, response.headers["location"], response.ok) == (302, "/secret", False)
    assert [r["path"] for r in server.requests] == ["/go"]


def test_timeout_is_capped_at_thirty_seconds(settings, monkeypatch):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    seen = {}

    def fake_request(session, method, url, **kwargs):  # the network is the boundary: capture what we would send
        seen.update(kwargs)
        raise outbound_http.requests.ConnectionError("offline")

    monkeypatch.setattr(outbound_http, "resolve", lambda host, port: ["93.184.215.14"])
    monkeypatch.setattr(outbound_http.requests.Session, "request", fake_request)
    with pytest.raises(outbound_http.HttpError):
        outbound_http.perform("GET", "http://example.test/", timeout_ms=120_000)
    assert seen["timeout"] == (30.0, 30.0) and seen["allow_redirects"] is False and seen["stream"] is True


def test_text_and_json_bodies_are_decoded(settings):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    routes = {"/j": (200, {"Content-Type": "application/json"}, b'{"a": [1, 2]}'),
              "/t": (201, {"Content-Type": "text/plain; charset=utf-8"}, "héllo".encode())}
    with factories.local_http_server(routes) as server:
        assert outbound_http.perform("GET", server.url + "/j").body == {"a": [1, 2]}
        response = outbound_http.perform("POST", server.url + "/t", body={"x": 1})
    assert (response.status, response.body, response.ok) == (201, "héllo", True)
    assert server.requests[1]["body"] == b'{"x": 1}'


def test_contact_changes_are_announced_after_commit_one_level_deeper(org, contact, conv,
                                                                     django_capture_on_commit_callbacks):
    from contacts.signals import contact_changed

    seen = []

    def listener(sender, **kwargs):
        seen.append(kwargs)

    contact_changed.connect(listener)
    try:
        automation = factories.automation(org, factories.flow([("do", "action_group", {"actions": [
            {"id": "a", "type": "tag_add", "tag": "lead"}, {"id": "b", "type": "field_set", "field": "plan",
                                                            "value": "pro"}]})]), status="active")
        run = enroll(automation, contact, trigger_depth=2).run
        with django_capture_on_commit_callbacks(execute=True):
            advance(run.pk)
    finally:
        contact_changed.disconnect(listener)
    [event] = [e for e in seen if e["contact"].pk == contact.pk]
    assert (event["tags_added"], event["fields_changed"], event["trigger_depth"]) == (
        ["lead"], {"plan": (None, "pro")}, 3)
