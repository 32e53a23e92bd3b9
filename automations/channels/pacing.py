"""Send pacing: how fast one account, and one chat, may be sent to.

Each key (`a:<account id>`, `c:<conversation id>`) has one row in `channel_send_slots` holding the
earliest time its next message may go out. Taking a slot is one upsert that returns the slot and moves
`next_at` on by the provider's interval (Telegram: 1 s per chat, 1/30 s per bot; WhatsApp 1/80 s per
number; Messenger/Instagram 1/40 s per page), so concurrent workers queue up instead of bursting: a
10,000-contact campaign goes out at the account's rate. The account slot is taken first and the chat
slot no earlier than it, so the chat spacing holds exactly. A platform's "slow down" (Telegram
`retry_after`, Graph throughput codes) pushes the account's `next_at` out: every later send waits too.
PostgreSQL (not Redis) so it works on the embedded default; clock_timestamp() so workers share a clock.
The statements are in `store.pacing`."""

from __future__ import annotations

import random

from automations.store import pacing as slots


def account_key(account_id: str) -> str:
    return f"a:{account_id}"


def chat_key(conversation_id: str) -> str:
    return f"c:{conversation_id}"


def reserve(provider, account_id: str, conversation_id: str) -> float:
    """Take the next send slot for this account and chat; return how many seconds until it."""
    slot, now = None, None
    for key, interval in ((account_key(account_id), provider.account_interval),
                          (chat_key(conversation_id), provider.chat_interval)):
        if interval <= 0:
            continue
        slot, now = slots.take_slot(key, slot, interval)
    if random.random() < 0.01:  # slots an hour old say nothing: keep the table small
        slots.prune_slots()
    return max(0.0, (slot - now).total_seconds()) if slot is not None else 0.0


def hold_off(account_id: str, seconds: float) -> None:
    """Nothing goes out through the account for `seconds` (the platform asked us to slow down)."""
    slots.push_slot(account_key(account_id), seconds)
