"""WhatsApp Cloud API: `POST <graph>/<phone number id>/messages` with `Authorization: Bearer`.

Branch buttons become interactive reply buttons (≤ 3, titles ≤ 20, ids `b:<id>`); a single URL button
becomes a `cta_url` message. Reply and URL buttons cannot share a message (the validator says so:
`channel_capability`). Media are sent by link (an http(s) `media_ref`) or by uploaded media id."""

from __future__ import annotations

from automations.channels import graph
from automations.channels.base import NetworkProvider, branch_payload, buttons_of, clip, is_link, unsupported_buttons

TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
BUTTON_TITLE_LIMIT = 20
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
        if branches:
            return {**body, "type": "interactive", "interactive": {
                "type": "button", "body": {"text": clip(text or " ", INTERACTIVE_BODY_LIMIT)},
                "action": {"buttons": [{"type": "reply", "reply": {
                    "id": branch_payload(b["id"]), "title": clip(b.get("label") or "", BUTTON_TITLE_LIMIT)}}
                    for b in branches[:3]]}}}
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

    def verify(self, account) -> dict:
        """GET /<phone number id>: the token reaches this number; its verified name is the display name."""
        answer = graph.call(self.name, "GET", account.external_id, self.token(account),
                            params={"fields": "verified_name,display_phone_number"})
        return {"display_name": answer.get("verified_name") or answer.get("display_phone_number") or ""}

    def problems(self, config: dict) -> list[str]:
        from automations.nodes.message import _button_containers

        found = unsupported_buttons(config, "WhatsApp")
        for buttons in _button_containers(config if isinstance(config, dict) else {}):
            kinds = [b.get("type") for b in buttons if isinstance(b, dict)] if isinstance(buttons, list) else []
            if "branch" in kinds and "url" in kinds:
                found.append("WhatsApp cannot send reply buttons and a URL button in one message")
            if kinds.count("url") > 1:
                found.append("WhatsApp sends at most one URL button per message")
        return found
