"""Delivery to the fake platforms in process: what each provider sends, the message's lifecycle
(pending → sent | failed | unknown), how each class of error moves the run, and send pacing.
(tests/channels/test_worker_e2e.py runs the same through a real Celery worker.)"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.channels import http, pacing, telegram
from automations.channels.errors import ChannelError
from automations.channels.registry import get_provider
from automations.models import AutomationRun, SendSlot, StepRun
from automations.runtime import delivery, effects
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from automations.runtime.runs import stop_run
from automations.runtime.scheduler import tick
from contacts.models import Message, SocialAccount
from tests import factories
from tests.channels.helpers import CHANNELS, RECIPIENTS, connected_account, reachable_contact
from tests.helpers import assert_statements

ASK = {"blocks": [{"type": "text", "text": "Small or large?", "buttons": [
    {"id": "s", "type": "branch", "label": "Small"}, {"id": "l", "type": "branch", "label": "Large"}]}]}
HELLO = {"blocks": [{"type": "text", "text": "Hello {{contact.name}}"}]}


@pytest.fixture
def deferred(monkeypatch):
    """Deliveries handed to a later task (pacing, rate limits, retries), instead of queueing them."""
    handed = []
    monkeypatch.setattr(effects, "_deliver_later", lambda ids, outcome: handed.append((list(ids), outcome)))
    return handed


def start(org, fake, provider, nodes, edges=(), account=None, user_id=None):
    account = account or connected_account(org, fake, provider)
    person = reachable_contact(org, account, provider, user_id)
    automation = factories.automation(org, factories.flow(nodes, edges), status="active",
                                      channel=CHANNELS[provider])
    run = enroll(automation, person, social_account=account).run
    return run, account


def go(run_id, capture):
    """Advance and run what follows the commit (the delivery, and the settle it triggers)."""
    with capture(execute=True):
        advance(run_id)
    return AutomationRun.objects.get(pk=run_id)


def steps(run):
    return list(StepRun.objects.filter(run_id=run.pk).order_by("executed_at", "id"))


def test_a_telegram_button_message_goes_out_as_an_inline_keyboard_and_the_run_waits_for_the_tap(
        org, fake_platforms, django_capture_on_commit_callbacks):
    run, _ = start(org, fake_platforms, "telegram", [("ask", "message", ASK)])
    run = go(run.pk, django_capture_on_commit_callbacks)
    (sent,) = fake_platforms.sent("telegram")
    assert sent["json"] == {"chat_id": int(RECIPIENTS["telegram"]), "text": "Small or large?", "reply_markup": {
        "inline_keyboard": [[{"text": "Small", "callback_data": "b:s"}], [{"text": "Large", "callback_data": "b:l"}]]}}
    message = run_messages(run)[0]
    message_id = sent["answer"]["result"]["message_id"]
    assert (message.status, message.provider_message_id) == ("sent", f"{RECIPIENTS['telegram']}:{message_id}")
    assert (run.status, run.waiting_for) == ("waiting", "reply")
    first, second = steps(run)
    assert first.payload["message_id"] == message.pk and second.outcome == "waiting"
    assert second.payload["delivery"] == [{"message_id": message.pk, "status": "sent",
                                           "provider_message_id": message.provider_message_id}]


def run_messages(run):
    return list(Message.objects.filter(run_id=run.pk).order_by("created_at"))


@pytest.mark.parametrize("provider", ["whatsapp", "messenger", "instagram"])
def test_graph_providers_send_buttons_the_platform_accepts(org, fake_platforms, provider,
                                                         django_capture_on_commit_callbacks):
    run, account = start(org, fake_platforms, provider, [("ask", "message", ASK)])
    run = go(run.pk, django_capture_on_commit_callbacks)
    (sent,) = fake_platforms.sent(provider)
    body = sent["json"]
    if provider == "whatsapp":
        assert sent["path"].endswith(f"/{account.external_id}/messages")
        assert sent["headers"]["Authorization"] == f"Bearer {account.credentials['access_token']}"
        assert [b["reply"]["id"] for b in body["interactive"]["action"]["buttons"]] == ["b:s", "b:l"]
    else:
        assert sent["path"].endswith("/me/messages") and sent["query"]["access_token"]
        template = body["message"]["attachment"]["payload"]
        assert [b["payload"] for b in template["buttons"]] == ["b:s", "b:l"]
    message = run_messages(run)[0]
    assert message.status == "sent" and message.provider_message_id
    assert (run.status, run.waiting_for) == ("waiting", "reply")


def test_quick_replies_media_and_cards_render_for_messenger(org, fake_platforms, django_capture_on_commit_callbacks):
    config = {"blocks": [{"type": "image", "media_ref": "https://example.com/a.jpg"},
                         {"type": "card", "title": "Hat", "subtitle": "Blue", "media_ref": "https://example.com/h.jpg",
                          "buttons": [{"id": "buy", "type": "branch", "label": "Buy"}]},
                         {"type": "text", "text": "Colour?"}],
              "quick_replies": [{"id": "red", "label": "Red"}, {"id": "blue", "label": "Blue"}]}
    run, _ = start(org, fake_platforms, "messenger", [("ask", "message", config)])
    go(run.pk, django_capture_on_commit_callbacks)
    image, card, text = [r["json"]["message"] for r in fake_platforms.sent("messenger")]
    assert image == {"attachment": {"type": "image", "payload": {"url": "https://example.com/a.jpg"}}}
    element = card["attachment"]["payload"]["elements"][0]
    assert (element["title"], element["buttons"][0]["payload"]) == ("Hat", "b:buy")
    assert [q["payload"] for q in text["quick_replies"]] == ["q:red", "q:blue"]


def test_a_plain_message_moves_on_once_the_platform_accepted_it(org, fake_platforms,
                                                                django_capture_on_commit_callbacks):
    run, _ = start(org, fake_platforms, "instagram", [("hi", "message", HELLO), ("bye", "end", {})],
                   [("hi", "next", "bye")])
    run = go(run.pk, django_capture_on_commit_callbacks)
    assert (run.status, run.current_node_key) == ("completed", "bye")
    assert [(s.node_key, s.outcome, s.exited_via_port_key) for s in steps(run)] == [
        ("hi", "waiting", None), ("hi", "success", "next"), ("bye", "success", None)]
    assert steps(run)[1].payload["delivery"][0]["provider_message_id"].startswith("aWdf")


@pytest.mark.parametrize("provider", ["messenger", "whatsapp"])
def test_outside_the_window_the_message_fails_and_the_run_takes_the_error_port(
        org, fake_platforms, provider, django_capture_on_commit_callbacks):
    fake_platforms.script(provider, "messages", "outside_window")
    run, _ = start(org, fake_platforms, provider, [("hi", "message", HELLO), ("oops", "end", {})],
                   [("hi", "error", "oops")])
    run = go(run.pk, django_capture_on_commit_callbacks)
    message = run_messages(run)[0]
    assert (message.status, message.error_code) == ("failed", "outside_window")
    assert message.error
    assert [(s.node_key, s.outcome, s.exited_via_port_key) for s in steps(run)] == [
        ("hi", "waiting", None), ("hi", "failed", "error"), ("oops", "success", None)]
    assert steps(run)[1].error["code"] == "outside_window"
    assert run.status == "completed"


def test_outside_the_window_without_an_error_edge_fails_the_run(org, fake_platforms,
                                                               django_capture_on_commit_callbacks):
    fake_platforms.script("instagram", "messages", "outside_window")
    run, _ = start(org, fake_platforms, "instagram", [("hi", "message", HELLO)])
    run = go(run.pk, django_capture_on_commit_callbacks)
    assert (run.status, run.exit_reason) == ("failed", "handler_failure")
    assert steps(run)[-1].error["code"] == "outside_window"
    assert run.automation.__class__.objects.get(pk=run.automation_id).total_failed == 1


def test_a_bad_token_marks_the_account_and_later_runs_fail_fast_without_calling_the_platform(
        org, fake_platforms, django_capture_on_commit_callbacks):
    fake_platforms.script("whatsapp", "messages", "bad_token")
    run, account = start(org, fake_platforms, "whatsapp", [("hi", "message", HELLO)])
    run = go(run.pk, django_capture_on_commit_callbacks)
    assert run_messages(run)[0].error_code == "needs_reauth"
    account.refresh_from_db()
    assert account.status == "needs_reauth" and account.last_error and account.last_error_at
    assert (run.status, run.exit_reason) == ("failed", "handler_failure")
    calls = len(fake_platforms.requests)
    second, _ = start(org, fake_platforms, "whatsapp", [("hi", "message", HELLO)], account=account,
                      user_id="16505550000")
    second = go(second.pk, django_capture_on_commit_callbacks)
    assert (second.status, second.exit_reason) == ("failed", "handler_failure")
    assert steps(second)[0].error["code"] == "needs_reauth"
    assert run_messages(second) == [] and len(fake_platforms.requests) == calls


def test_a_rate_limit_is_retried_after_retry_after_and_never_counted_as_a_failure(
        org, fake_platforms, deferred, django_capture_on_commit_callbacks):
    fake_platforms.script("telegram", "sendMessage", "rate_limited", retry_after=7)
    run, account = start(org, fake_platforms, "telegram", [("hi", "message", HELLO)])
    run = go(run.pk, django_capture_on_commit_callbacks)
    message = run_messages(run)[0]
    assert message.status == "pending" and run.waiting_for == "delivery"
    ((ids, outcome),) = deferred
    assert (ids, outcome.wait, outcome.attempt, outcome.rate_limited) == ([message.pk], 7, 0, 1)
    # The account's pacing slot moved out: nothing goes through it before the wait is over.
    assert pacing.reserve(get_provider("telegram"), account.pk, "another-chat") > 6
    # The retry (what the delivery task does when its countdown is over) sends it once.
    SendSlot.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert effects.deliver_messages(ids, rate_limited=outcome.rate_limited) == 1
    message.refresh_from_db()
    assert message.status == "sent" and len(fake_platforms.sent("telegram")) == 1
    assert AutomationRun.objects.get(pk=run.pk).status == "completed"


def test_server_errors_are_retried_up_to_a_limit_then_fail(org, fake_platforms, deferred,
                                                          django_capture_on_commit_callbacks):
    fake_platforms.script("messenger", "messages", "server_error", times=effects.MAX_TRANSIENT_ATTEMPTS)
    run, _ = start(org, fake_platforms, "messenger", [("hi", "message", HELLO)])
    go(run.pk, django_capture_on_commit_callbacks)
    message = run_messages(run)[0]
    for attempt in range(1, effects.MAX_TRANSIENT_ATTEMPTS):
        ids, outcome = deferred[-1]
        assert (outcome.attempt, outcome.wait) == (attempt, 2 ** (attempt - 1))
        message.refresh_from_db()
        assert message.status == "pending"
        with django_capture_on_commit_callbacks(execute=True):
            effects.deliver_messages(ids, attempt=outcome.attempt)
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "2")
    assert AutomationRun.objects.get(pk=run.pk).exit_reason == "handler_failure"


def test_a_timeout_after_the_request_went_out_is_unknown_and_never_resent(
        org, fake_platforms, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.3)
    fake_platforms.script("telegram", "sendMessage", "hang", seconds=1.5)
    run, _ = start(org, fake_platforms, "telegram", [("hi", "message", HELLO), ("bye", "end", {})],
                   [("hi", "next", "bye")])
    run = go(run.pk, django_capture_on_commit_callbacks)
    message = run_messages(run)[0]
    assert (message.status, message.error_code) == ("unknown", "timeout")
    assert effects.deliver_messages([message.pk]) == 0  # a retry or the sweep does not send it again
    assert effects.stale_outbox_ids(older_than_seconds=0) == []
    assert len([r for r in fake_platforms.requests if r.get("name") == "sendmessage"]) == 1
    assert run.status == "completed" and steps(run)[1].payload["delivery"][0]["status"] == "unknown"


def test_errors_never_carry_the_token(org, fake_platforms, django_capture_on_commit_callbacks, settings):
    run, account = start(org, fake_platforms, "telegram", [("hi", "message", HELLO)])
    settings.RELAY_TELEGRAM_API_BASE = "http://127.0.0.1:9"  # nothing listens: connection refused

    with pytest.raises(ChannelError) as caught:
        telegram.call(account, "getMe", {})
    assert caught.value.error_class == "transient"
    assert account.credentials["bot_token"] not in str(caught.value)


def test_a_settle_loses_to_a_run_that_moved_meanwhile(org, fake_platforms, deferred,
                                                      django_capture_on_commit_callbacks):
    fake_platforms.script("messenger", "messages", "outside_window")
    run, _ = start(org, fake_platforms, "messenger", [("hi", "message", HELLO)], [])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        advance(run.pk)
    stale = delivery.load_run(run.pk)  # read before the stop, as a delivery task would have
    assert stop_run(AutomationRun.objects.get(pk=run.pk))
    for callback in callbacks:
        callback()  # the delivery fails; settle finds the run no longer waiting
    assert delivery.settle(stale, "hi") is False  # and a stale copy loses the optimistic write
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("exited", "admin_stopped")
    assert [s.outcome for s in steps(run)] == ["waiting"]


def test_settling_twice_moves_the_run_once(org, fake_platforms, django_capture_on_commit_callbacks):
    run, _ = start(org, fake_platforms, "telegram", [("hi", "message", HELLO), ("bye", "end", {})],
                   [("hi", "next", "bye")])
    run = go(run.pk, django_capture_on_commit_callbacks)
    assert delivery.settle(run.pk) is False
    assert len(steps(run)) == 3


def test_pacing_spaces_sends_to_one_chat_and_through_one_account(org, fake_platforms):
    provider = get_provider("telegram")
    account = connected_account(org, fake_platforms, "telegram")
    assert pacing.reserve(provider, account.pk, "chat-1") == 0
    assert 0.5 < pacing.reserve(provider, account.pk, "chat-1") <= 1.0  # 1 message/s per chat
    assert pacing.reserve(provider, account.pk, "chat-2") < 0.1  # another chat waits for the account's 1/30 s
    assert SocialAccount.objects.filter(pk=account.pk).exists()


@pytest.mark.parametrize("count, kind", [(2, "button"), (5, "list")])
def test_whatsapp_sends_quick_replies_as_reply_buttons_or_a_list(org, fake_platforms, count, kind,
                                                                  django_capture_on_commit_callbacks):
    config = {"blocks": [{"type": "text", "text": "Size?"}],
              "quick_replies": [{"id": f"s{n}", "label": f"Size {n}"} for n in range(count)]}
    run, _ = start(org, fake_platforms, "whatsapp", [("ask", "message", config)])
    go(run.pk, django_capture_on_commit_callbacks)
    (sent,) = fake_platforms.sent("whatsapp")
    interactive = sent["json"]["interactive"]
    assert interactive["type"] == kind
    if kind == "button":
        ids = [b["reply"]["id"] for b in interactive["action"]["buttons"]]
    else:
        ids = [row["id"] for row in interactive["action"]["sections"][0]["rows"]]
    assert ids == [f"q:s{n}" for n in range(count)]


def test_a_typing_indicator_goes_before_the_message(org, fake_platforms, django_capture_on_commit_callbacks):
    config = {"blocks": [{"type": "text", "text": "Thinking done"}], "typing_indicator_seconds": 2}
    run, _ = start(org, fake_platforms, "telegram", [("hi", "message", config)])
    go(run.pk, django_capture_on_commit_callbacks)
    calls = [(r["name"], r["json"].get("action")) for r in fake_platforms.requests if r["platform"] == "telegram"]
    assert calls == [("sendchataction", "typing"), ("sendmessage", None)]


def test_the_tick_moves_on_a_run_whose_delivery_finished_without_a_settle(
        org, fake_platforms, monkeypatch, eager_celery, django_capture_on_commit_callbacks):
    run, _ = start(org, fake_platforms, "messenger", [("hi", "message", HELLO)])
    with django_capture_on_commit_callbacks(execute=False):
        advance(run.pk)
    with monkeypatch.context() as patched:  # the worker dies between the send and the settle
        patched.setattr(delivery, "settle", lambda *args, **kwargs: False)
        assert effects.deliver_messages([run_messages(run)[0].pk]) == 1
    assert AutomationRun.objects.get(pk=run.pk).waiting_for == "delivery"
    assert tick().errors == []  # not stale yet: left alone
    assert AutomationRun.objects.get(pk=run.pk).status == "waiting"
    AutomationRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        tick()
    assert AutomationRun.objects.get(pk=run.pk).status == "completed"
    assert len(fake_platforms.sent("messenger")) == 1


def test_the_outbox_sweep_leaves_alone_messages_waiting_their_pacing_turn(org, fake_platforms, deferred,
                                                                          django_capture_on_commit_callbacks):
    fake_platforms.script("telegram", "sendMessage", "rate_limited", retry_after=120)
    run, account = start(org, fake_platforms, "telegram", [("hi", "message", HELLO)])
    go(run.pk, django_capture_on_commit_callbacks)
    message = run_messages(run)[0]
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert effects.stale_outbox_ids() == []  # a delivery task holds it for after the wait
    SendSlot.objects.filter(key=pacing.account_key(account.pk)).update(next_at=timezone.now())
    assert effects.stale_outbox_ids() == [message.pk]  # the wait is over and it is still pending: lost


@pytest.mark.django_db(transaction=True)
def test_a_long_chain_of_messages_is_delivered_without_deepening_the_stack(fake_platforms, monkeypatch):
    """Outside a transaction (as in a worker) the delivery after each commit runs at once, inside the
    settle that moved the run: without the outer loop each message would nest one delivery deeper."""
    import inspect

    org = factories.organization()
    depths = []
    provider = get_provider("messenger")
    original = type(provider).send

    def send(self, account, request, recipient):
        depths.append(len(inspect.stack(0)))
        return original(self, account, request, recipient)

    monkeypatch.setattr(type(provider), "send", send)
    count = 30
    nodes = [(f"m{n}", "message", {"blocks": [{"type": "text", "text": f"part {n}"}]}) for n in range(count)]
    edges = [(f"m{n}", "next", f"m{n + 1}") for n in range(count - 1)]
    run, _ = start(org, fake_platforms, "messenger", nodes, edges)
    advance(run.pk)
    run = AutomationRun.objects.get(pk=run.pk)
    assert run.status == "completed" and len(fake_platforms.sent("messenger")) == count
    assert max(depths) - min(depths) <= 5  # every send from the same depth, whatever the chain's length


def test_the_sandbox_path_stays_one_read_and_one_write(org, account, django_capture_on_commit_callbacks):
    """Network providers wait for delivery; the sandbox's messages are still written `sent` with the
    run, in the same two statements as before, and nothing is delivered after the commit."""
    person = factories.contact(org, account=account)
    factories.conversation(person, account)
    nodes = [(f"m{n}", "message", HELLO) for n in range(5)]
    automation = factories.automation(org, factories.flow(nodes, [(f"m{n}", "next", f"m{n + 1}")
                                                                  for n in range(4)]), status="active")
    run = enroll(automation, person).run
    with django_capture_on_commit_callbacks(execute=True) as callbacks, assert_statements(2):
        advance(run.pk)
    assert callbacks == []
    assert {m.status for m in run_messages(run)} == {"sent"}
    assert AutomationRun.objects.get(pk=run.pk).status == "completed"


def test_telegram_media_go_through_their_send_methods_with_a_caption(org, fake_platforms,
                                                                     django_capture_on_commit_callbacks):
    config = {"blocks": [{"type": "image", "media_ref": "https://example.com/a.jpg", "caption": "Menu"},
                         {"type": "file", "media_ref": "https://example.com/menu.pdf"}]}
    run, _ = start(org, fake_platforms, "telegram", [("m", "message", config)])
    go(run.pk, django_capture_on_commit_callbacks)
    photo, document = fake_platforms.sent("telegram")
    assert (photo["name"], photo["json"]["photo"], photo["json"]["caption"]) == (
        "sendphoto", "https://example.com/a.jpg", "Menu")
    assert (document["name"], document["json"]["document"]) == ("senddocument", "https://example.com/menu.pdf")
    assert {m.status for m in run_messages(run)} == {"sent"}


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs."""


