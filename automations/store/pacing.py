"""Statements on `channel_send_slots` (send pacing, `channels.pacing`).

Why hand-written: taking a slot is one upsert that returns the slot and moves `next_at` on, with
`clock_timestamp()` so workers share the database's clock; the ORM would need a locking read and a write
(two statements, a transaction) for every message sent, each costing Django about a millisecond of
compiling on the measured machine — more than PostgreSQL spends running this one.
"""

from __future__ import annotations

from automations.models import SendSlot
from automations.store.base import execute, fetch_one, statement

# The slot `key` may send at (no earlier than `after`, when given), moving `next_at` on by `interval`
# seconds past it; returns the slot and the database's now.
TAKE_SLOT = statement(
    """INSERT INTO {slot} AS s ({slot.key}, {slot.next_at})
       VALUES (%(key)s, greatest(clock_timestamp(), coalesce(%(after)s, '-infinity'::timestamptz))
                        + %(interval)s * interval '1 second')
       ON CONFLICT ({slot.key}) DO UPDATE SET {slot.next_at} = greatest(
           s.{slot.next_at}, clock_timestamp(), coalesce(%(after)s, '-infinity'::timestamptz))
           + %(interval)s * interval '1 second'
       RETURNING s.{slot.next_at} - %(interval)s * interval '1 second' AS slot, clock_timestamp() AS now""",
    slot=SendSlot,
)
# Nothing goes out through `key` for `seconds` (a later `next_at` already there stays).
PUSH_SLOT = statement(
    """INSERT INTO {slot} AS s ({slot.key}, {slot.next_at})
       VALUES (%(key)s, clock_timestamp() + %(seconds)s * interval '1 second')
       ON CONFLICT ({slot.key}) DO UPDATE SET {slot.next_at} = greatest(s.{slot.next_at}, excluded.{slot.next_at})""",
    slot=SendSlot,
)
# Slots an hour old say nothing any more.
PRUNE_SLOTS = statement("DELETE FROM {slot} WHERE {slot.next_at} < clock_timestamp() - interval '1 hour'",
                        slot=SendSlot)


def take_slot(key: str, after, interval: float) -> tuple:
    """(slot, database now) for `key`, no earlier than `after` (None: no bound)."""
    row = fetch_one(TAKE_SLOT, {"key": key, "after": after, "interval": interval})
    return row["slot"], row["now"]


def push_slot(key: str, seconds: float) -> None:
    execute(PUSH_SLOT, {"key": key, "seconds": seconds})


def prune_slots() -> None:
    execute(PRUNE_SLOTS, None)
