"""Telegram Bot API: `POST <RELAY_TELEGRAM_API_BASE>/bot<token>/<method>` with a JSON body.

Buttons become an inline keyboard (one button per row): branch buttons and quick replies carry
`callback_data` (`b:<id>` / `q:<id>`, at most 64 bytes — the validator refuses longer ids), URL
buttons an `url`. Media go through sendPhoto/sendVideo/sendAudio/sendDocument with a caption.
A sent message's id is stored as `<chat_id>:<message_id>` (message ids are per chat). A group that
became a supergroup answers 400 with `parameters.migrate_to_chat_id`: the send is retried once to the
new chat, and the contact's identity on the bot takes the new id for later sends."""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction

from automations.channels import http
from automations.channels.base import (
    NetworkProvider,
    branch_payload,
    buttons_of,
    clip,
    quick_reply_payload,
    unsupported_buttons,
)
from automations.channels.errors import ChannelError, ErrorClass

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_BYTES = 64
MEDIA_METHODS = {"image": ("sendPhoto", "photo"), "video": ("sendVideo", "video"),
                 "audio": ("sendAudio", "audio"), "file": ("sendDocument", "document")}
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]

logger = logging.getLogger(__name__)


class ChatMigrated(ChannelError):
    """The chat was upgraded to a supergroup: messages go to `new_chat_id` from now on."""

    def __init__(self, message: str, *, new_chat_id: int):
        super().__init__(ErrorClass.REJECTED, message, code="400")
        self.new_chat_id = new_chat_id


def _url(token: str, method: str) -> str:
    return f"{settings.RELAY_TELEGRAM_API_BASE}/bot{token}/{method}"


def classify(status: int, body: dict) -> ChannelError:
    code = body.get("error_code") or status
    description = str(body.get("description") or f"HTTP {status}")[:500]
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    if code == 429:
        retry_after = parameters.get("retry_after")
        return ChannelError(ErrorClass.RATE_LIMITED, description, code="429",
                            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None)
    migrate_to = parameters.get("migrate_to_chat_id")
    if isinstance(migrate_to, int) and not isinstance(migrate_to, bool):
        return ChatMigrated(description, new_chat_id=migrate_to)
    if code in (401, 404):  # 404: Telegram's answer to a token of the wrong shape
        return ChannelError(ErrorClass.NEEDS_REAUTH, description, code=str(code))
    if status >= 500 or code >= 500:
        return ChannelError(ErrorClass.TRANSIENT, description, code=str(code))
    return ChannelError(ErrorClass.REJECTED, description, code=str(code))


def call(account, method: str, payload: dict) -> dict:
    """One Bot API call with the account's token; returns the decoded answer (`{"ok": true, "result":
    …}`) or raises ChannelError (the shared classes)."""
    token = account.credentials.get("bot_token")
    if not token:
        raise ChannelError(ErrorClass.NEEDS_REAUTH, "the account has no bot_token", code="no_credentials")
    status, body = http.call("telegram", "POST", _url(token, method), json_body=payload)
    if status == 200 and body.get("ok") is True:
        return body
    raise classify(status, body)


def _keyboard(part: dict) -> list[list[dict]]:
    rows = []
    for button in buttons_of(part):
        label = clip(button.get("label") or "", 64)
        if button.get("type") == "branch":
            rows.append([{"text": label, "callback_data": branch_payload(button["id"])}])
        elif button.get("type") == "url" and button.get("url"):
            rows.append([{"text": label, "url": button["url"]}])
    for reply in part.get("quick_replies") or []:
        rows.append([{"text": clip(reply.get("label") or "", 64), "callback_data": quick_reply_payload(reply["id"])}])
    return rows


def _record_migration(account, old_chat_id: str, new_chat_id: int) -> None:
    """Later sends to this contact go to the supergroup: its identity on the bot takes the new chat id
    (kept as is when another contact already holds that id)."""
    from contacts.models import ContactIdentity

    try:
        with transaction.atomic():
            ContactIdentity.objects.filter(social_account_id=account.pk, platform_user_id=str(old_chat_id)).update(
                platform_user_id=str(new_chat_id))
    except IntegrityError:
        logger.warning("telegram chat %s migrated to %s, which another contact of account %s already has",
                       old_chat_id, new_chat_id, account.pk)


class TelegramProvider(NetworkProvider):
    name = "telegram"
    chat_interval = 1.0  # "no more than one message per second" in a chat
    account_interval = 1 / 30  # ~30 messages per second per bot

    def render(self, part: dict, recipient: str) -> tuple[str, dict]:
        chat_id = int(recipient) if recipient.lstrip("-").isdigit() else recipient
        kind = part.get("type")
        body: dict = {"chat_id": chat_id}
        if kind in MEDIA_METHODS:
            method, field = MEDIA_METHODS[kind]
            body[field] = part.get("media_ref")
            if part.get("caption"):
                body["caption"] = clip(part["caption"], CAPTION_LIMIT)
        else:  # text (cards and galleries are not sent on Telegram: message.NO_CARDS)
            method = "sendMessage"
            body["text"] = clip(part.get("text") or " ", TEXT_LIMIT)
        keyboard = _keyboard(part)
        if keyboard:
            body["reply_markup"] = {"inline_keyboard": keyboard}
        return method, body

    def send(self, account, request: tuple[str, dict], recipient: str) -> str:
        method, payload = request
        try:
            result = call(account, method, payload).get("result")
        except ChatMigrated as exc:  # once: a second migration answer fails the message
            _record_migration(account, recipient, exc.new_chat_id)
            payload = {**payload, "chat_id": exc.new_chat_id}
            result = call(account, method, payload).get("result")
        if isinstance(result, dict) and "message_id" in result:
            return f"{payload['chat_id']}:{result['message_id']}"
        return ""

    def typing_body(self, message, recipient: str):
        chat_id = int(recipient) if recipient.lstrip("-").isdigit() else recipient
        return "sendChatAction", {"chat_id": chat_id, "action": "typing"}

    def verify(self, account) -> dict:
        """getMe (the token works: the bot's name and id), then setWebhook with a fresh secret_token,
        which Telegram sends back on every update (`credentials["webhook_secret"]`)."""
        me = call(account, "getMe", {}).get("result") or {}
        secret = secrets.token_urlsafe(32)
        call(account, "setWebhook", {
            "url": f"{settings.RELAY_PUBLIC_URL}/v1/platform-webhooks/telegram/{account.pk}",
            "secret_token": secret, "allowed_updates": ALLOWED_UPDATES})
        name = me.get("first_name") or ""
        if me.get("username"):
            name = f"{name} (@{me['username']})" if name else f"@{me['username']}"
        return {"display_name": name, "platform_id": str(me.get("id") or ""),
                "credentials": {"webhook_secret": secret}}

    def problems(self, config: dict) -> list[str]:
        from automations.nodes.message import branch_buttons, quick_replies

        found = []
        ids = [branch_payload(b["id"]) for b in branch_buttons(config)]
        ids += [quick_reply_payload(q["id"]) for q in quick_replies(config)]
        for payload in ids:
            if len(payload.encode()) > CALLBACK_DATA_BYTES:
                found.append(f"button id {payload[2:]!r} is too long for Telegram (callback data holds "
                             f"{CALLBACK_DATA_BYTES} bytes with its 2-byte prefix)")
        found += unsupported_buttons(config, "Telegram")
        return found

