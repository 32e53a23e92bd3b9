"""`message`: sending blocks, buttons and quick replies, waiting for a reply, its ports and config
checks, and how it answers a tap or a typed reply."""

from datetime import timedelta

import pytest

from automations.models import JobKind, ScheduledJob, WaitingFor
from automations.nodes import message
from automations.nodes.base import InboundReply, NodeContext
from automations.runtime.resume import resume_waiting
from contacts.models import Message
from tests import factories
from tests.automations.nodes.helpers import (
    NOW,
    assert_failed_without_error_edge,
    branch,
    codes,
    errors,
    ports,
    run_flow,
    steps_of,
    text,
    warnings,
)

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


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


def test_merge_tags_never_crash_a_run(org, contact, conv):
    weird = "{{contact.}} {{}} {{context.a.b.c}} {{fields.x|fallback}} {{unknown.thing}} {{ contact.name"
    run = run_flow(org, contact, [("say", "message", {"blocks": [{"type": "text", "text": weird}]})])
    assert run.status == "completed"
    assert "fallback" in Message.objects.get(run_id=run.pk).text


# -- ports and config ---------------------------------------------------------------------------------


def test_message_ports_buttons_quick_replies_and_no_response():
    config = {
        "blocks": [
            {"type": "text", "text": "Size?", "buttons": [
                {"id": "large", "type": "branch", "label": "L"},
                {"id": "site", "type": "url", "label": "Site", "url": "https://x.test"},
            ]},
            {"type": "card", "title": "C", "buttons": [{"id": "card_buy", "type": "branch", "label": "Buy"}]},
            {"type": "gallery", "cards": [{"title": "G", "buttons": [{"id": "g1", "type": "branch", "label": "1"}]}]},
        ],
        "quick_replies": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
        "no_response_timeout_min": 30,
    }
    assert ports("message", config) == ["next", "error", "button.large", "button.card_buy", "button.g1",
                                        "quick_reply.yes", "quick_reply.no", "no_response"]


def test_plain_message_has_next_and_error_only():
    assert ports("message", {"blocks": [{"type": "text", "text": "hi"}]}) == ["next", "error"]
    assert ports("message", {"blocks": [{"type": "text", "text": "hi"}], "wait_for_reply": True}) == ["next", "error"]


def test_message_ports_tolerate_garbage():
    assert ports("message", "nonsense") == ["next", "error"]
    assert ports("message", {"blocks": [3, {"type": "text", "buttons": "x"}], "quick_replies": [None]}) == \
        ["next", "error"]


@pytest.mark.parametrize("config, code", [
    ({"blocks": [text(buttons=[branch("a"), branch("b"), branch("c"), branch("d")])]}, "too_many_buttons"),
    ({"blocks": [{"type": "card", "title": "t", "buttons": [branch(str(i)) for i in range(4)]}]}, "too_many_buttons"),
    ({"blocks": [text(buttons=[branch("a")]), text(buttons=[branch("a")])]}, "duplicate_id"),
    ({"blocks": [text(buttons=[branch("bad id!")])]}, "invalid_id"),
    ({"blocks": [text(buttons=[{"id": "u", "type": "url", "label": "Site", "url": "ftp://x"}])]}, "invalid_url"),
    ({"blocks": [text(buttons=[{"id": "c", "type": "call", "label": "Call"}])]}, "invalid_config"),
    ({"blocks": [text(buttons=[{"id": "x", "type": "teleport", "label": "x"}])]}, "invalid_config"),
    ({"blocks": [text()], "quick_replies": [{"id": str(i), "label": "x"} for i in range(14)]},
     "too_many_quick_replies"),
    ({"blocks": [text()], "quick_replies": [{"id": "a", "label": "x"}, {"id": "a", "label": "y"}]}, "duplicate_id"),
    ({"blocks": [text()], "quick_replies": [{"id": "a"}]}, "invalid_config"),
    ({"blocks": [text("")]}, "invalid_config"),
    ({"blocks": [{"type": "image"}]}, "invalid_config"),
    ({"blocks": [{"type": "hologram"}]}, "invalid_config"),
    ({"blocks": [{"type": "card"}]}, "invalid_config"),
    ({"blocks": [{"type": "gallery", "cards": []}]}, "invalid_config"),
    ({"blocks": [{"type": "gallery", "cards": [{"title": str(i)} for i in range(11)]}]}, "too_many_cards"),
    ({"blocks": [text(), {"type": "delay", "seconds": 11}]}, "invalid_config"),
    ({"blocks": [text()], "wait_for_reply": "yes"}, "invalid_config"),
    ({"blocks": [text()], "no_response_timeout_min": 0}, "invalid_config"),
    ({"blocks": [text()], "typing_indicator_seconds": 60}, "invalid_config"),
    ({"blocks": "text"}, "invalid_config"),
])
def test_message_errors(config, code):
    assert code in codes(errors("message", config))


