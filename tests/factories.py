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


def automation(org, graph=None, status="draft", channel=Channel.INSTAGRAM, **overrides):
    """An Automation row; `graph` is stored as given (use automations.graph.service.save_graph to validate)."""
    from automations.models import Automation, empty_graph

    n = next(_seq)
    fields = {"name": f"Automation {n}", "channel": channel, "status": status, "graph": graph or empty_graph(),
              **overrides}
    return Automation.objects.create(organization=org, **fields)


def entrypoint(automation_row, kind="dm_received", **overrides):
    from automations.models import Entrypoint

    fields = {"channel": automation_row.channel, "kind": kind, **overrides}
    return Entrypoint.objects.create(organization=automation_row.organization, automation=automation_row, **fields)


def binding(automation_row, account, binding_type="default_reply", **overrides):
    from automations.models import Binding

    return Binding.objects.create(organization=automation_row.organization, automation=automation_row,
                                  social_account=account, binding_type=binding_type, **overrides)
