"""Hostile input gets a 4xx JSON error naming what is wrong — never a 5xx, nothing written."""

import json

import pytest

from automations.models import Automation
from contacts.models import Contact
from relay.core.parsers import MAX_JSON_DEPTH
from tests import factories

pytestmark = pytest.mark.django_db

NUL, SURROGATE = "\\u0000", "\\ud800"


def send(api, method, path, raw: str | bytes):
    return api.generic(method, path, raw.encode() if isinstance(raw, str) else raw, content_type="application/json")


def assert_error(response, status, code, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    if field is not None:
        assert field in error["details"], error


@pytest.mark.parametrize("bad", [NUL, SURROGATE, "ok" + NUL])
def test_contact_custom_fields_value_and_key(api, bad):
    assert_error(send(api, "POST", "/v1/contacts", f'{{"name": "A", "custom_fields": {{"k": "{bad}"}}}}'),
                 400, "validation_error", "custom_fields.k")
    assert_error(send(api, "POST", "/v1/contacts", f'{{"name": "A", "custom_fields": {{"x{bad}": 1}}}}'),
                 400, "validation_error", f"custom_fields.x{bad}")
    assert Contact.objects.count() == 0


def test_graph_put_and_simulate_context(api, org):
    automation = factories.automation(org)
    graph = ('{"root_node_key": "a", "nodes": [{"key": "a", "kind": "message", "config": {"blocks": '
             f'[{{"type": "text", "text": "hi{NUL}"}}]}}}}], "edges": []}}')
    assert_error(send(api, "PUT", f"/v1/automations/{automation.pk}/graph", graph), 400, "validation_error",
                 "nodes[0].config.blocks[0].text")
    assert Automation.objects.get(pk=automation.pk).graph == automation.graph
    assert_error(send(api, "POST", f"/v1/automations/{automation.pk}/simulate",
                      f'{{"test_context": {{"deep": ["{SURROGATE}"]}}}}'), 400, "validation_error",
                 "test_context.deep[0]")


@pytest.mark.parametrize("path", ["/v1/contacts/ct_%00", "/v1/automations/a%00b/graph", "/v1/automation-runs/%00",
                                  "/v1/contacts?cursor=%00", "/v1/contacts?cursor=abc%00def",
                                  "/v1/automation-bindings?social_account_id=%00", "/v1/contacts?x%00=1"])
def test_nul_in_path_ids_query_filters_and_cursors(api, path):
    response = api.get(path)
    assert_error(response, 400, "validation_error")
    assert set(response.json()["error"]["details"]) <= {"path", "cursor", "social_account_id", "x\\u0000"}


@pytest.mark.parametrize("identity, missing", [({"platform_user_id": "u1"}, "social_account_id"),
                                               ({"social_account_id": None}, "platform_user_id")])
def test_contact_identity_missing_a_key_on_create_and_patch(api, account, contact, identity, missing):
    identity = {key: value or account.pk for key, value in identity.items()}
    for method, path in (("post", "/v1/contacts"), ("patch", f"/v1/contacts/{contact.pk}")):
        response = getattr(api, method)(path, {"name": "A", "identities": [identity]}, format="json")
        assert_error(response, 400, "validation_error", "identities")
        assert missing in str(response.json()["error"]["details"]["identities"])
    assert Contact.objects.count() == 1 and contact.identities.count() == 1


def test_body_over_the_api_cap_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    response = send(api, "POST", "/v1/contacts", json.dumps({"name": "A", "custom_fields": {"pad": "x" * 5000}}))
    assert_error(response, 413, "payload_too_large")
    assert Contact.objects.count() == 0


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_json_nested_deeper_than_the_limit_is_400(api, depth):
    raw = '{"name": "A", "custom_fields": {"k": ' + "[" * depth + "]" * depth + "}}"
    assert_error(send(api, "POST", "/v1/contacts", raw), 400, "json_too_deep")
    assert Contact.objects.count() == 0


def test_json_at_the_limit_is_accepted(api):
    raw = '{"name": "A", "custom_fields": {"k": ' + "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2) + "}}"
    assert send(api, "POST", "/v1/contacts", raw).status_code == 201


@pytest.mark.parametrize("raw", ['{"name": NaN}', '{"name": "A", "custom_fields": {"k": Infinity}}'])
def test_non_json_constants_are_malformed_json(api, raw):
    assert_error(send(api, "POST", "/v1/contacts", raw), 400, "malformed_json")
