"""WhatsApp Cloud API webhooks (`object: whatsapp_business_account`) → events and delivery statuses.
Routed by `value.metadata.phone_number_id` (the account's external id); the event id is the `wamid`."""

from __future__ import annotations

from automations.channels.inbound.normalized import Event, Skipped, Status, from_seconds, obj, tap
from automations.models import InboundKind
from contacts.models import Channel, DeliveryStatus

_MEDIA = ("image", "video", "audio", "document", "sticker")
_STATUSES = {"delivered": DeliveryStatus.DELIVERED, "read": DeliveryStatus.READ, "failed": DeliveryStatus.FAILED}


def parse(body: dict) -> list:
    if body.get("object") != "whatsapp_business_account":
        return [Skipped("unsupported", f"object {body.get('object')!r}")]
    items = []
    for entry in _dicts(body.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value") if isinstance(change.get("value"), dict) else {}
            if change.get("field") != "messages":
                items.append(Skipped("unsupported", f"field {change.get('field')!r}"))
                continue
            number = str(obj(value.get("metadata")).get("phone_number_id") or "")
            names = {str(c.get("wa_id")): str(obj(c.get("profile")).get("name") or "")
                     for c in _dicts(value.get("contacts"))}
            items += [_message(number, message, names) for message in _dicts(value.get("messages"))]
            items += [_status(number, status) for status in _dicts(value.get("statuses"))]
    return items


def _dicts(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _message(number: str, message: dict, names: dict):
    wamid, sender, kind = str(message.get("id") or ""), str(message.get("from") or ""), message.get("type")
    if not wamid or not sender:
        return Skipped("malformed", "message without id or from")
    event = Event(channel=Channel.WHATSAPP, target=number, event_id=wamid, kind=InboundKind.DM_RECEIVED,
                  platform_user_id=sender, name=names.get(sender, ""),
                  occurred_at=from_seconds(message.get("timestamp")), raw=message)
    if kind == "text":
        event.text = str(obj(message.get("text")).get("body") or "")
    elif kind == "interactive":
        interactive = obj(message.get("interactive"))
        reply = interactive.get(interactive.get("type")) if interactive.get("type") in (
            "button_reply", "list_reply") else None
        if not isinstance(reply, dict):
            return Skipped("unsupported", f"{wamid}: interactive {interactive.get('type')!r}")
        event.interactive, event.text = tap(reply.get("id")), str(reply.get("title") or "")
    elif kind == "button":  # a tap on a template's quick-reply button
        button = obj(message.get("button"))
        event.interactive, event.text = tap(button.get("payload")), str(button.get("text") or "")
    elif kind in _MEDIA:
        media = obj(message.get(kind))
        event.text = str(media.get("caption") or "")
        event.attachments = [{"type": "file" if kind == "document" else kind, "media_id": media.get("id"),
                              "mime_type": media.get("mime_type", ""), "file_name": media.get("filename", "")}]
    else:
        return Skipped("unsupported", f"{wamid}: message type {kind!r}")
    return event


def _status(number: str, status: dict):
    wamid, state = str(status.get("id") or ""), _STATUSES.get(str(status.get("status")))
    if not wamid or state is None:
        return Skipped("status_ignored", f"{wamid}: {status.get('status')!r}")
    error_code, error = "", ""
    if state == DeliveryStatus.FAILED:
        first = next(iter(_dicts(status.get("errors"))), {})
        details = obj(first.get("error_data")).get("details") or first.get("message") or ""
        error_code = str(first.get("code") or "")
        error = ": ".join(part for part in (str(first.get("title") or ""), str(details)) if part)
    return Status(channel=Channel.WHATSAPP, target=number, platform_user_id=str(status.get("recipient_id") or ""),
                  status=state, provider_message_ids=[wamid], error_code=error_code, error=error)
