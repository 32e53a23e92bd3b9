"""Messenger webhooks (`object: page`) → events and delivery statuses. Routed by `entry[].id` (the page id);
the event id is the message's `mid`. Instagram's `messaging[]` entries have the same shape (`instagram`)."""

from __future__ import annotations

from automations.channels.inbound.normalized import Event, Skipped, Status, from_milliseconds, obj, tap
from automations.models import InboundKind
from contacts.models import Channel, DeliveryStatus


def parse(body: dict) -> list:
    items = []
    for entry in dicts(body.get("entry")):
        page = str(entry.get("id") or "")
        for messaging in dicts(entry.get("messaging")):
            items.append(parse_messaging(Channel.FACEBOOK, page, messaging))
    return items


def dicts(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def parse_messaging(channel: str, target: str, messaging: dict):
    """One `messaging[]` entry: a message, a postback, or a delivery/read receipt."""
    sender = str(obj(messaging.get("sender")).get("id") or "")
    occurred_at = from_milliseconds(messaging.get("timestamp"))
    message, postback = messaging.get("message"), messaging.get("postback")
    if isinstance(message, dict):
        return _message(channel, target, sender, message, occurred_at)
    if isinstance(postback, dict):
        mid = str(postback.get("mid") or "") or f"postback:{sender}:{messaging.get('timestamp')}"
        return Event(channel=channel, target=target, event_id=mid, kind=InboundKind.POSTBACK,
                     platform_user_id=sender, text=str(postback.get("title") or ""),
                     interactive=tap(postback.get("payload")), occurred_at=occurred_at, raw=messaging)
    if isinstance(messaging.get("delivery"), dict):
        delivery = messaging["delivery"]
        mids = [str(mid) for mid in delivery.get("mids") if mid] if isinstance(delivery.get("mids"), list) else []
        return Status(channel=channel, target=target, platform_user_id=sender, status=DeliveryStatus.DELIVERED,
                      provider_message_ids=mids,
                      watermark=None if mids else from_milliseconds(delivery.get("watermark")))
    if isinstance(messaging.get("read"), dict):
        read = messaging["read"]
        if read.get("mid"):  # Instagram names the message read
            return Status(channel=channel, target=target, platform_user_id=sender, status=DeliveryStatus.READ,
                          provider_message_ids=[str(read["mid"])])
        return Status(channel=channel, target=target, platform_user_id=sender, status=DeliveryStatus.READ,
                      watermark=from_milliseconds(read.get("watermark")))
    kinds = sorted(key for key in messaging if key not in ("sender", "recipient", "timestamp"))
    return Skipped("unsupported", f"{channel} {', '.join(kinds) or 'empty'} from {sender}")


def _message(channel: str, target: str, sender: str, message: dict, occurred_at):
    mid = str(message.get("mid") or "")
    if message.get("is_echo"):
        return Skipped("echo", mid)  # our own send coming back: answering it would loop
    if not mid or not sender:
        return Skipped("malformed", "message without mid or sender")
    if message.get("is_deleted") or message.get("is_unsupported"):
        return Skipped("unsupported", f"{mid}: deleted or unsupported message")
    event = Event(channel=channel, target=target, event_id=mid, kind=InboundKind.DM_RECEIVED,
                  platform_user_id=sender, text=str(message.get("text") or ""), occurred_at=occurred_at,
                  raw=message)
    quick_reply = message.get("quick_reply")
    if isinstance(quick_reply, dict):
        event.interactive = tap(quick_reply.get("payload"))
    attachments = dicts(message.get("attachments"))
    event.attachments = [{"type": str(a.get("type") or ""), "url": str(obj(a.get("payload")).get("url") or "")}
                         for a in attachments if a.get("type") != "story_mention"]
    story = obj(message.get("reply_to")).get("story")
    if isinstance(story, dict):
        event.kind, event.story_id = InboundKind.STORY_REPLY, str(story.get("id") or "") or None
    elif any(a.get("type") == "story_mention" for a in attachments):
        event.kind = InboundKind.STORY_MENTION
    return event
