"""Action POSTs take no body (unknown fields → 400 unknown_field); enum list filters reject unknown values."""

import pytest

from automations.models import AutomationRun
from tests import factories

pytestmark = pytest.mark.django_db


def test_action_posts_reject_unknown_body_fields(api, org):
    automation = factories.automation(org)
    entrypoint = api.post(f"/v1/automations/{automation.id}/entrypoints", {"kind": "webhook_inbound"},
                          format="json").json()
    run = AutomationRun.objects.create(organization=org, automation=automation, contact=factories.contact(org))
    paths = [f"/v1/automations/{automation.id}/{action}" for action in ("activate", "pause", "archive")]
    paths += [f"/v1/automation-runs/{run.id}/stop", f"/v1/automation-entrypoints/{entrypoint['id']}/rotate-secret"]
    for path in paths:
        response = api.post(path, {"bogus": 1}, format="json")
        assert response.status_code == 400, (path, response.json())
        assert response.json()["error"]["code"] == "unknown_field"
        assert "bogus" in response.json()["error"]["details"]
    automation.refresh_from_db()
    run.refresh_from_db()
    assert automation.status == "draft" and run.status != "stopped"


def test_action_posts_still_accept_an_empty_body(api, org):
    automation = factories.automation(org)
    entrypoint = api.post(f"/v1/automations/{automation.id}/entrypoints", {"kind": "webhook_inbound"},
                          format="json").json()
    assert api.post(f"/v1/automation-entrypoints/{entrypoint['id']}/rotate-secret").status_code == 200
    assert api.post(f"/v1/automation-entrypoints/{entrypoint['id']}/rotate-secret", {},
                    format="json").status_code == 200


@pytest.mark.parametrize("path", [
    "/v1/automations?status=zzz",
    "/v1/automations?channel=zzz",
    "/v1/automation-bindings?binding_type=zzz",
    "/v1/automation-bindings?status=zzz",
])
def test_unknown_enum_filter_value_is_a_400(api, path):
    response = api.get(path)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_known_enum_filter_values_filter(api, org, account):
    insta = factories.automation(org, channel="instagram")
    factories.automation(org, channel="messenger")
    assert [row["id"] for row in api.get("/v1/automations?channel=instagram").json()["data"]] == [insta.id]
    binding = factories.binding(insta, account, binding_type="welcome_message")
    assert [row["id"] for row in
            api.get("/v1/automation-bindings?binding_type=welcome_message&status=active").json()["data"]] \
        == [binding.id]
    assert api.get("/v1/automation-bindings?status=paused").json()["data"] == []
