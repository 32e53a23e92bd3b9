"""Raw platform deliveries: stored as they arrived (one INSERT) before the platform gets its 200, then
processed on a worker, each entry through the same pipeline as `POST /v1/inbound-events`.

Claiming works like the scheduler's jobs: `lease_until` is the claim token. The view enqueues the
processing task with the lease the row was stored with; the task claims the row only while it still
holds that value (and moves it on), so a task arriving late after the tick re-enqueued the delivery
does nothing. A delivery whose processing died (worker killed, task lost by the broker) is still
`pending` when its lease ends, and the tick's `reconcile` hands it out again. Reprocessing is safe: every
event is deduplicated by its platform id and statuses only move forward. A failure is retried with a
growing delay; after MAX_ATTEMPTS the delivery is `failed` with the error (visible in the admin). The
claim, reconcile and prune statements are in `store.deliveries`."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automations.channels.inbound import meta, statuses, telegram, whatsapp
from automations.channels.inbound.normalized import Event, Skipped, Status
from automations.models import InboundOutcome, PlatformDelivery, PlatformDeliveryStatus, WebhookSource
from automations.store import deliveries as delivery_store
from contacts.models import SocialAccount

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=3)
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
RECONCILE_BATCH = 200
PRUNE_BATCH = 1000
LAST_ERROR_MAX = 4000

_PARSERS = {WebhookSource.META: meta.parse, WebhookSource.WHATSAPP: whatsapp.parse}


def store(source: str, body: bytes, account: SocialAccount | None = None) -> PlatformDelivery:
    """Keep the delivery (one statement) and hand it to a worker once that is committed."""
    now = timezone.now()
    delivery = PlatformDelivery.objects.create(source=source, social_account=account, body=body,
                                               lease_until=now + LEASE, received_at=now)
    # robust: a broker that is down must not turn a stored delivery into a 500 (the platform would send
    # it again); the tick hands it out when the lease ends.
    transaction.on_commit(partial(_enqueue, [delivery.pk], delivery.lease_until), robust=True)
    return delivery


def _enqueue(delivery_ids: list[str], lease: datetime) -> None:
    from automations import tasks

    for delivery_id in delivery_ids:
        tasks.process_platform_delivery.delay(delivery_id, lease.isoformat())


def process(delivery_id: str, lease: datetime, now: datetime | None = None) -> PlatformDelivery | None:
    """Claim the delivery with the lease it was handed out with and process every entry; None if it is
    no longer this caller's (done, or handed out again)."""
    now = now or timezone.now()
    delivery = delivery_store.claim_delivery(delivery_id, lease, now + LEASE)
    if delivery is None:
        return None
    try:
        results, unknown = _handle(delivery)
    except Exception as exc:  # noqa: BLE001 - recorded on the row and retried; the tick picks it up
        logger.exception("platform delivery %s failed (attempt %s)", delivery.pk, delivery.attempts)
        _record_failure(delivery, exc, timezone.now())
        return delivery
    PlatformDelivery.objects.filter(pk=delivery.pk, lease_until=delivery.lease_until).update(
        status=PlatformDeliveryStatus.DONE, processed_at=timezone.now(), results=results,
        unknown_targets=sorted(unknown), last_error="")
    delivery.status, delivery.results, delivery.unknown_targets = PlatformDeliveryStatus.DONE, results, sorted(unknown)
    return delivery


def _record_failure(delivery: PlatformDelivery, exc: Exception, now: datetime) -> None:
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:LAST_ERROR_MAX]
    changes = {"last_error": error}
    if delivery.attempts >= MAX_ATTEMPTS:
        changes.update(status=PlatformDeliveryStatus.FAILED, processed_at=now)
    else:
        changes["lease_until"] = now + RETRY_BASE * 2 ** (delivery.attempts - 1)
    PlatformDelivery.objects.filter(pk=delivery.pk, lease_until=delivery.lease_until).update(**changes)


def _handle(delivery: PlatformDelivery) -> tuple[list[dict], set[str]]:
    body = json.loads(bytes(delivery.body))  # checked to be a JSON object before it was stored
    if delivery.source == WebhookSource.TELEGRAM:
        if delivery.social_account is None:  # the bot was deleted since
            return [Skipped("account_deleted").as_result()], set()
        items = telegram.parse(body, delivery.social_account)
    else:
        items = _PARSERS[delivery.source](body)
    results, unknown, accounts = [], set(), {}
    for item in items:
        if isinstance(item, Skipped):
            results.append(item.as_result())
            continue
        targets = _accounts(delivery, item, accounts)
        if not targets:
            # Acknowledged all the same (the platform would retry for days); kept for the admin.
            label = f"{item.channel}:{item.target}"
            logger.warning("platform delivery %s: no connected account for %s", delivery.pk, label)
            unknown.add(label)
            results.append({"unknown_target": label})
            continue
        for account in targets:
            results.append(_receive(account, item) if isinstance(item, Event) else _status(account, item))
    return results, unknown


def _accounts(delivery: PlatformDelivery, item, cache: dict) -> list[SocialAccount]:
    """Every account (of any organization) connected as the item's page / IG account / number."""
    if delivery.source == WebhookSource.TELEGRAM:
        return [delivery.social_account]
    key = (item.channel, item.target)
    if key not in cache:
        cache[key] = list(SocialAccount.objects.filter(channel=item.channel, external_id=item.target)
                          .order_by("created_at", "id")) if item.target else []
    return cache[key]


def _receive(account: SocialAccount, event: Event) -> dict:
    from automations.api.inbound import InboundEventSerializer, receive

    result = {"event_id": event.event_id, "kind": event.kind, "social_account_id": account.pk}
    serializer = InboundEventSerializer(data=event.body(account.pk), context={"organization": account.organization_id})
    if not serializer.is_valid():
        logger.warning("platform event %s refused: %s", event.event_id, serializer.errors)
        result["invalid"] = json.loads(json.dumps(serializer.errors))
    else:
        received = receive(serializer.validated_data, raw=event.raw)
        result.update(outcome=received.outcome, run_id=received.run_id)
    if event.callback_query_id and result.get("outcome") != InboundOutcome.DUPLICATE:
        telegram.answer_callback(account, event.callback_query_id)  # a redelivery was answered the first time
    return result


def _status(account: SocialAccount, status: Status) -> dict:
    return {"status": status.status, "social_account_id": account.pk,
            "provider_message_ids": status.provider_message_ids, "updated": statuses.apply(account, status)}


def reconcile(now: datetime | None = None, limit: int = RECONCILE_BATCH) -> int:
    """Hand out again the pending deliveries whose lease ended (their processing died or was never
    started); the new lease is the token their task claims with."""
    now = now or timezone.now()
    lease = now + LEASE
    ids = delivery_store.reconcile_deliveries(now, lease, limit)
    if ids:
        transaction.on_commit(partial(_enqueue, ids, lease))
    return len(ids)


def prune(now: datetime | None = None, limit: int = PRUNE_BATCH) -> int:
    """Delete processed deliveries older than the retention (a batch per tick)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RELAY_PLATFORM_DELIVERY_RETENTION_DAYS)
    return delivery_store.prune_deliveries(cutoff, limit)
