import pytest

from contacts.models import Contact, SocialAccount

pytestmark = pytest.mark.django_db


def test_unknown_field_is_rejected_and_nothing_is_created(api):
    response = api.post("/v1/contacts", {"name": "Alice", "favourite_colour": "blue"}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "unknown_field"
    assert "favourite_colour" in body["details"]
    assert Contact.objects.count() == 0


def test_wrong_type_names_the_field(api):
    response = api.post("/v1/contacts", {"name": "Alice", "tags": "vip"}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert set(body["details"]) == {"tags"}
    assert Contact.objects.count() == 0


def test_missing_required_field_names_the_field(api):
    response = api.post("/v1/social-accounts", {"channel": "instagram", "name": "Main"}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert "external_id" in body["details"]
    assert isinstance(body["message"], str) and body["message"]
    assert SocialAccount.objects.count() == 0


def test_malformed_json_is_a_json_error(api):
    response = api.generic("POST", "/v1/contacts", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_unknown_path_under_v1_is_json_404(api):
    response = api.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_is_json_405(api):
    response = api.put("/v1/contacts", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_invalid_limit_and_cursor_are_400(api):
    assert api.get("/v1/contacts?limit=0").json()["error"]["code"] == "invalid_limit"
    assert api.get("/v1/contacts?limit=201").status_code == 400
    assert api.get("/v1/contacts?cursor=%%%").json()["error"]["code"] == "invalid_cursor"


def test_unknown_field_inside_a_nested_object_is_unknown_field(api, account):
    response = api.post("/v1/contacts", {"name": "Al", "identities": [
        {"social_account_id": account.id, "platform_user_id": "p1", "extra": 1}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_field"
    assert Contact.objects.count() == 0
