"""The parsers read hostile bodies: whatever shape a verified body has, parsing yields items or skips,
never an exception (a delivery that cannot be parsed must not be retried for days)."""

import copy

import pytest

from automations.channels.inbound import meta, telegram, whatsapp
from automations.channels.inbound.normalized import Event, Skipped, Status, tap
from contacts.models import SocialAccount
from tests.platform_webhooks.payloads import (
    fb_delivery,
    fb_message,
    fb_postback,
    fb_read,
    ig_comment,
    page_envelope,
    tg_callback,
    tg_message,
    wa_button_reply,
    wa_envelope,
    wa_list_reply,
    wa_status,
    wa_text,
)

BOT = SocialAccount(external_id="123", channel="telegram")
ODD_VALUES = [None, 7, -1.5, True, "", "text", [], [1, "x"], {}, {"id": []}, 10 ** 30]
SAMPLES = [
    ("telegram", tg_message("price")), ("telegram", tg_callback("b:s")),
    ("whatsapp", wa_envelope("106", messages=[wa_text("hi"), wa_button_reply("b:s", "S"), wa_list_reply("q:l", "L")],
                             statuses=[wa_status("wamid.A", "failed"), wa_status("wamid.B", "read")])),
    ("meta", page_envelope("P", fb_message("P", "hi", quick_reply="q:s"), fb_postback("P", "START"),
                           fb_delivery("P", ["m_1"]), fb_read("P", 1458668856253),
                           fb_message("P", "x", reply_to={"story": {"id": "s1"}},
                                      attachments=[{"type": "image", "payload": {"url": "https://x"}}]))),
    ("meta", ig_comment("IG", "Price?", parent_id="17900000000000000")),
]


def parse(source, body):
    if source == "telegram":
        return telegram.parse(body, BOT)
    return {"whatsapp": whatsapp.parse, "meta": meta.parse}[source](body)


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def replaced(body, path, new):
    body = copy.deepcopy(body)
    if not path:
        return body
    holder = body
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = new
    return body


@pytest.mark.parametrize(("source", "body"), SAMPLES)
def test_any_field_of_any_shape_parses_without_an_exception(source, body):
    checked = 0
    for path in paths(body):
        for odd in ODD_VALUES:
            items = parse(source, replaced(body, path, odd))
            assert all(isinstance(item, Event | Status | Skipped) for item in items)
            checked += 1
    assert checked > 50


def test_the_samples_parse_into_what_they_say():
    (message,) = parse("telegram", tg_message("price", update_id=42))
    assert (message.event_id, message.kind, message.text, message.platform_user_id) == (
        "tg:123:42", "dm_received", "price", "987654321")
    items = parse(*SAMPLES[2])
    assert [type(i).__name__ for i in items] == ["Event", "Event", "Event", "Status", "Status"]
    assert [i.interactive for i in items[:3]] == [None, {"type": "button", "id": "s"},
                                                  {"type": "quick_reply", "id": "l"}]
    assert (items[3].status, items[3].error_code) == ("failed", "131026")
    fb = parse(*SAMPLES[3])
    assert [type(i).__name__ for i in fb] == ["Event", "Event", "Status", "Status", "Event"]
    assert (fb[1].kind, fb[1].interactive) == ("postback", {"type": "button", "id": "START"})
    assert (fb[4].kind, fb[4].story_id, fb[4].attachments) == ("story_reply", "s1", [
        {"type": "image", "url": "https://x"}])
    (comment,) = parse(*SAMPLES[4])
    assert (comment.kind, comment.post_id, comment.parent_comment_id) == (
        "comment_created", "18172143295349192", "17900000000000000")


@pytest.mark.parametrize(("payload", "expected"), [
    ("b:yes", {"type": "button", "id": "yes"}), ("q:red", {"type": "quick_reply", "id": "red"}),
    ("COLOR_RED", {"type": "button", "id": "COLOR_RED"}), ("b:", {"type": "button", "id": "b:"}),
    ("", None), (None, None)])
def test_button_payloads_map_as_the_channels_contract_says(payload, expected):
    assert tap(payload) == expected
