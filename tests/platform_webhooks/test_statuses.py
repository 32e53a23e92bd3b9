"""Status webhooks move outbound messages forward: delivered, read, failed (with the platform's error)."""

from datetime import UTC, datetime, timedelta

import pytest

from contacts.models import Message
from tests import factories
from tests.platform_webhooks.helpers import processed
from tests.platform_webhooks.payloads import fb_delivery, fb_read, page_envelope, post_meta, wa_envelope, wa_status

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def outbound(org, account, user, provider_message_id, status="sent", sent_at=None):
    contact = factories.contact(org, account=account, platform_user_id=user)
    conversation = factories.conversation(contact, account)
    return Message.objects.create(organization=org, conversation=conversation, direction="outbound", text="hi",
                                  status=status, provider_message_id=provider_message_id,
                                  sent_at=sent_at or datetime.now(UTC))


def statuses_of(*messages):
    return [Message.objects.get(pk=m.pk).status for m in messages]


def test_whatsapp_statuses_update_the_outbound_message(org, wa_account, django_capture_on_commit_callbacks):
    delivered = outbound(org, wa_account, "16505551234", "wamid.A")
    read = outbound(org, wa_account, "16505551235", "wamid.B")
    failed = outbound(org, wa_account, "16505551236", "wamid.C")
    untouched = outbound(org, wa_account, "16505551237", "wamid.D")
    body = wa_envelope(wa_account.external_id, statuses=[
        wa_status("wamid.A", "delivered"), wa_status("wamid.B", "delivered", recipient="16505551235"),
        wa_status("wamid.B", "read", recipient="16505551235"), wa_status("wamid.C", "failed"),
        wa_status("wamid.D", "sent")])
    with processed(django_capture_on_commit_callbacks):
        assert post_meta("whatsapp", body).status_code == 200
    assert statuses_of(delivered, read, failed, untouched) == ["delivered", "read", "failed", "sent"]
    failed.refresh_from_db()
    assert (failed.error_code, failed.error) == ("131026", "Message undeliverable: Message Undeliverable.")


def test_statuses_only_move_forward_and_arrive_in_any_order(org, wa_account, django_capture_on_commit_callbacks):
    message = outbound(org, wa_account, "16505551234", "wamid.X")
    for status in ("read", "delivered", "failed", "sent"):
        with processed(django_capture_on_commit_callbacks):
            post_meta("whatsapp", wa_envelope(wa_account.external_id, statuses=[wa_status("wamid.X", status)]))
        assert statuses_of(message) == ["read"]


def test_an_unknown_message_is_settled_by_a_later_delivered(org, wa_account, django_capture_on_commit_callbacks):
    message = outbound(org, wa_account, "16505551234", "wamid.U", status="unknown")
    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(wa_account.external_id, statuses=[wa_status("wamid.U", "delivered")]))
    assert statuses_of(message) == ["delivered"]


def test_statuses_only_touch_the_accounts_own_messages(org, wa_account, django_capture_on_commit_callbacks):
    other_number = factories.social_account(org, channel="whatsapp", external_id="other-number")
    theirs = outbound(org, other_number, "16505551234", "wamid.SAME")
    with processed(django_capture_on_commit_callbacks):
        post_meta("whatsapp", wa_envelope(wa_account.external_id, statuses=[wa_status("wamid.SAME", "read")]))
    assert statuses_of(theirs) == ["sent"]


def test_messenger_delivery_by_mids_and_read_by_watermark(org, fb_account, django_capture_on_commit_callbacks):
    page = fb_account.external_id
    now = datetime.now(UTC)
    first = outbound(org, fb_account, "PSID-1", "m_1", sent_at=now - timedelta(minutes=2))
    conversation = first.conversation
    second = Message.objects.create(organization=org, conversation=conversation, direction="outbound", text="2",
                                    status="sent", provider_message_id="m_2", sent_at=now - timedelta(minutes=1))
    later = Message.objects.create(organization=org, conversation=conversation, direction="outbound", text="3",
                                   status="sent", provider_message_id="m_3", sent_at=now + timedelta(minutes=5))
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_delivery(page, ["m_1", "m_2"])))
    assert statuses_of(first, second, later) == ["delivered", "delivered", "sent"]
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope(page, fb_read(page, int(now.timestamp() * 1000))))
    assert statuses_of(first, second, later) == ["read", "read", "sent"]


def test_instagram_read_names_the_message(org, ig_account, django_capture_on_commit_callbacks):
    message = outbound(org, ig_account, "IGSID-1", "aWdf-mid-1")
    read = {"sender": {"id": "IGSID-1"}, "recipient": {"id": "IG-1"}, "timestamp": 1502905976400,
            "read": {"mid": "aWdf-mid-1"}}
    with processed(django_capture_on_commit_callbacks):
        post_meta("meta", page_envelope("IG-1", read, obj="instagram"))
    assert statuses_of(message) == ["read"]
