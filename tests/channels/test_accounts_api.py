"""Social accounts API: write-only encrypted credentials, PATCH, verify against the fake platforms;
the conversation's messages show delivery status and the provider's error."""

import pytest
from django.db import connection

from contacts.models import Message, SocialAccount
from tests import factories
from tests.channels.helpers import GRAPH_TOKENS, TELEGRAM_TOKEN, connected_account


def create(api, **body):
    return api.post("/v1/social-accounts", body, format="json")


def raw_credentials_column(account_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM social_accounts WHERE id = %s", [account_id])
        return cursor.fetchone()[0]


def test_credentials_are_write_only_and_encrypted_at_rest(api, fake_platforms):
    response = create(api, channel="telegram", provider="telegram", name="Bot", external_id="tg-bot",
                      credentials={"bot_token": TELEGRAM_TOKEN})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "credentials" not in body and TELEGRAM_TOKEN not in str(body)
    assert (body["has_credentials"], body["status"]) == (True, "unverified")
    raw = raw_credentials_column(body["id"])
    assert raw and TELEGRAM_TOKEN not in raw and "bot_token" not in raw
    assert SocialAccount.objects.get(pk=body["id"]).credentials == {"bot_token": TELEGRAM_TOKEN}
    assert TELEGRAM_TOKEN not in str(api.get(f"/v1/social-accounts/{body['id']}").json())


@pytest.mark.parametrize("body, problem", [
    ({"channel": "telegram", "provider": "telegram", "name": "Bot", "external_id": "x"}, "required: bot_token"),
    ({"channel": "whatsapp", "provider": "whatsapp", "name": "N", "external_id": "1",
      "credentials": {"bot_token": "t"}}, "missing: access_token"),
])
def test_network_accounts_need_their_platforms_credentials(api, fake_platforms, body, problem):
    response = create(api, **body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert problem in response.json()["error"]["details"]["credentials"]
    assert not SocialAccount.objects.exists()


def test_verify_a_telegram_bot_sets_its_webhook_with_a_fresh_secret(api, org, fake_platforms):
    fake_platforms.add_telegram_bot(TELEGRAM_TOKEN, bot_id=555, first_name="Shop", username="shopbot")
    account_id = create(api, channel="telegram", provider="telegram", name="Bot", external_id="pending",
                        credentials={"bot_token": TELEGRAM_TOKEN}).json()["id"]
    response = api.post(f"/v1/social-accounts/{account_id}/verify")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["display_name"], body["external_id"]) == ("connected", "Shop (@shopbot)", "555")
    hook = fake_platforms.webhooks[TELEGRAM_TOKEN]
    assert hook["url"] == f"https://relay.example.com/v1/platform-webhooks/telegram/{account_id}"
    assert set(hook["allowed_updates"]) == {"message", "edited_message", "callback_query"}
    stored = SocialAccount.objects.get(pk=account_id).credentials
    assert stored == {"bot_token": TELEGRAM_TOKEN, "webhook_secret": hook["secret_token"]}
    assert hook["secret_token"] not in str(body)


def test_verify_with_a_token_the_platform_rejects_needs_reauth(api, fake_platforms):
    account_id = create(api, channel="telegram", provider="telegram", name="Bot", external_id="b",
                        credentials={"bot_token": "1:unknown"}).json()["id"]
    body = api.post(f"/v1/social-accounts/{account_id}/verify").json()
    assert body["status"] == "needs_reauth" and "Unauthorized" in body["last_error"] and body["last_error_at"]


@pytest.mark.parametrize("provider, channel", [("whatsapp", "whatsapp"), ("messenger", "facebook"),
                                               ("instagram", "instagram")])
def test_verify_a_graph_account_reads_its_node(api, fake_platforms, provider, channel):
    fake_platforms.add_graph_account(GRAPH_TOKENS[provider], "4242", platform=provider, name="Corner Shop")
    account_id = create(api, channel=channel, provider=provider, name="A", external_id="4242",
                        credentials={"access_token": GRAPH_TOKENS[provider]}).json()["id"]
    body = api.post(f"/v1/social-accounts/{account_id}/verify").json()
    assert (body["status"], body["display_name"]) == ("connected", "Corner Shop")
    (call,) = [r for r in fake_platforms.requests if r["method"] == "GET"]
    assert call["path"].endswith("/4242")


def test_verify_when_the_platform_cannot_be_reached_is_422_and_keeps_the_status(api, fake_platforms, settings):
    fake_platforms.add_graph_account(GRAPH_TOKENS["messenger"], "9", platform="messenger")
    account_id = create(api, channel="facebook", provider="messenger", name="A", external_id="9",
                        credentials={"access_token": GRAPH_TOKENS["messenger"]}).json()["id"]
    settings.RELAY_META_GRAPH_BASE = "http://127.0.0.1:9"
    response = api.post(f"/v1/social-accounts/{account_id}/verify")
    assert response.status_code == 422 and response.json()["error"]["code"] == "verification_failed"
    account = SocialAccount.objects.get(pk=account_id)
    assert account.status == "unverified" and account.last_error.startswith("verify:")
    assert GRAPH_TOKENS["messenger"] not in response.content.decode() + account.last_error


def test_patch_replaces_credentials_and_makes_the_account_unverified(api, org, fake_platforms):
    account = connected_account(org, fake_platforms, "whatsapp")
    response = api.patch(f"/v1/social-accounts/{account.pk}", {"credentials": {"access_token": "EAAGnew"},
                                                                "name": "Renamed"}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["name"]) == ("unverified", "Renamed")
    assert SocialAccount.objects.get(pk=account.pk).credentials == {"access_token": "EAAGnew"}
    assert "EAAGnew" not in response.content.decode()
    assert api.patch(f"/v1/social-accounts/{account.pk}", {"status": "connected"},
                     format="json").status_code == 400  # read-only: unknown_field


def test_conversation_messages_show_delivery_status_and_provider_error(api, org, account):
    person = factories.contact(org, account=account)
    conversation = factories.conversation(person, account)
    Message.objects.create(organization=org, conversation=conversation, direction="outbound", text="hi",
                           status="failed", error_code="outside_window", error="more than 24 hours")
    (row,) = api.get(f"/v1/conversations/{conversation.pk}/messages").json()["data"]
    assert (row["status"], row["error_code"], row["error"]) == ("failed", "outside_window", "more than 24 hours")


def test_credentials_replaced_during_a_verify_are_not_marked_connected(api, org, fake_platforms, monkeypatch):
    from automations.channels import verify
    from automations.channels.registry import get_provider

    account = connected_account(org, fake_platforms, "messenger", status="unverified")
    provider = get_provider("messenger")
    original = type(provider).verify

    def slow_verify(self, checked):
        found = original(self, checked)
        api.patch(f"/v1/social-accounts/{checked.pk}", {"credentials": {"access_token": "EAAGother"}},
                  format="json")  # a PATCH lands while the platform answers
        return found

    monkeypatch.setattr(type(provider), "verify", slow_verify)
    row = verify.verify_account(SocialAccount.objects.get(pk=account.pk))
    assert (row.status, row.credentials) == ("unverified", {"access_token": "EAAGother"})
