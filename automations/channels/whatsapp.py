"""WhatsApp Cloud API: `POST <graph>/<phone number id>/messages` with `Authorization: Bearer`.

Branch buttons become interactive reply buttons (≤ 3, titles ≤ 20, ids `b:<id>`); a single URL button
becomes a `cta_url` message. Quick replies (on a last text part without buttons) become reply buttons
(≤ 3) or a list (≤ 10 rows, titles ≤ 24), ids `q:<id>`. Reply and URL buttons cannot share a message,
nor buttons and quick replies (the validator says so: `channel_capability`). Media are sent by link
(an http(s) `media_ref`) or by uploaded media id. A typing indicator is the mark-read request for the
contact's latest inbound message with `typing_indicator` (shown up to 25 s or until the message)."""

from __future__ import annotations

from automations.channels import graph
from automations.channels.base import (
    NetworkProvider,
    branch_payload,
    buttons_of,
    clip,
    is_link,
    quick_reply_payload,
    unsupported_buttons,
)

TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
BUTTON_TITLE_LIMIT = 20
LIST_ROW_TITLE_LIMIT = 24
MAX_LIST_ROWS = 10
LIST_BUTTON_LABEL = "Choose"
CAPTION_LIMIT = 1024
MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "file": "document"}


class WhatsAppProvider(NetworkProvider):
    name = "whatsapp"
    chat_interval = 1.0  # pair rate: a burst to one user is throttled (131056)
    account_interval = 1 / 80  # default throughput: 80 messages per second per number

    def render(self, part: dict, recipient: str) -> dict:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient}
        kind = part.get("type")
        if kind in MEDIA_TYPES:
            media_type = MEDIA_TYPES[kind]
            ref = part.get("media_ref") or ""
            media = {"link": ref} if is_link(ref) else {"id": ref}
            if part.get("caption") and media_type in ("image", "video", "document"):
                media["caption"] = clip(part["caption"], CAPTION_LIMIT)
            return {**body, "type": media_type, media_type: media}
        text = part.get("text") or ""
        buttons = buttons_of(part)
        branches = [b for b in buttons if b.get("type") == "branch"]
        links = [b for b in buttons if b.get("type") == "url" and b.get("url")]
        replies = [(branch_payload(b["id"]), b.get("label") or "") for b in branches]
        if not replies:
            replies = [(quick_reply_payload(q["id"]), q.get("label") or "") for q in part.get("quick_replies") or []]
        if len(replies) > 3:
            return {**body, "type": "interactive", "interactive": {
                "type": "list", "body": {"text": clip(text or " ", INTERACTIVE_BODY_LIMIT)},
                "action": {"button": LIST_BUTTON_LABEL, "sections": [{"rows": [
                    {"id": reply_id, "title": clip(label, LIST_ROW_TITLE_LIMIT)}
                    for reply_id, label in replies[:MAX_LIST_ROWS]]}]}}}
        if replies:
            return {**body, "type": "interactive", "interactive": {
                "type": "button", "body": {"text": clip(text or " ", INTERACTIVE_BODY_LIMIT)},
                "action": {"buttons": [{"type": "reply", "reply": {
                    "id": reply_id, "title": clip(label, BUTTON_TITLE_LIMIT)}} for reply_id, label in replies]}}}
        if links:
            return {**body, "type": "interactive", "interactive": {
                "type": "cta_url", "body": {"text": clip(text or " ", INTERACTIVE_BODY_LIMIT)},
                "action": {"name": "cta_url", "parameters": {
                    "display_text": clip(links[0].get("label") or "", BUTTON_TITLE_LIMIT), "url": links[0]["url"]}}}}
        return {**body, "type": "text", "text": {"preview_url": False, "body": clip(text or " ", TEXT_LIMIT)}}

    def send(self, account, request: dict, recipient: str) -> str:
        answer = graph.call(self.name, "POST", f"{account.external_id}/messages", self.token(account), body=request)
        messages = answer.get("messages") if isinstance(answer.get("messages"), list) else []
        return str(messages[0].get("id") or "") if messages and isinstance(messages[0], dict) else ""

    def typing_body(self, message, recipient: str):
        """Mark the contact's latest inbound message read with a typing indicator (WhatsApp shows one
        only as an answer to a received message, by its wamid — the inbound event id); none when the
        contact never wrote."""
        from contacts.models import Message, MessageDirection

        wamid = (Message.objects.filter(conversation_id=message.conversation_id, direction=MessageDirection.INBOUND)
                 .order_by("-created_at", "-id").values_list("payload__event_id", flat=True).first())
        if not wamid:
            return None
        return {"messaging_product": "whatsapp", "status": "read", "message_id": str(wamid),
                "typing_indicator": {"type": "text"}}

    def verify(self, account) -> dict:
        """GET /<phone number id>: the token reaches this number; its verified name is the display name."""
        answer = graph.call(self.name, "GET", account.external_id, self.token(account),
                            params={"fields": "verified_name,display_phone_number"})
        return {"display_name": answer.get("verified_name") or answer.get("display_phone_number") or ""}

    def problems(self, config: dict) -> list[str]:
        from automations.nodes.message import _button_containers, list_of_dicts, quick_replies

        found = unsupported_buttons(config, "WhatsApp")
        replies = quick_replies(config)
        if replies:
            sent = [b for b in list_of_dicts(config.get("blocks")) if b.get("type") != "delay"]
            last = sent[-1] if sent else {"type": "text"}  # no blocks: nothing is sent, nor the replies
            if last.get("type") != "text" or last.get("buttons"):
                found.append("WhatsApp sends quick replies only after a last text block without buttons")
            if len(replies) > MAX_LIST_ROWS:
                found.append(f"WhatsApp sends at most {MAX_LIST_ROWS} quick replies (as a list)")
        for buttons in _button_containers(config if isinstance(config, dict) else {}):
            kinds = [b.get("type") for b in buttons if isinstance(b, dict)] if isinstance(buttons, list) else []
            if "branch" in kinds and "url" in kinds:
                found.append("WhatsApp cannot send reply buttons and a URL button in one message")
            if kinds.count("url") > 1:
                found.append("WhatsApp sends at most one URL button per message")
        return found
