"""Statements on `automation_webhook_deliveries` (signed `webhook_inbound` deliveries, `runtime.webhooks`).

Why hand-written: a delivery is remembered and its replay detected in ONE statement (`INSERT … ON
CONFLICT DO NOTHING RETURNING`): a concurrent copy waits on the unique index for the first one's outcome,
with no exception to catch and no savepoint. The ORM's `get_or_create` needs a savepoint and two or three
statements, each costing Django about a millisecond of compiling on the measured machine.
"""

from __future__ import annotations

from datetime import datetime

from automations.models import WebhookDelivery
from automations.store.base import fetch_one, statement

# Remember the delivery; a row back iff this signature was not accepted for the entrypoint before.
REMEMBER_DELIVERY = statement(
    """INSERT INTO {delivery} ({delivery.entrypoint}, {delivery.signature}, {delivery.received_at})
       VALUES (%(entrypoint)s, %(signature)s, %(now)s) ON CONFLICT DO NOTHING RETURNING 1 AS remembered""",
    delivery=WebhookDelivery,
)


def remember_delivery(entrypoint_id: str, signature: str, now: datetime) -> bool:
    """Record the delivery (in the caller's transaction); False when it was accepted already."""
    return fetch_one(REMEMBER_DELIVERY, {"entrypoint": entrypoint_id, "signature": signature, "now": now}) is not None
