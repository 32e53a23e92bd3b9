"""Instagram webhooks (`object: instagram`) → events and statuses. Direct messages, quick replies,
postbacks and receipts arrive in `messaging[]` exactly as Messenger's; comments arrive in `changes[]`
(`comments` → comment_created, `live_comments` → live_comment) with the comment id as event id.
Routed by `entry[].id` (the IG professional account id)."""

from __future__ import annotations

from automations.channels.inbound.messenger import dicts, parse_messaging
from automations.channels.inbound.normalized import Event, Skipped, obj
from automations.models import InboundKind
from contacts.models import Channel

_COMMENT_KINDS = {"comments": InboundKind.COMMENT_CREATED, "live_comments": InboundKind.LIVE_COMMENT}


def parse(body: dict) -> list:
    items = []
    for entry in dicts(body.get("entry")):
        account = str(entry.get("id") or "")
        for messaging in dicts(entry.get("messaging")):
            items.append(parse_messaging(Channel.INSTAGRAM, account, messaging))
        for change in dicts(entry.get("changes")):
            items.append(_change(account, change))
    return items


def _change(account: str, change: dict):
    kind = _COMMENT_KINDS.get(str(change.get("field")))
    value = change.get("value") if isinstance(change.get("value"), dict) else {}
    if kind is None:
        return Skipped("unsupported", f"instagram field {change.get('field')!r}")
    comment_id, author = str(value.get("id") or ""), obj(value.get("from"))
    author_id = str(author.get("id") or "")
    if not comment_id or not author_id:
        return Skipped("malformed", "comment without id or author")
    if author_id == account:
        return Skipped("own_comment", comment_id)  # the account's own replies notify too
    return Event(channel=Channel.INSTAGRAM, target=account, event_id=comment_id, kind=kind,
                 platform_user_id=author_id, name=str(author.get("username") or ""),
                 text=str(value.get("text") or ""), post_id=str(obj(value.get("media")).get("id") or "") or None,
                 parent_comment_id=str(value.get("parent_id") or "") or None, raw=value)
