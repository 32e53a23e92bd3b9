"""Messenger Send API: `POST <graph>/me/messages?access_token=<page token>`.

Text with buttons becomes a button template (≤ 3: postback `b:<id>`, `web_url`, `phone_number`),
cards and galleries a generic template, quick replies `quick_replies` (≤ 13, payload `q:<id>`),
media an attachment by URL (or by attachment id). Instagram (`instagram.py`) sends the same shapes.

A run started by a comment reaches the commenter first through a private reply: its first part (marked
`PRIVATE_REPLY_TO` when queued, runtime.effects) goes to `{"comment_id": …}` instead of the user id —
the platforms take one per comment, within 7 days of it; the run's later messages (once the user
answers in the inbox) go to the user id as usual."""

from __future__ import annotations

from automations.channels import graph
from automations.channels.base import (
    PRIVATE_REPLY_TO,
    NetworkProvider,
    branch_payload,
    buttons_of,
    clip,
    is_link,
    quick_reply_payload,
    unsupported_buttons,
)

TITLE_LIMIT = 20
TEMPLATE_TEXT_LIMIT = 640
ELEMENT_TEXT_LIMIT = 80
MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "file": "file"}


class MessengerProvider(NetworkProvider):
    name = "messenger"
    platform = "Messenger"
    text_limit = 2000
    sendable_buttons = ("branch", "url", "call")
    chat_interval = 0.0
    account_interval = 1 / 40  # stays well under the Page's call-rate limits (613 says when it is not)
    replies_to_comments = True  # a comment-started run's first message is a private reply (module doc)

    def clip_text(self, text: str) -> str:
        return clip(text, self.text_limit)

    def button(self, button: dict) -> dict | None:
        title = clip(button.get("label") or "", TITLE_LIMIT)
        kind = button.get("type")
        if kind == "branch":
            return {"type": "postback", "title": title, "payload": branch_payload(button["id"])}
        if kind == "url" and button.get("url"):
            return {"type": "web_url", "title": title, "url": button["url"]}
        if kind == "call" and button.get("phone") and "call" in self.sendable_buttons:
            return {"type": "phone_number", "title": title, "payload": button["phone"]}
        return None

    def buttons(self, holder: dict) -> list[dict]:
        return [b for b in (self.button(x) for x in buttons_of(holder)) if b is not None][:3]

    def element(self, card: dict) -> dict:
        element = {"title": clip(card.get("title") or " ", ELEMENT_TEXT_LIMIT)}
        if card.get("subtitle"):
            element["subtitle"] = clip(card["subtitle"], ELEMENT_TEXT_LIMIT)
        if is_link(card.get("media_ref")):
            element["image_url"] = card["media_ref"]
        buttons = self.buttons(card)
        if buttons:
            element["buttons"] = buttons
        return element

    def message(self, part: dict) -> dict:
        kind = part.get("type")
        if kind in MEDIA_TYPES:
            ref = part.get("media_ref") or ""
            payload = {"url": ref} if is_link(ref) else {"attachment_id": ref}
            return {"attachment": {"type": MEDIA_TYPES[kind], "payload": payload}}
        if kind == "card":
            return {"attachment": {"type": "template", "payload": {"template_type": "generic",
                                                                   "elements": [self.element(part)]}}}
        if kind == "gallery":
            return {"attachment": {"type": "template", "payload": {
                "template_type": "generic", "elements": [self.element(c) for c in part.get("cards") or []][:10]}}}
        buttons = self.buttons(part)
        if buttons:
            return {"attachment": {"type": "template", "payload": {
                "template_type": "button", "text": clip(part.get("text") or " ", TEMPLATE_TEXT_LIMIT),
                "buttons": buttons}}}
        return {"text": self.clip_text(part.get("text") or " ")}

    def render(self, part: dict, recipient: str) -> dict:
        message = self.message(part)
        replies = part.get("quick_replies") or []
        if replies:
            message["quick_replies"] = [{"content_type": "text", "title": clip(r.get("label") or "", TITLE_LIMIT),
                                         "payload": quick_reply_payload(r["id"])} for r in replies[:13]]
        if part.get(PRIVATE_REPLY_TO):
            return {"recipient": {"comment_id": str(part[PRIVATE_REPLY_TO])}, "message": message}
        return {"recipient": {"id": recipient}, "messaging_type": "RESPONSE", "message": message}

    def send(self, account, request: dict, recipient: str) -> str:
        answer = graph.call(self.name, "POST", "me/messages", self.token(account), body=request, bearer=False)
        return str(answer.get("message_id") or "")

    def typing_body(self, message, recipient: str):
        part = message.payload if isinstance(message.payload, dict) else {}
        if part.get(PRIVATE_REPLY_TO):  # no conversation to type in before the private reply opens one
            return None
        return {"recipient": {"id": recipient}, "sender_action": "typing_on"}

    def verify(self, account) -> dict:
        """GET /<page id> with the page token: the token works for this page; its name."""
        answer = graph.call(self.name, "GET", account.external_id, self.token(account), bearer=False,
                            params={"fields": "name"})
        return {"display_name": answer.get("name") or ""}

    def problems(self, config: dict) -> list[str]:
        return unsupported_buttons(config, self.platform, self.sendable_buttons)
