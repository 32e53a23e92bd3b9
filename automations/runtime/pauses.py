"""Which contact pause (`automation_contact_controls` row) applies to a run, if any.

A pause applies to a (contact, automation) when it is global (automation NULL) or names that
automation, and its `paused_until` is NULL (until resumed) or still in the future. Creating, deleting
and expiring pauses lives in `runtime.controls`."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from contacts.models import ContactAutomationControl


def applying_pauses(contact_id: str, automation_id: str, now: datetime | None = None):
    now = now or timezone.now()
    return (
        ContactAutomationControl.objects.filter(contact_id=contact_id)
        .filter(Q(automation__isnull=True) | Q(automation_id=automation_id))
        .filter(Q(paused_until__isnull=True) | Q(paused_until__gt=now))
    )


def active_pause(contact_id: str, automation_id: str, now: datetime | None = None
                 ) -> ContactAutomationControl | None:
    """The pause row that keeps this automation away from this contact (global first), or None."""
    return (applying_pauses(contact_id, automation_id, now)
            .order_by(F("automation_id").asc(nulls_first=True), "created_at").first())
