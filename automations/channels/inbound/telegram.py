"""Telegram `Update`s (one per delivery) → events. The bot is known from the webhook URL, so every event
goes to that account; `update_id` is unique per bot only, hence `tg:<bot id>:<update_id>` as event id."""

from __future__ import annotations

import logging

from automations.channels.inbound.normalized import Event, Skipped, from_seconds, obj, tap
from automations.models import InboundKind
from contacts.models import Channel, Provider

logger = logging.getLogger(__name__)

_MEDIA = {"photo": "image", "video": "video", "audio": "audio", "voice": "audio", "document": "file",
          "animation": "video", "sticker": "sticker"}


def parse(update: dict, account) -> list:
    """The one item a Telegram update holds (an event, or why it was skipped)."""
    update_id = update.get("update_id")
    if not isinstance(update_id, int):
        return [Skipped("malformed", "update without an integer update_id")]
    event_id = f"tg:{account.external_id}:{update_id}"
    if isinstance(update.get("message"), dict):
        return [_message(update["message"], account, event_id)]
    if isinstance(update.get("callback_query"), dict):
        return [_callback(update["callback_query"], account, event_id)]
    kinds = sorted(key for key in update if key != "update_id")
    return [Skipped("unsupported", f"update {update_id}: {', '.join(kinds) or 'empty'}")]


def _sender(person: dict) -> tuple[str, str]:
    name = " ".join(str(person.get(part) or "") for part in ("first_name", "last_name")).strip()
    return str(person.get("id")), name


def _message(message: dict, account, event_id: str):
    person = obj(message.get("from"))
    if not person.get("id"):
        return Skipped("no_sender", f"message {message.get('message_id')} (a channel post?)")
    if person.get("is_bot"):
        return Skipped("from_bot", f"message {message.get('message_id')}")
    user_id, name = _sender(person)
    return Event(channel=Channel.TELEGRAM, target=account.external_id, event_id=event_id,
                 kind=InboundKind.DM_RECEIVED, platform_user_id=user_id, name=name,
                 text=str(message.get("text") or message.get("caption") or ""),
                 attachments=_attachments(message), occurred_at=from_seconds(message.get("date")), raw=message)


def _attachments(message: dict) -> list:
    found = []
    for key, kind in _MEDIA.items():
        media = message.get(key)
        if isinstance(media, list) and media:  # photo: every size; the last is the largest
            media = media[-1]
        if not isinstance(media, dict):
            continue
        found.append({"type": kind, "file_id": media.get("file_id"), "mime_type": media.get("mime_type", ""),
                      "size_bytes": media.get("file_size") or 0})
    return found


def _callback(query: dict, account, event_id: str):
    person = obj(query.get("from"))
    if not person.get("id"):
        return Skipped("no_sender", f"callback_query {query.get('id')}")
    user_id, name = _sender(person)
    return Event(channel=Channel.TELEGRAM, target=account.external_id, event_id=event_id,
                 kind=InboundKind.POSTBACK, platform_user_id=user_id, name=name, interactive=tap(query.get("data")),
                 occurred_at=from_seconds(obj(query.get("message")).get("date")), raw=query,
                 callback_query_id=str(query.get("id") or "") or None)


def answer_callback(account, callback_query_id: str) -> bool:
    """Stop the button's spinner in the user's client (Telegram expects an answer to every callback).
    Cosmetic: a failure is logged, never a reason to process the tap again. A sandbox account has no bot."""
    if account.provider != Provider.TELEGRAM:
        return False
    try:
        from automations.channels import telegram as bot_api

        bot_api.call(account, "answerCallbackQuery", {"callback_query_id": callback_query_id})
    except Exception:  # noqa: BLE001 - see above
        logger.warning("telegram: answerCallbackQuery %s for %s failed", callback_query_id, account.pk, exc_info=True)
        return False
    return True
