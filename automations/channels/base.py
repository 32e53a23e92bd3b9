"""What the network providers share: the recipient lookup, the button payloads the inbound side reads
back, text limits, and `NetworkProvider` (check, deliver, typing) over each platform's `render` and
`send`.

Button payload format (agreed with the inbound webhooks): a branch button is sent as `b:<button id>`,
a quick reply as `q:<quick reply id>` (Telegram callback_data, WhatsApp reply/row id, Messenger and
Instagram postback/quick-reply payload)."""

from __future__ import annotations

import logging

from automations.channels.errors import ChannelError, DeliveryError, ErrorClass
from contacts.models import AccountStatus, ContactIdentity

logger = logging.getLogger(__name__)

BRANCH_PREFIX = "b:"
# Message.payload key of a part sent as a private reply to the comment that started its run (Instagram,
# Messenger: `{"recipient": {"comment_id": …}}`, one per comment) — set when the message is queued.
PRIVATE_REPLY_TO = "private_reply_to_comment_id"
QUICK_REPLY_PREFIX = "q:"
SENDABLE_BUTTONS = ("branch", "url")  # call/share buttons exist on no platform we send to as such


def branch_payload(button_id: str) -> str:
    return f"{BRANCH_PREFIX}{button_id}"


def quick_reply_payload(reply_id: str) -> str:
    return f"{QUICK_REPLY_PREFIX}{reply_id}"


def clip(text: str, limit: int) -> str:
    """At most `limit` characters (an ellipsis marks a cut)."""
    text = text or ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clip_bytes(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, cut on a character boundary (Instagram counts bytes)."""
    text = text or ""
    if len(text.encode()) <= limit:
        return text
    cut = text.encode()[:limit - 3].decode("utf-8", errors="ignore")
    return cut + "…"


def is_link(ref: str) -> bool:
    return isinstance(ref, str) and ref.startswith(("https://", "http://"))


def recipient_of(conversation) -> str:
    """The contact's id on the conversation's account (PSID, IGSID, wa_id, Telegram chat id)."""
    user_id = (ContactIdentity.objects.filter(contact_id=conversation.contact_id,
                                              social_account_id=conversation.social_account_id)
               .values_list("platform_user_id", flat=True).first())
    if not user_id:
        raise ChannelError(ErrorClass.REJECTED, "the contact has no identity on this account", code="no_recipient")
    return user_id


def buttons_of(part: dict) -> list[dict]:
    return [b for b in part.get("buttons") or [] if isinstance(b, dict)]


def unsupported_buttons(config: dict, platform: str, sendable=SENDABLE_BUTTONS) -> list[str]:
    """Buttons of a kind the platform has no counterpart for."""
    from automations.nodes.message import _button_containers

    found = []
    for buttons in _button_containers(config if isinstance(config, dict) else {}):
        for button in buttons if isinstance(buttons, list) else []:
            if isinstance(button, dict) and button.get("type") not in sendable:
                found.append(f"{button.get('type')} buttons cannot be sent on {platform}")
    return found


class NetworkProvider:
    """A platform reached over HTTP after the run's commit (the outbox): `deliver` sends one part.

    Subclasses set `name` and their pacing intervals and implement `render(part, recipient) -> request`,
    `send(account, body, recipient) -> provider message id`, `typing_body(message, recipient)`,
    `verify(account) -> dict` and `problems(config) -> list[str]` (what the validator reports as
    `channel_capability`)."""

    name = ""
    records_in_transaction = False
    # Pacing (see channels.pacing): seconds between two sends to one chat / through one account.
    chat_interval = 0.0
    account_interval = 0.0

    def check(self, account) -> None:
        """Refuse before anything is written: no credentials, or credentials the platform rejected."""
        if account.status == AccountStatus.NEEDS_REAUTH:
            raise DeliveryError(ErrorClass.NEEDS_REAUTH,
                                f"the {self.name} account needs new credentials: {account.last_error or 'rejected'}")
        if not account.credentials_encrypted:
            raise DeliveryError("no_credentials", f"the {self.name} account has no credentials")

    def deliver(self, message) -> str:
        conversation = message.conversation
        account = conversation.social_account
        recipient = recipient_of(conversation)
        part = message.payload if isinstance(message.payload, dict) else {}
        if part.get("typing_indicator_seconds") or part.get("typing_before_seconds"):
            self.typing(account, message, recipient)
        return self.send(account, self.render(part, recipient), recipient)

    def typing(self, account, message, recipient: str) -> None:
        """Best effort: a typing indicator that fails (whatever the reason) never stops the message —
        a token the platform refuses is refused again, and handled, by the send that follows."""
        try:
            body = self.typing_body(message, recipient)
            if body is not None:
                self.send(account, body, recipient)
        except ChannelError as exc:
            logger.info("%s typing indicator for message %s not shown: %s", self.name, message.pk, exc.code)

    def typing_body(self, message, recipient: str):
        """The request that shows the contact a typing indicator before `message`, or None."""
        return None

    def token(self, account, key: str = "access_token") -> str:
        token = account.credentials.get(key)
        if not token:
            raise ChannelError(ErrorClass.NEEDS_REAUTH, f"the account has no {key}", code="no_credentials")
        return token

    def problems(self, config: dict) -> list[str]:
        return []
