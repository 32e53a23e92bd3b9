"""The fake platform server answers like the reference says the platforms do (so a test passing
against it means the request would pass the platform's own checks)."""

import requests

from tests.channels.helpers import GRAPH_TOKENS, TELEGRAM_TOKEN


def tg(fake, method, body, token=TELEGRAM_TOKEN):
    return requests.post(f"{fake.url}/bot{token}/{method}", json=body, timeout=5)


def test_telegram_unknown_token_is_401_and_limits_are_400(fake_platforms):
    fake_platforms.add_telegram_bot(TELEGRAM_TOKEN)
    assert tg(fake_platforms, "getMe", {}, token="1:nope").json() == {
        "ok": False, "error_code": 401, "description": "Unauthorized"}
    assert tg(fake_platforms, "getMe", {}).json()["result"]["username"] == "testbot"
    too_long = tg(fake_platforms, "sendMessage", {"chat_id": 1, "text": "x" * 4097})
    assert (too_long.status_code, too_long.json()["description"]) == (400, "Bad Request: message is too long")
    data = "b:" + "x" * 63
    bad_button = tg(fake_platforms, "sendMessage", {"chat_id": 1, "text": "Pick", "reply_markup": {
        "inline_keyboard": [[{"text": "A", "callback_data": data}]]}})
    assert bad_button.status_code == 400
    http_hook = tg(fake_platforms, "setWebhook", {"url": "http://relay.example.com/hook"})
    assert http_hook.status_code == 400
    assert fake_platforms.sent("telegram") == []


def test_telegram_send_answers_with_the_message_and_is_recorded(fake_platforms):
    fake_platforms.add_telegram_bot(TELEGRAM_TOKEN)
    answer = tg(fake_platforms, "sendMessage", {"chat_id": 42, "text": "hi", "reply_markup": {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "b:yes"}], [{"text": "Site", "url": "https://x.io"}]]}})
    assert answer.status_code == 200 and answer.json()["result"]["chat"]["id"] == 42
    (sent,) = fake_platforms.sent("telegram")
    assert sent["name"] == "sendmessage" and sent["json"]["text"] == "hi"


def test_scripted_failures_answer_once_then_the_call_works(fake_platforms):
    fake_platforms.add_telegram_bot(TELEGRAM_TOKEN)
    fake_platforms.script("telegram", "sendMessage", "rate_limited", retry_after=7)
    first = tg(fake_platforms, "sendMessage", {"chat_id": 1, "text": "a"})
    assert (first.status_code, first.json()["parameters"]) == (429, {"retry_after": 7})
    assert tg(fake_platforms, "sendMessage", {"chat_id": 1, "text": "a"}).status_code == 200


def test_graph_checks_version_token_and_body(fake_platforms):
    fake_platforms.add_graph_account(GRAPH_TOKENS["whatsapp"], "1065", platform="whatsapp")
    fake_platforms.add_graph_account(GRAPH_TOKENS["messenger"], "777", platform="messenger")
    version = fake_platforms.graph_version
    auth = {"Authorization": f"Bearer {GRAPH_TOKENS['whatsapp']}"}
    wrong_version = requests.post(f"{fake_platforms.url}/v1.0/1065/messages", json={}, headers=auth, timeout=5)
    assert wrong_version.status_code == 400
    bad_token = requests.post(f"{fake_platforms.url}/{version}/1065/messages", json={},
                              headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bad_token.json()["error"]["code"] == 190
    four_buttons = {"messaging_product": "whatsapp", "to": "16505551234", "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "?"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": f"b:{i}", "title": f"T{i}"}} for i in range(4)]}}}
    refused = requests.post(f"{fake_platforms.url}/{version}/1065/messages", json=four_buttons, headers=auth,
                            timeout=5)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, 100)
    ok = requests.post(f"{fake_platforms.url}/{version}/me/messages",
                       params={"access_token": GRAPH_TOKENS["messenger"]},
                       json={"recipient": {"id": "psid"}, "messaging_type": "RESPONSE", "message": {"text": "hi"}},
                       timeout=5)
    assert ok.status_code == 200 and ok.json()["message_id"].startswith("m_")
    fake_platforms.script("messenger", "messages", "outside_window")
    closed = requests.post(f"{fake_platforms.url}/{version}/me/messages",
                           params={"access_token": GRAPH_TOKENS["messenger"]},
                           json={"recipient": {"id": "psid"}, "message": {"text": "hi"}}, timeout=5)
    assert (closed.json()["error"]["code"], closed.json()["error"]["error_subcode"]) == (10, 2018278)
