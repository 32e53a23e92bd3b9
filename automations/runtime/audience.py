"""A schedule trigger's audience: the contacts a `schedule` entrypoint enrolls when its job fires.

The audience must be enumerable by the database: the filters' required tags pre-select contacts
(`audience_tags`), the full filters then decide per contact, in id order and batches (`enroll_audience`).
The scheduler's `schedule_trigger` handler calls both."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from automations.graph.filters import evaluate
from automations.models import Entrypoint, ScheduledJob
from automations.runtime.enrollment import TRIGGER, enroll
from automations.store.enrollment import audience_batch
from contacts.models import Conversation

ENROLL_BATCH = 500


def audience_tags(filters: dict) -> list[str | list[str]]:
    """The tag requirements in the filters' `all` groups (nested `all`s included), which the database can
    pre-select on: `tags`/`contact.tags` `contains`|`eq` X → "X"; `in` [X, Y] → ["X", "Y"] (any of them).
    The full filters still run per contact afterwards; [] means the audience is not enumerable."""
    required: list[str | list[str]] = []

    def walk(group):
        if not isinstance(group, dict):
            return
        for item in group.get("all") or []:
            if not isinstance(item, dict):
                continue
            if any(k in item for k in ("all", "any", "none")):
                walk(item)
                continue
            if item.get("field") not in ("tags", "contact.tags"):
                continue
            value = item.get("value")
            if item.get("op") in ("contains", "eq") and isinstance(value, str) and value.strip():
                required.append(value.strip())
            elif item.get("op") == "in" and isinstance(value, list):
                candidates = [v.strip() for v in value if isinstance(v, str) and v.strip()]
                if candidates:
                    required.append(candidates)

    walk(filters)
    return required


def enroll_audience(job: ScheduledJob, entrypoint: Entrypoint, tags: list[str | list[str]], now: datetime) -> int:
    """Enroll the contacts carrying `tags` that pass the entrypoint's filters and are reachable on its
    channel (an identity or a conversation on one of the channel's accounts — the entrypoint's account
    when it names one), in id order and batches. The job's payload keeps the cursor, so a retry
    continues where the failed attempt stopped; re-entry rules make a repeated contact harmless."""
    on_channel = Q(social_account__channel=entrypoint.channel)
    if entrypoint.social_account_id:
        on_channel &= Q(social_account_id=entrypoint.social_account_id)
    # Filters compare tags trimmed and case-insensitively: pre-select the same way (evaluate() decides).
    requirements = [[t.strip().lower() for t in (requirement if isinstance(requirement, list) else [requirement])]
                    for requirement in tags]
    cursor = (job.payload or {}).get("cursor")
    occurrence = (job.payload or {}).get("occurrence")
    enrolled = 0
    while True:
        batch = audience_batch(entrypoint.organization_id, entrypoint.channel, entrypoint.social_account_id,
                               requirements, cursor, ENROLL_BATCH)
        if not batch:
            break
        by_contact = {}
        conversations = (Conversation.objects.filter(on_channel, contact__in=batch).select_related("social_account")
                         .order_by(F("last_inbound_at").desc(nulls_last=True), "created_at"))
        for conversation in conversations:
            by_contact.setdefault(conversation.contact_id, conversation)
        for contact in batch:
            if not evaluate(entrypoint.filters, contact=contact):
                continue
            result = enroll(entrypoint.automation, contact, entrypoint=entrypoint,
                            conversation=by_contact.get(contact.pk), source=TRIGGER,
                            context={"schedule": {"occurrence": occurrence}}, now=now)
            if result.run is not None and result.blocked is None:
                enrolled += 1
        cursor = batch[-1].pk
        job.payload = {**(job.payload or {}), "cursor": cursor}
        ScheduledJob.objects.filter(pk=job.pk).update(payload=job.payload, updated_at=timezone.now())
    return enrolled