def test_message_media_cards_and_galleries_are_valid():
    config = {"blocks": [{"type": "image", "media_ref": "m1", "caption": "c"}, {"type": "video", "media_ref": "m2"},
                         {"type": "audio", "media_ref": "m3"}, {"type": "file", "media_ref": "m4"},
                         {"type": "delay", "seconds": 0.5},
                         {"type": "card", "title": "t", "subtitle": "s", "media_ref": "m",
                          "buttons": [branch("a"), {"id": "s", "type": "share"},
                                      {"id": "p", "type": "call", "label": "Call", "phone": "+1"}]},
                         {"type": "gallery", "cards": [{"title": str(i)} for i in range(10)]}]}
    assert errors("message", config) == []


def test_channel_limits_are_warnings(org):
    whatsapp = factories.automation(org, channel="whatsapp")
    telegram = factories.automation(org, channel="telegram")
    instagram = factories.automation(org, channel="instagram")
    with_qr = {"blocks": [text()], "quick_replies": [{"id": "a", "label": "A"}]}
    with_card = {"blocks": [{"type": "card", "title": "t"}]}
    with_audio = {"blocks": [{"type": "audio", "media_ref": "a"}]}
    assert warnings("message", with_qr, whatsapp) == []  # sent as reply buttons or a list
    assert errors("message", with_qr, whatsapp) == []
    assert codes(warnings("message", with_card, telegram)) == ["unsupported_on_channel"]
    assert codes(warnings("message", with_audio, instagram)) == ["unsupported_on_channel"]
    assert warnings("message", with_qr, instagram) == []
    assert warnings("message", with_audio, whatsapp) == []


def test_no_response_on_a_message_that_never_waits_is_an_error():
    found = errors("message", {"blocks": [text()], "no_response_timeout_min": 5})
    assert codes(found) == ["no_response_without_wait"]
    assert warnings("message", {"blocks": [text()], "no_response_timeout_min": 5}) == []


@pytest.mark.parametrize("config", [{"blocks": []}, {}, {"blocks": [{"type": "delay", "seconds": 1}]},
                                    {"wait_for_reply": True}])
def test_a_message_without_blocks_is_valid(config):
    assert errors("message", config) == []


# -- its waits and answers -----------------------------------------------------------------------------


def test_the_reply_wait_times_out_through_no_response_only_when_configured():
    wait = message.reply_wait({"no_response_timeout_min": 30}, NOW)
    assert (wait.waiting_for, wait.until) == (WaitingFor.REPLY, NOW + timedelta(minutes=30))
    assert wait.scheduled_job("ask") == (JobKind.NO_RESPONSE_TIMEOUT, NOW + timedelta(minutes=30),
                                         {"node_key": "ask", "port_key": "no_response"})
    assert message.reply_wait({}, NOW).scheduled_job("ask") is None
    assert message.DELIVERY_WAIT.scheduled_job("ask") is None


class Waiting:
    def __init__(self, waiting_for):
        self.waiting_for = waiting_for


def answer(config, reply, waiting_for=WaitingFor.REPLY):
    node = {"key": "ask", "kind": "message", "config": config}
    ctx = NodeContext(node=node, run=Waiting(waiting_for), context={}, contact=None, automation=None, effects=None,
                      now=NOW, ports=message.derive_ports(config))
    return message.answer(ctx, reply)


BUTTONS = {"blocks": [text(buttons=[branch("big", "Big")])], "quick_replies": [{"id": "later", "label": "Later"}]}


def test_a_tap_on_its_button_leaves_through_that_port():
    found = answer(BUTTONS, InboundReply("dm_received", interactive_type="button", interactive_id="big"))
    assert (found.port, found.context_updates) == ("button.big", {"last_button": {
        "node_key": "ask", "port": "button.big", "id": "big"}})
    assert found.payload["reply"]["interactive"] == {"type": "button", "id": "big"}
    assert answer(BUTTONS, InboundReply("dm_received", interactive_type="button", interactive_id="gone")) is None


def test_a_typed_label_counts_as_the_tap_and_other_text_needs_wait_for_reply():
    assert answer(BUTTONS, InboundReply("dm_received", text=" later ")).port == "quick_reply.later"
    assert answer(BUTTONS, InboundReply("dm_received", text="something else")) is None
    typed = answer({**BUTTONS, "wait_for_reply": True}, InboundReply("dm_received", text="something else"))
    assert (typed.port, typed.context_updates) == ("next", {"last_reply": "something else"})
    assert answer({"wait_for_reply": True}, InboundReply("comment_created", text="hi")) is None  # not a reply


def test_while_its_parts_are_delivered_only_a_tap_answers_it():
    tap = InboundReply("dm_received", interactive_type="button", interactive_id="big")
    assert answer(BUTTONS, tap, WaitingFor.DELIVERY).port == "button.big"
    assert answer({**BUTTONS, "wait_for_reply": True}, InboundReply("dm_received", text="Big"),
                  WaitingFor.DELIVERY) is None
