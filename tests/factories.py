"""Small builders for test data. Each returns a saved row; pass keyword overrides for what matters."""

import itertools

from contacts.models import Channel, Contact, ContactIdentity, Conversation, SocialAccount
from relay.core.models import ApiKey, Organization

_seq = itertools.count(1)


def organization(name=None):
    return Organization.objects.create(name=name or f"org-{next(_seq)}")


def api_key(org, name="test"):
    return ApiKey.objects.create_key(org, name)


def social_account(org, channel=Channel.INSTAGRAM, **overrides):
    n = next(_seq)
    fields = {"name": f"Account {n}", "external_id": f"ext-{n}", "channel": channel, **overrides}
    return SocialAccount.objects.create(organization=org, **fields)


def contact(org, account=None, platform_user_id=None, **overrides):
    n = next(_seq)
    fields = {"name": f"Contact {n}", **overrides}
    row = Contact.objects.create(organization=org, **fields)
    if account is not None:
        ContactIdentity.objects.create(contact=row, social_account=account,
                                       platform_user_id=platform_user_id or f"psid-{n}")
    return row


def conversation(contact_row, account):
    conv, _ = Conversation.objects.get_or_create(
        organization=contact_row.organization, contact=contact_row, social_account=account
    )
    return conv
