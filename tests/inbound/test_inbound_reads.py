"""An inbound event is recorded in three statements and read back in one: what the hand-written statements
write must be what the ORM wrote (contact, identity, conversation, message, event row)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import InboundEvent
from contacts.models import Contact, ContactIdentity, Conversation, Message
from tests import factories
from tests.helpers import captured_statements
from tests.inbound.helpers import event, make_entrypoint, reply_flow, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def test_an_event_is_recorded_in_three_statements_and_read_back_in_one(api, org, account,
                                                                      django_capture_on_commit_callbacks):
    make_entrypoint(reply_flow(org), config={"keywords": ["hi"]})
    send(api, django_capture_on_commit_callbacks, event(account, "hi", user="warm-up"))
    with captured_statements(transaction_control=False) as statements:
        assert send(api, django_capture_on_commit_callbacks, event(account, "hi", user="new"))["outcome"] == "enrolled"
    claim = next(i for i, text in enumerate(statements) if "automation_inbound_events" in text)
    lock = next(i for i, text in enumerate(statements) if "pg_advisory_xact_lock" in text)
    # claim (+ its lock), the sender, conversation + message + event links, then one read of the situation
    assert lock - claim == 4, statements[claim:lock]
    assert sum('"specificity" DESC' in text for text in statements) == 1  # entrypoints are read once
    # no waiting run: the waiting runs are not read (only asked about, in the situation statement)
    assert not any('FROM "automation_runs" WHERE' in text for text in statements)


def test_the_recorded_rows_are_what_the_event_says(api, org, account, django_capture_on_commit_callbacks):
    occurred = timezone.now() - timedelta(minutes=3)
    body = send(api, django_capture_on_commit_callbacks,
                event(account, "hello", user="psid-new", interactive={"type": "button", "id": "b1"},
                      occurred_at=occurred.isoformat()))
    contact = Contact.objects.get(pk=body["contact_id"])
    assert (contact.organization_id, contact.name, contact.tags, contact.custom_fields) == (org.pk, "Alice", [], {})
    identity = ContactIdentity.objects.get(contact=contact)
    assert (identity.social_account_id, identity.platform_user_id) == (account.pk, "psid-new")
    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert (conversation.contact_id, conversation.social_account_id, conversation.last_inbound_at) == (
        contact.pk, account.pk, occurred)
    message = Message.objects.get(direction="inbound")
    assert (message.conversation_id, message.text, message.status, message.idempotency_key) == (
        conversation.pk, "hello", "received", None)
    assert message.payload == {"kind": "dm_received", "event_id": body["event_id"],
                               "interactive": {"type": "button", "id": "b1"}, "post_id": None, "story_id": None,
                               "parent_comment_id": None,
                               "attachments": []}
    row = InboundEvent.objects.get(event_id=body["event_id"])
    assert (row.social_account_id, row.kind, row.contact_id, row.conversation_id) == (
        account.pk, "dm_received", contact.pk, conversation.pk)
    assert row.payload["text"] == "hello" and row.outcome == "no_match"

    later = send(api, django_capture_on_commit_callbacks, event(account, "again", user="psid-new"))
    assert (later["contact_id"], later["conversation_id"]) == (contact.pk, conversation.pk)
    conversation.refresh_from_db()
    assert conversation.last_inbound_at > occurred  # the existing conversation moves on
    assert Contact.objects.count() == 1 and Conversation.objects.count() == 1


def test_a_name_fills_an_unnamed_contact_and_never_renames_one(api, org, account,
                                                               django_capture_on_commit_callbacks):
    unnamed = factories.contact(org, account=account, platform_user_id="p-unnamed", name="")
    named = factories.contact(org, account=account, platform_user_id="p-named", name="Bob")
    before = Contact.objects.get(pk=named.pk).updated_at
    assert send(api, django_capture_on_commit_callbacks,
                event(account, "x", user="p-unnamed"))["contact_id"] == unnamed.pk
    assert send(api, django_capture_on_commit_callbacks, event(account, "x", user="p-named"))["contact_id"] == named.pk
    assert Contact.objects.get(pk=unnamed.pk).name == "Alice"
    assert (Contact.objects.get(pk=named.pk).name, Contact.objects.get(pk=named.pk).updated_at) == ("Bob", before)
    assert Contact.objects.count() == 2


def test_first_message_counts_other_conversations_on_the_channel_only(api, org, account,
                                                                      django_capture_on_commit_callbacks):
    make_entrypoint(reply_flow(org), config={"keywords": [], "first_message_only": True})
    other = factories.social_account(org, external_id="second-page")
    assert send(api, django_capture_on_commit_callbacks, event(account, "a", user="same"))["outcome"] == "enrolled"
    # the same person on another account of the channel: a first message in that conversation
    body = event(other, "b", user="same")
    result = send(api, django_capture_on_commit_callbacks, body)
    assert result["outcome"] in {"enrolled", "reentry_blocked"}
    assert InboundEvent.objects.get(event_id=body["event_id"]).trace[0]["result"] == "matched"
    assert send(api, django_capture_on_commit_callbacks, event(account, "c", user="same"))["outcome"] == "no_match"
