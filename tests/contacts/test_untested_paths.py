"""Paths the audit found working but untested: cross-org ids on accounts/conversations/messages, and
deleting a contact that has live runs."""

import pytest

from automations.models import AutomationRun
from tests import factories

pytestmark = pytest.mark.django_db


def test_other_orgs_account_conversation_and_messages_are_404(api, other_org):
    foreign_account = factories.social_account(other_org)
    foreign_contact = factories.contact(other_org, account=foreign_account)
    conversation = factories.conversation(foreign_contact, foreign_account)
    for path in (f"/v1/social-accounts/{foreign_account.id}", f"/v1/conversations/{conversation.id}",
                 f"/v1/conversations/{conversation.id}/messages"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_deleting_a_contact_with_live_runs_removes_them(api, org):
    automation = factories.automation(org, status="active")
    person = factories.contact(org)
    live = AutomationRun.objects.create(organization=org, automation=automation, contact=person, status="active")
    other = factories.automation(org, status="active")
    waiting = AutomationRun.objects.create(organization=org, automation=other, contact=person,
                                           status="waiting", waiting_for="reply")
    response = api.delete(f"/v1/contacts/{person.id}")
    assert response.status_code == 204
    assert not AutomationRun.objects.filter(pk__in=[live.pk, waiting.pk]).exists()
    assert api.get(f"/v1/contacts/{person.id}").status_code == 404
