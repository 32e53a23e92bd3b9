"""`webhook_inbound` entrypoints: signed POSTs from the customer's own systems start runs.

Signature header `X-Relay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
five minutes of tolerance either way, compared in constant time. The body is capped while it is read
(`RELAY_WEBHOOK_MAX_BODY_BYTES`, 413 above), the signature is checked on the raw bytes, and only then is
the body parsed (`relay.core.parsers.parse_json`). Nothing is written unless the signature is good. A
delivery is accepted once: its signature is remembered for the tolerance window (either way), so a
replay — or the same header with `t=`/`v1=` reordered — answers 409 `duplicate_delivery` and starts
nothing. The contact is found by `config.contact_lookup` (contact_id | email | phone) and
created only when `config.create_contact` allows; `config.payload_mapping` {context_key: "$.path"}
copies values from the body into the run's context. The entrypoint's `filters` apply as on any
entrypoint (the mapped context is their `context.*`): a contact they keep out is not enrolled
(`filtered_out`). Every accepted delivery is kept as an inbound event with its outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from automations.graph import filters
from automations.models import (
    ActiveStatus,
    AutomationStatus,
    Entrypoint,
    EntrypointKind,
    InboundOutcome,
    WebhookDelivery,
)
from automations.runtime import enrollment, inbound
from automations.store.webhooks import remember_delivery
from contacts import actions
from contacts.models import Contact
from relay.core.errors import ApiError
from relay.core.parsers import parse_json

SIGNATURE_HEADER = "X-Relay-Signature"
TOLERANCE_SECONDS = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_PATH_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Build a signature header value (used by tests, docs and customers' senders alike)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str | None, body: bytes, now: float | None = None) -> str:
    """Check the header against the raw body; return the (lower-case hex) signature it carried."""
    now = time.time() if now is None else now
    parts = dict(p.strip().split("=", 1) for p in (header or "").split(",") if "=" in p)
    timestamp, given = parts.get("t", "").strip(), parts.get("v1", "").strip().lower()
    if not _TIMESTAMP.fullmatch(timestamp) or not _DIGEST.fullmatch(given):
        raise ApiError("invalid_signature", f"Missing or malformed {SIGNATURE_HEADER} header.", status=401)
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise ApiError("stale_signature", "The signature timestamp is outside the 5-minute tolerance.", status=401)
    expected = sign(secret, body, int(timestamp)).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise ApiError("invalid_signature", "The signature does not match the body.", status=401)
    return given


_MISSING = object()


def json_path(document, path: str):
    """Resolve the `$.a.b[0]["c d"]` subset of JSONPath; a missing step gives _MISSING."""
    if not isinstance(path, str) or not path.startswith("$"):
        return _MISSING
    rest, value = path[1:], document
    while rest:
        match = _PATH_TOKEN.match(rest)
        if not match:
            return _MISSING
        key, index, quoted = match.groups()
        rest = rest[match.end():]
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
        else:
            name = key if key is not None else quoted
            if not isinstance(value, dict) or name not in value:
                return _MISSING
            value = value[name]
    return value


def mapped_context(mapping: dict, body) -> dict:
    context = {}
    for context_key, path in (mapping or {}).items():
        value = json_path(body, path)
        if value is not _MISSING:
            context[context_key] = value
    return context


@dataclass
class WebhookResult:
    outcome: str
    run_id: str | None
    contact_id: str | None

    def as_response(self) -> dict:
        return {"outcome": self.outcome, "run_id": self.run_id, "contact_id": self.contact_id}


def _lookup_value(body: dict, key: str):
    nested = body.get("contact") if isinstance(body.get("contact"), dict) else {}
    value = body.get(key, nested.get(key))
    return value if isinstance(value, str) and value.strip() else None


def resolve_contact(entrypoint: Entrypoint, body: dict) -> Contact:
    config = entrypoint.config or {}
    lookup = config.get("contact_lookup") or "contact_id"
    value = _lookup_value(body, lookup)
    if value is None:
        raise ApiError("contact_unresolved", f"The body must carry `{lookup}` to find the contact.", status=422,
                       details={lookup: ["required"]})
    contact = actions.find_or_create_contact(
        entrypoint.organization_id, {"contact_id": "pk"}.get(lookup, lookup), value.strip(),
        create=lookup != "contact_id" and bool(config.get("create_contact")), name=_lookup_value(body, "name") or "")
    if contact is None:
        raise ApiError("contact_not_found", f"No contact with {lookup} {value!r}.", status=404)
    return contact


def _remember_delivery(entrypoint: Entrypoint, signature: str) -> None:
    """Record the delivery in the caller's transaction (kept only if it commits, so a refused delivery
    may be retried); 409 when this signature was accepted already. A concurrent copy waits on the unique
    index for the first one's outcome. Deliveries older than twice the tolerance can no longer be
    replayed (the timestamp check refuses them): those of this entrypoint are dropped here."""
    now = timezone.now()
    if not remember_delivery(entrypoint.pk, signature, now):
        raise ApiError("duplicate_delivery", "This signed delivery was accepted already; it is not "
                       "processed twice (sign each delivery with its own timestamp).", status=409)
    WebhookDelivery.objects.filter(entrypoint=entrypoint,
                                   received_at__lt=now - timedelta(seconds=2 * TOLERANCE_SECONDS)).delete()


def receive_webhook(slug: str, raw_body: bytes, signature: str | None) -> WebhookResult:
    entrypoint = (Entrypoint.objects.select_related("automation")
                  .filter(webhook_slug=slug, kind=EntrypointKind.WEBHOOK_INBOUND).first())
    if entrypoint is None:
        raise ApiError("not_found", "No webhook entrypoint with this slug.", status=404)
    given = verify_signature(entrypoint.webhook_secret, signature, raw_body)
    # Parsed only once the signature holds, so unsigned junk learns nothing beyond 401/404.
    body = parse_json(raw_body)
    if not isinstance(body, dict):
        raise ApiError("validation_error", "The webhook body must be a JSON object.", status=400)
    if entrypoint.status != ActiveStatus.ACTIVE or entrypoint.automation.status != AutomationStatus.ACTIVE:
        raise ApiError("entrypoint_inactive", "This webhook entrypoint or its automation is not active.", status=422)
    with transaction.atomic():
        _remember_delivery(entrypoint, given)
        contact = resolve_contact(entrypoint, body)
        context = mapped_context((entrypoint.config or {}).get("payload_mapping") or {}, body)
        if entrypoint.filters and not filters.evaluate(entrypoint.filters, contact=contact, context=context):
            inbound.record_webhook_delivery(entrypoint, contact, body, InboundOutcome.FILTERED_OUT, None,
                                            "filters_failed")
            return WebhookResult(InboundOutcome.FILTERED_OUT, None, contact.id)
        result = enrollment.enroll(entrypoint.automation, contact, entrypoint=entrypoint, context=context,
                                   source=enrollment.TRIGGER)
        outcome = InboundOutcome.ENROLLED if result.ok else result.blocked
        run_id = result.run.id if result.run else None
        inbound.record_webhook_delivery(entrypoint, contact, body, result.inbound_outcome, run_id,
                                        "matched" if result.ok else result.blocked)
    return WebhookResult(outcome, run_id, contact.id)