def test_a_send_interrupted_after_the_request_went_out_becomes_unknown_not_a_duplicate(
        org, fake_platforms, monkeypatch, django_capture_on_commit_callbacks):
    provider = get_provider("whatsapp")
    original = type(provider).send

    def send_then_die(self, account, request, recipient):
        original(self, account, request, recipient)
        raise WorkerDied()

    run, _ = start(org, fake_platforms, "whatsapp", [("hi", "message", HELLO), ("bye", "end", {})],
                   [("hi", "next", "bye")])
    with django_capture_on_commit_callbacks(execute=False):
        advance(run.pk)
    message = run_messages(run)[0]
    with monkeypatch.context() as patched:
        patched.setattr(type(provider), "send", send_then_die)
        with pytest.raises(WorkerDied):
            effects.deliver_messages([message.pk])
    message.refresh_from_db()
    assert message.status == "pending" and message.sent_at is not None  # the claim, committed before the call
    assert effects.deliver_messages([message.pk]) == 0  # a second task while the first may still be at it
    Message.objects.filter(pk=message.pk).update(sent_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert effects.deliver_messages([message.pk]) == 0
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("unknown", "interrupted")
    assert len(fake_platforms.sent("whatsapp")) == 1  # never sent twice
    assert AutomationRun.objects.get(pk=run.pk).status == "completed"


def test_a_campaign_through_one_bot_is_spread_at_the_account_rate(org, fake_platforms):
    """300 first messages to 300 chats through one Telegram bot: each takes the next 1/30 s slot, so the
    last goes out about ten seconds after the first instead of in one burst (the deliveries with a
    slot further than INLINE_WAIT_SECONDS away are handed to a delivery task for that time)."""
    provider = get_provider("telegram")
    account = connected_account(org, fake_platforms, "telegram")
    slots = [time.time() + pacing.reserve(provider, account.pk, f"chat-{n}") for n in range(300)]
    gaps = sorted(later - earlier for earlier, later in zip(slots, slots[1:], strict=False))
    assert abs(gaps[len(gaps) // 2] - 1 / 30) < 0.005  # the median gap: the bot's rate
    assert 9.5 < slots[-1] - slots[0] < 10.5


def test_a_tap_on_a_button_already_sent_answers_a_message_still_being_delivered(
        org, api, fake_platforms, deferred, monkeypatch, eager_celery, django_capture_on_commit_callbacks):
    """Telegram spaces parts to one chat by a second: the buttons of the first part can be tapped
    before the last part went out. The tap counts; text does not answer until the message is out."""
    from tests.inbound.helpers import event, send

    monkeypatch.setattr(effects, "INLINE_WAIT_SECONDS", 0.0)  # the second part waits for a delivery task
    config = {"blocks": [ASK["blocks"][0], {"type": "text", "text": "Take your time."}]}
    run, account = start(org, fake_platforms, "telegram", [("ask", "message", config), ("small", "end", {})],
                         [("ask", "button.s", "small")])
    run = go(run.pk, django_capture_on_commit_callbacks)
    assert [m.status for m in run_messages(run)] == ["sent", "pending"] and run.waiting_for == "delivery"
    user = RECIPIENTS["telegram"]
    send(api, django_capture_on_commit_callbacks, event(account, "hello?", user=user))
    assert AutomationRun.objects.get(pk=run.pk).waiting_for == "delivery"
    send(api, django_capture_on_commit_callbacks,
         event(account, None, user=user, interactive={"type": "button", "id": "s"}))
    run = AutomationRun.objects.get(pk=run.pk)
    assert (run.status, run.current_node_key) == ("completed", "small")
