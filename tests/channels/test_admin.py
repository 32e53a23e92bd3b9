"""Admin: the account page shows provider, status and last error but never the token; the message
pages show delivery status and the provider's error."""

from contacts.models import Message
from tests import factories
from tests.channels.helpers import TELEGRAM_TOKEN, connected_account


def test_the_account_page_shows_status_and_error_never_the_credentials(admin_client, org, fake_platforms):
    account = connected_account(org, fake_platforms, "telegram", status="needs_reauth")
    account.last_error = "Unauthorized"
    account.save()
    page = admin_client.get(factories.admin_url(account)).content.decode()
    assert "needs_reauth" in page or "Needs Reauth" in page
    assert "Unauthorized" in page and "telegram" in page
    assert TELEGRAM_TOKEN not in page and account.credentials_encrypted not in page
    listing = admin_client.get("/admin/contacts/socialaccount/").content.decode()
    assert TELEGRAM_TOKEN not in listing and account.credentials_encrypted not in listing


def test_saving_the_account_in_the_admin_keeps_its_credentials(admin_client, org, fake_platforms):
    account = connected_account(org, fake_platforms, "telegram")
    response = admin_client.post(factories.admin_url(account), {
        "organization": org.pk, "channel": "telegram", "name": "Renamed", "external_id": account.external_id,
        "provider": "telegram", "created_at_0": "2026-01-01", "created_at_1": "00:00:00"})
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.name == "Renamed" and account.credentials == {"bot_token": TELEGRAM_TOKEN}


def test_the_verify_action_connects_the_account(admin_client, org, fake_platforms):
    account = connected_account(org, fake_platforms, "telegram", status="unverified")
    admin_client.post("/admin/contacts/socialaccount/", {"action": "verify_accounts",
                                                         "_selected_action": [account.pk]})
    account.refresh_from_db()
    assert account.status == "connected" and account.credentials["webhook_secret"]


def test_message_pages_show_delivery_status_and_error(admin_client, org, account):
    person = factories.contact(org, account=account)
    conversation = factories.conversation(person, account)
    message = Message.objects.create(organization=org, conversation=conversation, direction="outbound", text="hi",
                                     status="unknown", error_code="timeout", error="no answer after the request")
    listing = admin_client.get("/admin/contacts/message/").content.decode()
    assert "unknown" in listing and "timeout" in listing
    page = admin_client.get(factories.admin_url(message)).content.decode()
    assert "no answer after the request" in page
    assert "timeout" in admin_client.get(factories.admin_url(conversation)).content.decode()
