"""Delivery statuses reported by the platforms, applied to outbound `Message` rows of the account.

A status only moves forward: pending → sent → delivered → read. `failed` ends a message the platform
had accepted; `unknown` (the send may or may not have gone out) is settled by a later delivered/read.
Reports arrive out of order (a `read` before its `delivered`), and the platforms redeliver them: an
update that would move a message backwards, or sideways, changes nothing."""

from __future__ import annotations

from django.db.models import Q

from automations.channels.inbound.normalized import Status
from contacts.models import ContactIdentity, DeliveryStatus, Message, MessageDirection

# The statuses a message may have for each report to apply.
_MOVES_FROM = {
    DeliveryStatus.DELIVERED: [DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.UNKNOWN],
    DeliveryStatus.READ: [DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.DELIVERED,
                          DeliveryStatus.UNKNOWN],
    DeliveryStatus.FAILED: [DeliveryStatus.PENDING, DeliveryStatus.SENT],
}


def apply(account, status: Status) -> int:
    """Update the account's outbound messages `status` names (one statement); how many changed."""
    messages = Message.objects.filter(conversation__social_account_id=account.pk, direction=MessageDirection.OUTBOUND,
                                      status__in=_MOVES_FROM[status.status])
    if status.provider_message_ids:
        messages = messages.filter(provider_message_id__in=status.provider_message_ids)
    elif status.watermark is not None and status.platform_user_id:
        contact_ids = ContactIdentity.objects.filter(social_account_id=account.pk,
                                                     platform_user_id=status.platform_user_id).values("contact_id")
        messages = messages.filter(conversation__contact_id__in=contact_ids).filter(
            Q(sent_at__lte=status.watermark) | Q(sent_at__isnull=True, created_at__lte=status.watermark))
    else:
        return 0
    changes = {"status": status.status}
    if status.status == DeliveryStatus.FAILED:
        changes.update(error_code=status.error_code[:64], error=status.error)
    return messages.update(**changes)
