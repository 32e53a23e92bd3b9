import pytest

from contacts.models import Contact, ContactIdentity, Message
from tests import factories

pytestmark = pytest.mark.django_db


def test_social_account_create_list_and_duplicate(api):
    body = {"channel": "instagram", "name": "Main IG", "external_id": "1784", "provider": "sandbox"}
    created = api.post("/v1/social-accounts", body, format="json")
    assert created.status_code == 201
    assert created.json()["id"].startswith("acc_")
    assert api.get("/v1/social-accounts").json()["data"][0]["id"] == created.json()["id"]
    duplicate = api.post("/v1/social-accounts", body, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "social_account_exists"


def test_social_account_rejects_unknown_channel(api):
    response = api.post("/v1/social-accounts", {"channel": "myspace", "name": "x", "external_id": "1"},
                        format="json")
    assert response.status_code == 400
    assert "channel" in response.json()["error"]["details"]


def test_contact_crud_with_tags_fields_and_identities(api, account):
    created = api.post("/v1/contacts", {
        "name": "Alice", "email": "alice@example.com", "tags": ["vip", "vip", "beta"],
        "custom_fields": {"plan": "pro"},
        "identities": [{"social_account_id": account.id, "platform_user_id": "psid-1"}],
    }, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["id"].startswith("ct_")
    assert data["tags"] == ["vip", "beta"]
    assert data["identities"] == [{"social_account_id": account.id, "platform_user_id": "psid-1"}]

    patched = api.patch(f"/v1/contacts/{data['id']}", {"custom_fields": {"plan": "team"}}, format="json")
    assert patched.status_code == 200
    assert patched.json()["custom_fields"] == {"plan": "team"}
    assert patched.json()["identities"]  # untouched when not sent

    assert api.get(f"/v1/contacts/{data['id']}").json()["name"] == "Alice"
    assert api.delete(f"/v1/contacts/{data['id']}").status_code == 204
    assert not Contact.objects.filter(pk=data["id"]).exists()


def test_identity_on_another_orgs_account_is_rejected(api, other_org):
    foreign_account = factories.social_account(other_org)
    response = api.post("/v1/contacts", {
        "name": "Bob", "identities": [{"social_account_id": foreign_account.id, "platform_user_id": "p"}],
    }, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert Contact.objects.count() == 0


def test_identity_taken_is_409_and_rolls_back(api, org, account):
    factories.contact(org, account=account, platform_user_id="taken")
    response = api.post("/v1/contacts", {
        "name": "Eve", "identities": [{"social_account_id": account.id, "platform_user_id": "taken"}],
    }, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "identity_taken"
    assert Contact.objects.filter(name="Eve").count() == 0
    assert ContactIdentity.objects.count() == 1


def test_invalid_email_is_400(api):
    response = api.post("/v1/contacts", {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["error"]["details"]


def test_conversation_messages_are_listed_newest_first(api, org, account):
    person = factories.contact(org, account=account)
    conversation = factories.conversation(person, account)
    first = Message.objects.create(organization=org, conversation=conversation, direction="inbound",
                                   text="hi", status="received")
    second = Message.objects.create(organization=org, conversation=conversation, direction="outbound",
                                    text="hello!", status="sent")
    body = api.get(f"/v1/conversations/{conversation.id}/messages").json()
    assert [m["id"] for m in body["data"]] == [second.id, first.id]
    assert body["data"][0]["text"] == "hello!"
    assert api.get(f"/v1/conversations?contact_id={person.id}").json()["data"][0]["id"] == conversation.id
