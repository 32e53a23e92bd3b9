"""The OpenAPI document at /v1/schema describes the API as it behaves: lists are paginated envelopes, every
write has a JSON body, success codes are the real ones, the API key is a bearer scheme, and every 4xx an
operation can answer carries the one error envelope."""

import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from tests import factories

WRITE_METHODS = {"post", "put", "patch"}
PUBLIC_PREFIXES = ("/v1/webhooks/", "/v1/platform-webhooks/")  # signed by the sender, no API key


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


@pytest.fixture(scope="module")
def schema():
    response = APIClient().get("/v1/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method, path, operation


def resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def json_schema(schema, response_or_body):
    return resolve(schema, response_or_body["content"]["application/json"]["schema"])


def is_paginated(schema, operation) -> bool:
    ok = operation["responses"].get("200")
    if not ok or "application/json" not in ok.get("content", {}):
        return False
    return set(json_schema(schema, ok).get("properties", {})) == {"data", "next_cursor", "has_more"}


def test_schema_generates_without_warnings_or_errors(tmp_path):
    # --fail-on-warn exits non-zero on any generator warning or error; --validate checks it against the spec.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "openapi: 3.0.3" in (tmp_path / "schema.yaml").read_text()


def test_list_operations_are_documented_as_cursor_pages(schema):
    lists = [(method, path) for method, path, op in operations(schema) if is_paginated(schema, op)]
    assert len(lists) >= 10
    for method, path in lists:
        operation = schema["paths"][path][method]
        page = json_schema(schema, operation["responses"]["200"])
        assert page["required"] == ["data", "next_cursor", "has_more"], path
        assert page["properties"]["data"]["type"] == "array" and "$ref" in page["properties"]["data"]["items"]
        assert page["properties"]["next_cursor"] == {**page["properties"]["next_cursor"], "type": "string",
                                                     "nullable": True}
        params = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, path
        assert params["cursor"]["schema"] == {"type": "string"}, path
        assert operation["operationId"].endswith("_list"), path


@pytest.fixture
def world(db):
    """One of everything, so every GET in the document has a real id to call."""
    org = factories.organization()
    _, raw = factories.api_key(org)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    account = factories.social_account(org)
    contact = factories.contact(org, account=account, platform_user_id="ig-1")
    nodes = [("a", "condition", {}), ("wait", "delay", {"minutes": 5})]
    automation = factories.automation(org, factories.flow(nodes, [("a", "true", "wait")]), status="active")
    entrypoint = factories.entrypoint(automation)
    binding = factories.binding(automation, account)
    run = enroll(automation, contact).run
    advance(run.pk)
    event = client.post("/v1/inbound-events", {"event_id": "e-1", "social_account_id": account.pk,
                                               "kind": "dm_received", "contact": {"platform_user_id": "ig-1"},
                                               "text": "hi"}, format="json")
    assert event.status_code == 202, event.content
    pause = client.post(f"/v1/contacts/{contact.pk}/automation-pause", {"pause_reason": "support"}, format="json")
    assert pause.status_code == 201, pause.content
    ids = {"automations": automation.pk, "automation-runs": run.pk, "automation-entrypoints": entrypoint.pk,
           "automation-bindings": binding.pk, "contacts": contact.pk, "social-accounts": account.pk,
           "conversations": event.json()["conversation_id"]}
    return client, ids


def test_every_get_answers_the_shape_it_documents(schema, world):
    """A GET answering {data, next_cursor, has_more} is documented as a page, and one documented as a page
    answers one (with items); run against every GET, so a new list endpoint without @paginated fails here."""
    client, ids = world
    for method, path, operation in operations(schema):
        if method != "get" or is_public(path):
            continue
        segment = path.split("/")[2]
        assert "{" not in path or segment in ids, f"give the test an id for /v1/{segment}/{{id}}"
        url = re.sub(r"\{[^}]+\}", ids.get(segment, ""), path)
        response = client.get(url)
        assert response.status_code == 200, (url, response.content)
        body = response.json()
        answers_a_page = set(body) == {"data", "next_cursor", "has_more"}
        assert answers_a_page == is_paginated(schema, operation), url
        if answers_a_page:
            assert body["data"], f"{url} listed nothing: the test world lacks a row for it"
            documented = set(resolve(schema, json_schema(schema, operation["responses"]["200"])
                                     ["properties"]["data"]["items"])["properties"])
            assert set(body["data"][0]) == documented, url
        else:
            assert set(body) <= set(json_schema(schema, operation["responses"]["200"])["properties"]), url


def test_every_write_operation_documents_a_json_body(schema):
    writes = [(m, p, op) for m, p, op in operations(schema) if m in WRITE_METHODS]
    assert len(writes) >= 21
    for method, path, operation in writes:
        body = operation.get("requestBody")
        assert body and "application/json" in body["content"], f"{method} {path} has no JSON request body"
        described = json_schema(schema, body)
        free_form = described.get("type") == "object" and is_public(path)  # a platform's or customer's payload
        assert described.get("properties") or described.get("maxProperties") == 0 or free_form, f"{method} {path}"


def test_action_posts_document_an_empty_optional_body(schema):
    for path in ["/v1/automations/{id}/activate", "/v1/automations/{id}/pause", "/v1/automations/{id}/archive",
                 "/v1/automation-runs/{id}/stop", "/v1/automation-entrypoints/{id}/rotate-secret"]:
        body = schema["paths"][path]["post"]["requestBody"]
        assert not body.get("required")
        assert json_schema(schema, body) == {**json_schema(schema, body), "maxProperties": 0,
                                             "additionalProperties": False}


def test_strict_bodies_forbid_unknown_fields_in_the_document(schema):
    for name in ["AutomationCreateRequest", "GraphRequest", "InboundEventRequest", "ContactRequest",
                 "PatchedContactRequest", "BindingWriteRequest", "EnrollRequest", "SimulateRequest",
                 "PauseBodyRequest", "SocialAccountRequest", "NodeRequest", "EdgeRequest"]:
        assert schema["components"]["schemas"][name]["additionalProperties"] is False, name


# The success codes the views answer (tests under tests/automations and tests/contacts call each).
SUCCESS_CODES = {
    ("post", "/v1/automations"): {"201"},
    ("post", "/v1/automation-bindings"): {"201"},
    ("post", "/v1/automations/{id}/entrypoints"): {"201"},
    ("post", "/v1/automations/{id}/enroll"): {"201"},
    ("post", "/v1/contacts"): {"201"},
    ("post", "/v1/social-accounts"): {"201"},
    ("post", "/v1/contacts/{id}/automation-pause"): {"200", "201"},
    ("post", "/v1/inbound-events"): {"202"},
    ("post", "/v1/webhooks/automations/{slug}"): {"202"},
    ("post", "/v1/automations/{id}/simulate"): {"200"},
    ("post", "/v1/automation-runs/{id}/stop"): {"200"},
    ("put", "/v1/automations/{id}/graph"): {"200"},
}


def test_success_status_codes_are_the_real_ones(schema):
    for method, path, operation in operations(schema):
        documented = {code for code in operation["responses"] if code.startswith("2")}
        if method == "delete":
            assert documented == {"204"} and "content" not in operation["responses"]["204"], path
        elif (method, path) in SUCCESS_CODES:
            assert documented == SUCCESS_CODES[(method, path)], (method, path)
        else:
            assert len(documented) == 1, (method, path, documented)


def test_created_answers_match_the_document(schema, api, org, account):
    """Spot-check against behaviour: the documented 201/202/204 are what the views answer."""
    created = api.post("/v1/contacts", {"name": "Ann"}, format="json")
    assert created.status_code == 201
    assert "201" in schema["paths"]["/v1/contacts"]["post"]["responses"]
    event = api.post("/v1/inbound-events", {"event_id": "x", "social_account_id": account.pk, "kind": "dm_received",
                                            "contact": {"platform_user_id": "p"}}, format="json")
    assert event.status_code == 202
    assert api.delete(f"/v1/contacts/{created.json()['id']}").status_code == 204


def test_the_api_key_is_a_bearer_scheme_required_everywhere_but_the_webhook(schema):
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for method, path, operation in operations(schema):
        if is_public(path):
            assert not operation.get("security"), path
        else:
            assert operation["security"] == [{"ApiKey": []}], (method, path)


def test_error_envelope_is_one_reusable_schema(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    body = resolve(schema, error["properties"]["error"])
    assert set(body["required"]) == {"code", "message", "details"}
    assert body["properties"]["code"]["type"] == "string" and body["properties"]["details"]["type"] == "object"


def test_every_operation_documents_the_errors_it_can_answer(schema):
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        errors = {code for code in responses if code.startswith("4")}
        expected = {"400"}
        if not is_public(path):
            expected.add("401")
        if "{" in path:
            expected.add("404")
        if method in WRITE_METHODS:
            expected.add("413")
        if method in WRITE_METHODS and not is_public(path):
            expected.add("415")  # a signed webhook reads its raw bytes: any content type
        if is_public(path):
            assert "415" not in errors, (method, path)
        if (method, path) == ("post", "/v1/webhooks/automations/{slug}"):
            expected.add("401")  # a bad signature
        assert expected <= errors, (method, path, sorted(errors))
        for code in errors:
            content = responses[code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            assert content["examples"], (method, path, code)
            for example in content["examples"].values():
                assert set(example["value"]["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("post", "/v1/automation-bindings", "409", "binding_exists"),
    ("post", "/v1/automations/{id}/enroll", "409", "reentry_blocked"),
    ("post", "/v1/automations/{id}/enroll", "422", "automation_not_active"),
    ("post", "/v1/automation-runs/{id}/stop", "422", "invalid_state"),
    ("post", "/v1/automations/{id}/activate", "422", "graph_invalid"),
    ("post", "/v1/social-accounts", "409", "social_account_exists"),
    ("post", "/v1/contacts", "409", "identity_taken"),
    ("post", "/v1/automation-entrypoints/{id}/rotate-secret", "422", "not_a_webhook"),
    ("post", "/v1/webhooks/automations/{slug}", "401", "invalid_signature"),
    ("get", "/v1/automations", "400", "invalid_cursor"),
    ("get", "/v1/automations/{id}/insights", "400", "invalid_period"),
    ("post", "/v1/webhooks/automations/{slug}", "409", "duplicate_delivery"),
    ("put", "/v1/automations/{id}/graph", "400", "json_too_deep"),
    ("post", "/v1/inbound-events", "503", "service_unavailable"),
])
def test_operation_specific_errors_are_documented_with_their_codes(schema, method, path, status, code):
    examples = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["examples"]
    assert code in {example["value"]["error"]["code"] for example in examples.values()}


def test_every_operation_documents_503_with_retry_after(schema):
    for method, path, operation in operations(schema):
        unavailable = operation["responses"]["503"]
        assert unavailable["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        assert unavailable["headers"]["Retry-After"]["schema"] == {"type": "integer"}, (method, path)


def test_main_write_operations_carry_request_examples(schema):
    for method, path in [("post", "/v1/automations"), ("put", "/v1/automations/{id}/graph"),
                         ("post", "/v1/inbound-events"), ("post", "/v1/automations/{id}/enroll"),
                         ("post", "/v1/contacts"), ("post", "/v1/automation-bindings"),
                         ("post", "/v1/contacts/{id}/automation-pause"), ("post", "/v1/social-accounts")]:
        content = schema["paths"][path][method]["requestBody"]["content"]["application/json"]
        assert content.get("examples"), (method, path)


def test_the_graph_example_is_a_valid_graph(schema, api, org):
    automation = factories.automation(org)
    example = schema["paths"]["/v1/automations/{id}/graph"]["put"]["requestBody"]["content"]["application/json"]
    response = api.put(f"/v1/automations/{automation.pk}/graph", next(iter(example["examples"].values()))["value"],
                       format="json")
    assert response.status_code == 200 and response.json()["graph_errors"] == [], response.content


def test_an_error_documented_by_description_only_still_gets_the_envelope():
    """A view documenting an error as OpenApiResponse(description="`code`: why") gets the Error schema, with
    the backticked codes as examples (the API answers every error in the envelope)."""
    from django.urls import path
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.utils import OpenApiResponse, extend_schema
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class SignedView(APIView):
        authentication_classes: list = []
        permission_classes: list = []

        @extend_schema(request=None, responses={200: None, 403: OpenApiResponse(
            description="`invalid_secret_token`: nothing recorded.")})
        def post(self, request):
            return Response()

    generated = SchemaGenerator(patterns=[path("v1/signed", SignedView.as_view())]).get_schema(public=True)
    forbidden = generated["paths"]["/v1/signed"]["post"]["responses"]["403"]
    assert forbidden["description"] == "`invalid_secret_token`: nothing recorded."
    content = forbidden["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/Error"}
    assert [e["value"]["error"]["code"] for e in content["examples"].values()] == ["invalid_secret_token"]
