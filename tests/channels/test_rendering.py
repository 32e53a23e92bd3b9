"""Rendering by capability: limits the platforms enforce are met before the request leaves (texts and
titles clipped after merge tags, ids prefixed as the inbound side expects)."""

from automations.channels.registry import get_provider


def test_texts_are_clipped_to_each_platform_limit():
    long = "é" * 5000
    telegram = get_provider("telegram").render({"type": "text", "text": long}, "42")[1]
    assert len(telegram["text"]) == 4096 and telegram["chat_id"] == 42
    whatsapp = get_provider("whatsapp").render({"type": "text", "text": long}, "16505551234")
    assert len(whatsapp["text"]["body"]) == 4096
    messenger = get_provider("messenger").render({"type": "text", "text": long}, "psid")
    assert len(messenger["message"]["text"]) == 2000
    instagram = get_provider("instagram").render({"type": "text", "text": long}, "igsid")
    assert len(instagram["message"]["text"].encode()) <= 1000


def test_button_titles_are_clipped_and_ids_prefixed():
    part = {"type": "text", "text": "Pick", "buttons": [
        {"id": "a", "type": "branch", "label": "A label far longer than twenty characters"},
        {"id": "u", "type": "url", "label": "Site", "url": "https://example.com"}]}
    buttons = get_provider("messenger").render(part, "psid")["message"]["attachment"]["payload"]["buttons"]
    assert buttons[0] == {"type": "postback", "title": "A label far longer …", "payload": "b:a"}
    assert buttons[1] == {"type": "web_url", "title": "Site", "url": "https://example.com"}
    only_branch = {**part, "buttons": part["buttons"][:1]}
    reply = get_provider("whatsapp").render(only_branch, "1650")["interactive"]["action"]["buttons"][0]["reply"]
    assert (reply["id"], len(reply["title"])) == ("b:a", 20)


def test_whatsapp_media_by_link_or_uploaded_id():
    whatsapp = get_provider("whatsapp")
    by_link = whatsapp.render({"type": "image", "media_ref": "https://example.com/a.jpg", "caption": "Hi"}, "1650")
    assert by_link["image"] == {"link": "https://example.com/a.jpg", "caption": "Hi"}
    by_id = whatsapp.render({"type": "file", "media_ref": "1234567890"}, "1650")
    assert (by_id["type"], by_id["document"]) == ("document", {"id": "1234567890"})
