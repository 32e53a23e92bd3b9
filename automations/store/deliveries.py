"""Statements on `automation_platform_deliveries` (raw platform deliveries, `channels.inbound.deliveries`).

Why hand-written: a delivery is claimed, handed out again or pruned in ONE statement each (an UPDATE or
DELETE over a locking subselect, returning what was touched), where the ORM needs a locking read and a
write in a transaction; on the measured machine Django spends about a millisecond compiling and adapting
each statement, several times what PostgreSQL spends running these. Every webhook a platform sends goes
through the claim.
"""

from __future__ import annotations

from datetime import datetime

from automations.models import PlatformDelivery, PlatformDeliveryStatus
from automations.store.base import fetch, fetch_one, instance_from, prefixed_list, statement

# The delivery, if it is still pending under the lease `token` it was handed out with: count the attempt
# and move the lease on (the new token).
CLAIM_DELIVERY = statement(
    """UPDATE {delivery} d SET {delivery.attempts} = d.{delivery.attempts} + 1, {delivery.lease_until} = %(lease)s
       WHERE d.{delivery.id} = %(id)s AND d.{delivery.status} = '{pending}' AND d.{delivery.lease_until} = %(token)s
       RETURNING {columns}""",
    delivery=PlatformDelivery, pending=PlatformDeliveryStatus.PENDING,
    columns=prefixed_list(PlatformDelivery, "d", "d"),
)

# Pending deliveries whose lease ended, oldest lease first, under a new lease.
RECONCILE_DELIVERIES = statement(
    """UPDATE {delivery} SET {delivery.lease_until} = %(lease)s WHERE {delivery.id} IN (
           SELECT {delivery.id} FROM {delivery}
           WHERE {delivery.status} = '{pending}' AND {delivery.lease_until} <= %(now)s
           ORDER BY {delivery.lease_until} LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
       RETURNING {delivery.id} AS id""",
    delivery=PlatformDelivery, pending=PlatformDeliveryStatus.PENDING,
)

# A batch of processed (done or failed) deliveries received before the cutoff.
PRUNE_DELIVERIES = statement(
    """DELETE FROM {delivery} WHERE {delivery.id} IN (
           SELECT {delivery.id} FROM {delivery} WHERE {delivery.received_at} < %(cutoff)s
           AND {delivery.status} <> '{pending}' LIMIT %(limit)s)
       RETURNING {delivery.id} AS id""",
    delivery=PlatformDelivery, pending=PlatformDeliveryStatus.PENDING,
)


def claim_delivery(delivery_id: str, token: datetime, lease: datetime) -> PlatformDelivery | None:
    """The delivery, claimed under `lease`; None if it is no longer held under `token` (done, handed out
    again)."""
    row = fetch_one(CLAIM_DELIVERY, {"id": delivery_id, "token": token, "lease": lease})
    return instance_from(PlatformDelivery, row, "d") if row else None


def reconcile_deliveries(now: datetime, lease: datetime, limit: int) -> list[str]:
    """The ids of up to `limit` pending deliveries whose lease ended at `now`, now under `lease`."""
    return [row["id"] for row in fetch(RECONCILE_DELIVERIES, {"now": now, "lease": lease, "limit": limit})]


def prune_deliveries(cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` processed deliveries received before `cutoff`; how many went."""
    return len(fetch(PRUNE_DELIVERIES, {"cutoff": cutoff, "limit": limit}))
