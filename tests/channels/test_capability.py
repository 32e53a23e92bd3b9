"""The validator refuses (`channel_capability`) a message its automation's channel cannot send, so an
active automation never meets one at run time."""

import pytest

from automations.graph.config_checks import is_warning
from automations.graph.service import activate, save_graph
from automations.nodes import registry
from relay.core.errors import ApiError
from tests import factories


def capability_errors(config, channel):
    automation = factories.automation(factories.organization(), channel=channel)
    return [i["message"] for i in registry.get("message").validate(config, automation=automation)
            if not is_warning(i) and i["code"] == "channel_capability"]


def text(value="Hi", buttons=None):
    return {"type": "text", "text": value, **({"buttons": buttons} if buttons else {})}


BRANCH = {"id": "yes", "type": "branch", "label": "Yes"}
URL = {"id": "site", "type": "url", "label": "Site", "url": "https://example.com"}
CALL = {"id": "ring", "type": "call", "label": "Call", "phone": "+15550001"}
LONG_ID = "x" * 63  # a valid port id; with Telegram's "b:" prefix 65 bytes of callback_data


@pytest.mark.django_db
@pytest.mark.parametrize("config, channel, problem", [
    ({"blocks": [text(buttons=[{**BRANCH, "id": LONG_ID}])]}, "telegram", "too long for Telegram"),
    ({"blocks": [text()], "quick_replies": [{"id": LONG_ID, "label": "Q"}]}, "telegram", "too long for Telegram"),
    ({"blocks": [text(buttons=[CALL])]}, "telegram", "call buttons cannot be sent on Telegram"),
    ({"blocks": [text(buttons=[BRANCH, URL])]}, "whatsapp", "reply buttons and a URL button"),
    ({"blocks": [text(buttons=[URL, {**URL, "id": "other"}])]}, "whatsapp", "at most one URL button"),
    ({"blocks": [text(buttons=[CALL])]}, "instagram", "call buttons cannot be sent on Instagram"),
    ({"blocks": [text("é" * 501)]}, "instagram", "at most 1000 bytes"),
])
def test_unsendable_messages_are_refused_per_channel(config, channel, problem):
    found = capability_errors(config, channel)
    assert len(found) == 1 and problem in found[0], found


@pytest.mark.django_db
@pytest.mark.parametrize("config, channel", [
    ({"blocks": [text(buttons=[{**BRANCH, "id": "x" * 62}])]}, "telegram"),
    ({"blocks": [text(buttons=[BRANCH, URL])]}, "telegram"),
    ({"blocks": [text(buttons=[URL])]}, "whatsapp"),
    ({"blocks": [text(buttons=[CALL, BRANCH])]}, "facebook"),
    ({"blocks": [text("é" * 500)]}, "instagram"),
])
def test_what_the_channel_can_send_passes(config, channel):
    assert capability_errors(config, channel) == []


@pytest.mark.django_db
def test_an_active_automation_given_an_unsendable_message_is_paused_and_cannot_be_activated(org):
    automation = factories.automation(org, channel="whatsapp", status="active")
    graph = factories.flow([("ask", "message", {"blocks": [text(buttons=[BRANCH, URL])]})])
    assert save_graph(automation, graph) is True  # auto-paused
    automation.refresh_from_db()
    assert automation.status == "paused"
    assert [e["code"] for e in automation.graph_errors] == ["channel_capability"]
    with pytest.raises(ApiError) as caught:
        activate(automation)
    assert caught.value.code == "graph_invalid"


@pytest.mark.django_db
@pytest.mark.parametrize("config, problem", [
    ({"blocks": [{"type": "image", "media_ref": "https://x.io/a.jpg"}], "quick_replies": [{"id": "a", "label": "A"}]},
     "only after a last text block"),
    ({"blocks": [text(buttons=[BRANCH])], "quick_replies": [{"id": "a", "label": "A"}]},
     "only after a last text block"),
    ({"blocks": [text()], "quick_replies": [{"id": f"q{n}", "label": "Q"} for n in range(11)]},
     "at most 10 quick replies"),
])
def test_whatsapp_quick_replies_need_a_plain_last_text(config, problem):
    found = capability_errors(config, "whatsapp")
    assert len(found) == 1 and problem in found[0], found
