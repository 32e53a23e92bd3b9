"""What a platform delivery becomes, whatever the platform: events for the inbound pipeline, delivery
statuses for outbound messages, and entries deliberately skipped (with the reason, for the admin)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# The ids Relay gives the platform for its own buttons (see the channels contract): `b:<branch button id>`
# and `q:<quick reply id>`. Anything else is a payload some other sender set (a Get Started button, a
# persistent menu, a template): passed on as a button tap carrying the raw payload.
_TAP_PREFIXES = {"b:": "button", "q:": "quick_reply"}


def tap(payload) -> dict | None:
    """The pipeline's `interactive` for a payload the platform echoes back on a tap."""
    if payload is None or payload == "":
        return None
    payload = str(payload)
    for prefix, kind in _TAP_PREFIXES.items():
        if payload.startswith(prefix) and len(payload) > len(prefix):
            return {"type": kind, "id": payload[len(prefix):]}
    return {"type": "button", "id": payload}


def from_seconds(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_milliseconds(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


@dataclass
class Event:
    """One channel event for `POST /v1/inbound-events`' pipeline, addressed to the account that owns
    `target` (page / IG account / phone number id) on `channel` — or to `account_id` when the URL said."""

    channel: str
    target: str
    event_id: str
    kind: str
    platform_user_id: str
    name: str = ""
    text: str = ""
    interactive: dict | None = None
    post_id: str | None = None
    story_id: str | None = None
    parent_comment_id: str | None = None
    attachments: list = field(default_factory=list)
    occurred_at: datetime | None = None
    raw: dict = field(default_factory=dict)
    callback_query_id: str | None = None  # Telegram: answered once the tap is processed

    def body(self, account_id: str) -> dict:
        """The event as `POST /v1/inbound-events` takes it."""
        body = {"event_id": self.event_id, "social_account_id": account_id, "kind": self.kind,
                "contact": {"platform_user_id": self.platform_user_id, "name": self.name[:200]},
                "text": self.text}
        optional = {"interactive": self.interactive, "post_id": self.post_id, "story_id": self.story_id,
                    "parent_comment_id": self.parent_comment_id, "attachments": self.attachments or None,
                    "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None}
        body.update({key: value for key, value in optional.items() if value})
        return body


@dataclass
class Status:
    """The platform says how far outbound messages got: by their ids, or (Messenger `read`/`delivery`
    without ids) every message to `platform_user_id` sent up to `watermark`."""

    channel: str
    target: str
    platform_user_id: str
    status: str  # DeliveryStatus.DELIVERED | READ | FAILED
    provider_message_ids: list[str] = field(default_factory=list)
    watermark: datetime | None = None
    error_code: str = ""
    error: str = ""


@dataclass
class Skipped:
    """An entry deliberately not processed (our own echo, an edit, a kind Relay does not handle)."""

    reason: str
    detail: str = ""

    def as_result(self) -> dict:
        return {"skipped": self.reason, "detail": self.detail}


def obj(value) -> dict:
    """`value` if it is a JSON object, else an empty one: a platform body's nested fields are read with
    `.get` chains, and a hostile or malformed body must not turn them into exceptions."""
    return value if isinstance(value, dict) else {}
