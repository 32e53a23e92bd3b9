"""Bindings API: one per (social account, type), channel match, org scoping."""

import pytest

from automations.models import Binding
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def automation(org):
    return factories.automation(org, channel="instagram")


def create(api, account, automation, binding_type="default_reply", **extra):
    return api.post("/v1/automation-bindings", {"social_account_id": account.id, "binding_type": binding_type,
                                                "automation_id": automation.id, **extra}, format="json")


def test_create_get_list_patch_delete(api, org, account, automation):
    response = create(api, account, automation, config={"note": "fallback"})
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["id"].startswith("abnd_") and data["status"] == "active"
    assert data["social_account_id"] == account.id and data["automation_id"] == automation.id
    assert data["config"] == {"note": "fallback"}
    welcome = create(api, account, automation, "welcome_message").json()
    listed = api.get("/v1/automation-bindings").json()["data"]
    assert [row["id"] for row in listed] == [welcome["id"], data["id"]]
    assert [r["id"] for r in api.get("/v1/automation-bindings?binding_type=default_reply").json()["data"]] == \
        [data["id"]]
    assert api.get(f"/v1/automation-bindings/{data['id']}").json()["binding_type"] == "default_reply"
    other = factories.automation(org, channel="instagram")
    patched = api.patch(f"/v1/automation-bindings/{data['id']}", {"automation_id": other.id, "status": "paused"},
                        format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["automation_id"] == other.id and patched.json()["status"] == "paused"
    assert api.delete(f"/v1/automation-bindings/{data['id']}").status_code == 204
    assert not Binding.objects.filter(pk=data["id"]).exists()


def test_one_binding_per_account_and_type(api, org, account, automation):
    assert create(api, account, automation).status_code == 201
    duplicate = create(api, account, factories.automation(org))
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "binding_exists"
    assert Binding.objects.count() == 1
    other_account = factories.social_account(org)
    assert create(api, other_account, automation).status_code == 201


def test_patch_into_an_occupied_slot_is_409(api, account, automation):
    create(api, account, automation)
    welcome = create(api, account, automation, "welcome_message").json()
    response = api.patch(f"/v1/automation-bindings/{welcome['id']}", {"binding_type": "default_reply"},
                         format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "binding_exists"
    assert Binding.objects.get(pk=welcome["id"]).binding_type == "welcome_message"


def test_channel_must_match(api, org, account):
    telegram = factories.automation(org, channel="telegram")
    response = create(api, account, telegram)
    assert response.status_code == 400 and response.json()["error"]["code"] == "channel_mismatch"
    assert Binding.objects.count() == 0


@pytest.mark.parametrize("change, field", [
    ({"binding_type": "goodbye"}, "binding_type"),
    ({"status": "deleted"}, "status"),
    ({"config": "x"}, "config"),
])
def test_bad_bodies_are_400_and_write_nothing(api, account, automation, change, field):
    body = {"social_account_id": account.id, "binding_type": "default_reply", "automation_id": automation.id,
            **change}
    response = api.post("/v1/automation-bindings", body, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["details"]
    assert Binding.objects.count() == 0


def test_unknown_fields_are_rejected(api, account, automation):
    response = create(api, account, automation, priority=1)
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_field"


def test_other_orgs_rows_are_invisible(api, org, account, automation, other_org):
    foreign_automation = factories.automation(other_org)
    foreign = factories.binding(foreign_automation, factories.social_account(other_org))
    base = f"/v1/automation-bindings/{foreign.id}"
    assert api.get(base).status_code == 404
    assert api.patch(base, {"status": "paused"}, format="json").status_code == 404
    assert api.delete(base).status_code == 404
    assert api.get("/v1/automation-bindings").json()["data"] == []
    # another org's automation or account cannot be referenced
    assert create(api, account, foreign_automation).status_code == 404
    assert create(api, factories.social_account(other_org), automation).status_code == 404
    assert api.post("/v1/automation-bindings", {"social_account_id": "acc_missing", "binding_type": "default_reply",
                                                "automation_id": automation.id}, format="json").status_code == 404
    assert Binding.objects.get(pk=foreign.id).status == "active"
