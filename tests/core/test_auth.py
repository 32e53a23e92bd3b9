import pytest
from rest_framework.test import APIClient

from relay.core.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db


def test_request_without_key_is_401_with_json_error():
    response = APIClient().get("/v1/contacts")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer nope", "Basic abc", "Bearer", "Bearer a b"])
def test_bad_key_is_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/v1/contacts")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"invalid_api_key", "unauthenticated"}


def test_revoked_key_is_401(org):
    key, raw = factories.api_key(org)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at="2026-01-01T00:00:00Z")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/v1/contacts").status_code == 401


def test_key_is_stored_only_as_hash(org):
    key, raw = factories.api_key(org)
    stored = ApiKey.objects.get(pk=key.pk)
    assert raw not in {stored.key_hash, stored.prefix}
    assert raw.startswith(stored.prefix)


def test_other_organizations_object_is_404_not_403(api, other_org):
    foreign = factories.contact(other_org)
    response = api.get(f"/v1/contacts/{foreign.id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert api.patch(f"/v1/contacts/{foreign.id}", {"name": "x"}, format="json").status_code == 404
    assert api.delete(f"/v1/contacts/{foreign.id}").status_code == 404


def test_list_shows_only_own_organization(api, org, other_org):
    mine = factories.contact(org)
    factories.contact(other_org)
    ids = [row["id"] for row in api.get("/v1/contacts").json()["data"]]
    assert ids == [mine.id]
