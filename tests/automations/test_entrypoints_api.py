"""Entrypoints API: per-kind config validation, channel rules, derived specificity, webhook secrets."""

import pytest

from automations.graph.entrypoints import derive_specificity
from automations.models import Entrypoint
from tests import factories

pytestmark = pytest.mark.django_db

TAG_FILTER = {"all": [{"field": "tags", "op": "contains", "value": "newsletter"}]}


@pytest.fixture
def automation(org):
    return factories.automation(org, channel="instagram")


def post(api, automation, **body):
    return api.post(f"/v1/automations/{automation.id}/entrypoints", body, format="json")


def test_create_dm_entrypoint_with_defaults(api, automation):
    response = post(api, automation, kind="dm_received", config={"keywords": ["price"]})
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["id"].startswith("aep_") and data["automation_id"] == automation.id
    assert data["channel"] == "instagram" and data["status"] == "active"
    assert data["priority"] == 100 and data["allow_reentry"] is True and data["reentry_cooldown_min"] == 60
    assert data["config"] == {"keywords": ["price"], "match_mode": "exact", "case_sensitive": False,
                              "first_message_only": False}
    assert data["specificity"] == 30
    assert data["webhook_slug"] is None and "webhook_secret" not in data
    assert Entrypoint.objects.get(pk=data["id"]).specificity == 30


@pytest.mark.parametrize("kind, config, filters, scoped, expected", [
    ("dm_received", {"keywords": ["hi"], "match_mode": "exact"}, {}, False, 30),
    ("dm_received", {"keywords": ["^hi"], "match_mode": "regex"}, {}, False, 30),
    ("webhook_inbound", {}, {}, False, 30),
    ("postback", {"payloads": ["BUY"]}, {}, False, 30),
    ("comment_created", {"post_ids": ["p1"]}, {}, False, 25),
    ("story_reply", {"story_ids": ["s1"]}, {}, True, 25),
    ("dm_received", {}, TAG_FILTER, False, 20),
    ("dm_received", {"keywords": ["hi"], "match_mode": "contains"}, {}, False, 0),
    ("comment_created", {"keywords": ["hi"], "match_mode": "contains"}, {}, False, 0),
    ("dm_received", {"keywords": ["hi"], "match_mode": "contains"}, {}, True, 10),
    ("dm_received", {"keywords": ["hi"], "match_mode": "contains"}, TAG_FILTER, False, 20),
    ("dm_received", {}, {}, True, 10),
    ("dm_received", {}, {}, False, 0),
    ("postback", {}, {}, False, 0),
])
def test_specificity_tiers_through_the_api(api, automation, account, kind, config, filters, scoped, expected):
    body = {"kind": kind, "config": config, "filters": filters}
    if scoped:
        body["social_account_id"] = account.id
    response = post(api, automation, **body)
    assert response.status_code == 201, response.json()
    assert response.json()["specificity"] == expected


def test_specificity_function_directly():
    assert derive_specificity("dm_received", {"keywords": ["a"]}, {}, None) == 30  # exact is the default
    assert derive_specificity("dm_received", {}, {}, "acc_x") == 10
    assert derive_specificity("comment_created", {"post_ids": ["p"]}, TAG_FILTER, None) == 25


def test_patch_recomputes_specificity_and_keeps_other_fields(api, automation, account):
    created = post(api, automation, kind="dm_received", priority=5).json()
    assert created["specificity"] == 0
    patched = api.patch(f"/v1/automation-entrypoints/{created['id']}", {"social_account_id": account.id},
                        format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["specificity"] == 10 and patched.json()["priority"] == 5
    patched = api.patch(f"/v1/automation-entrypoints/{created['id']}", {"filters": TAG_FILTER}, format="json")
    assert patched.json()["specificity"] == 20 and patched.json()["social_account_id"] == account.id
    patched = api.patch(f"/v1/automation-entrypoints/{created['id']}", {"social_account_id": None}, format="json")
    assert patched.json()["social_account_id"] is None


def test_patch_cannot_change_kind(api, automation):
    created = post(api, automation, kind="dm_received").json()
    response = api.patch(f"/v1/automation-entrypoints/{created['id']}", {"kind": "postback"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()["error"]["details"]
    same = api.patch(f"/v1/automation-entrypoints/{created['id']}", {"kind": "dm_received"}, format="json")
    assert same.status_code == 200


def test_get_list_delete(api, automation):
    first = post(api, automation, kind="dm_received").json()
    second = post(api, automation, kind="postback", config={"payloads": ["X"]}).json()
    listed = api.get(f"/v1/automations/{automation.id}/entrypoints").json()
    assert [row["id"] for row in listed["data"]] == [second["id"], first["id"]]
    assert api.get(f"/v1/automation-entrypoints/{first['id']}").json()["kind"] == "dm_received"
    assert api.delete(f"/v1/automation-entrypoints/{first['id']}").status_code == 204
    assert not Entrypoint.objects.filter(pk=first["id"]).exists()


@pytest.mark.parametrize("body, field", [
    ({"kind": "telepathy"}, "kind"),
    ({}, "kind"),
    ({"kind": "dm_received", "config": {"keywords": "price"}}, "config.keywords"),
    ({"kind": "dm_received", "config": {"keywords": [""]}}, "config.keywords"),
    ({"kind": "dm_received", "config": {"match_mode": "fuzzy"}}, "config.match_mode"),
    ({"kind": "dm_received", "config": {"case_sensitive": "yes"}}, "config.case_sensitive"),
    ({"kind": "dm_received", "config": {"post_ids": ["p"]}}, "config.post_ids"),
    ({"kind": "dm_received", "config": {"keywords": ["(\\w+) \\1"], "match_mode": "regex"}}, "config.keywords[0]"),
    ({"kind": "dm_received", "config": {"keywords": ["["], "match_mode": "regex"}}, "config.keywords[0]"),
    ({"kind": "dm_received", "config": {"keywords": ["x" * 201], "match_mode": "regex"}}, "config.keywords"),
    ({"kind": "comment_created", "config": {"post_ids": "p1"}}, "config.post_ids"),
    ({"kind": "comment_created", "config": {"include_replies": 1}}, "config.include_replies"),
    ({"kind": "postback", "config": {"payloads": [1]}}, "config.payloads"),
    ({"kind": "tag_applied", "config": {}}, "config.tag_ids"),
    ({"kind": "tag_removed", "config": {"tag_ids": []}}, "config.tag_ids"),
    ({"kind": "field_changed", "config": {"field_keys": ["plan"], "to": {"a": 1}}}, "config.to"),
    ({"kind": "field_changed", "config": {}}, "config.field_keys"),
    ({"kind": "schedule", "config": {"cron": "0 9 * * 1", "timezone": "UTC"}, "filters": TAG_FILTER},
     "config.cron"),
    ({"kind": "schedule", "config": {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "filters": TAG_FILTER},
     "config.timezone"),
    ({"kind": "schedule", "config": {"cron": "0 9 * * *"}}, "filters"),
    ({"kind": "webhook_inbound", "config": {"payload_mapping": {"order": "order.id"}}}, "config.payload_mapping"),
    ({"kind": "webhook_inbound", "config": {"contact_lookup": "name"}}, "config.contact_lookup"),
    ({"kind": "dm_received", "filters": {"all": [{"field": "nope", "op": "eq", "value": 1}]}}, "filters"),
    ({"kind": "dm_received", "priority": "high"}, "priority"),
    ({"kind": "dm_received", "reentry_cooldown_min": -1}, "reentry_cooldown_min"),
    ({"kind": "dm_received", "status": "deleted"}, "status"),
    ({"kind": "dm_received", "config": []}, "config"),
])
def test_invalid_bodies_are_400_with_field_details_and_write_nothing(api, automation, body, field):
    response = post(api, automation, **body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"], error["details"]
    assert Entrypoint.objects.count() == 0


def test_unknown_body_fields_are_rejected(api, automation):
    response = post(api, automation, kind="dm_received", specificity=99)
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_field"
    assert Entrypoint.objects.count() == 0


def test_a_paused_schedule_needs_no_tag_filter_but_activation_does(api, automation):
    created = post(api, automation, kind="schedule", status="paused", config={"cron": "*/15 * * * *"})
    assert created.status_code == 201, created.json()
    assert created.json()["config"] == {"cron": "*/15 * * * *", "timezone": "UTC"}
    response = api.patch(f"/v1/automation-entrypoints/{created.json()['id']}", {"status": "active"}, format="json")
    assert response.status_code == 400 and "filters" in response.json()["error"]["details"]
    response = api.patch(f"/v1/automation-entrypoints/{created.json()['id']}",
                         {"status": "active", "filters": TAG_FILTER}, format="json")
    assert response.status_code == 200


def test_valid_configs_for_every_kind(api, automation):
    bodies = [
        {"kind": "dm_received", "config": {"keywords": ["Hi", "hello"], "match_mode": "contains",
                                           "case_sensitive": True, "first_message_only": True}},
        {"kind": "comment_created", "config": {"post_ids": ["p1"], "keywords": ["win"], "match_mode": "exact",
                                               "include_replies": False}},
        {"kind": "story_reply", "config": {"story_ids": ["s1"]}},
        {"kind": "story_mention", "config": {}},
        {"kind": "postback", "config": {"payloads": ["BUY"]}},
        {"kind": "tag_applied", "config": {"tag_ids": ["vip"]}},
        {"kind": "tag_removed", "config": {"tag_ids": ["vip"]}},
        {"kind": "field_changed", "config": {"field_keys": ["plan"], "from": "free", "to": "pro"}},
        {"kind": "schedule", "config": {"cron": "30 9 * * *", "timezone": "Europe/Oslo"}, "filters": TAG_FILTER},
        {"kind": "webhook_inbound", "config": {"payload_mapping": {"order_id": "$.order.id"},
                                               "contact_lookup": "email", "create_contact": True}},
    ]
    for body in bodies:
        response = post(api, automation, **body)
        assert response.status_code == 201, (body, response.json())


def test_channel_must_equal_the_automations(api, org, automation):
    response = post(api, automation, kind="dm_received", channel="telegram")
    assert response.status_code == 400 and response.json()["error"]["code"] == "channel_mismatch"
    telegram_account = factories.social_account(org, channel="telegram")
    response = post(api, automation, kind="dm_received", social_account_id=telegram_account.id)
    assert response.status_code == 400 and response.json()["error"]["code"] == "channel_mismatch"
    assert post(api, automation, kind="dm_received", channel="instagram").status_code == 201
    assert Entrypoint.objects.count() == 1


def test_another_orgs_social_account_is_rejected(api, automation, other_org):
    foreign = factories.social_account(other_org)
    for account_id in (foreign.id, "acc_missing"):  # another organization's id is as unknown as a made-up one
        response = post(api, automation, kind="dm_received", social_account_id=account_id)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert Entrypoint.objects.count() == 0


def test_webhook_secret_is_shown_once_and_rotates(api, automation):
    created = post(api, automation, kind="webhook_inbound").json()
    secret = created["webhook_secret"]
    assert secret and created["webhook_slug"] and created["webhook_url"] == \
        f"/v1/webhooks/automations/{created['webhook_slug']}"
    assert created["config"] == {"payload_mapping": {}, "contact_lookup": "contact_id", "create_contact": False}
    row = Entrypoint.objects.get(pk=created["id"])
    assert row.webhook_secret == secret
    fetched = api.get(f"/v1/automation-entrypoints/{created['id']}").json()
    assert "webhook_secret" not in fetched and fetched["webhook_slug"] == created["webhook_slug"]
    listed = api.get(f"/v1/automations/{automation.id}/entrypoints").json()["data"]
    assert listed and all("webhook_secret" not in row for row in listed)
    patched = api.patch(f"/v1/automation-entrypoints/{created['id']}", {"priority": 1}, format="json").json()
    assert "webhook_secret" not in patched and patched["webhook_slug"] == created["webhook_slug"]
    rotated = api.post(f"/v1/automation-entrypoints/{created['id']}/rotate-secret").json()
    assert rotated["webhook_secret"] != secret and rotated["webhook_slug"] == created["webhook_slug"]
    assert Entrypoint.objects.get(pk=created["id"]).webhook_secret == rotated["webhook_secret"]


def test_webhook_slugs_are_unique(api, automation):
    slugs = {post(api, automation, kind="webhook_inbound").json()["webhook_slug"] for _ in range(5)}
    assert len(slugs) == 5


def test_rotate_secret_only_for_webhooks(api, automation):
    created = post(api, automation, kind="dm_received").json()
    response = api.post(f"/v1/automation-entrypoints/{created['id']}/rotate-secret")
    assert response.status_code == 422 and response.json()["error"]["code"] == "not_a_webhook"


def test_other_orgs_entrypoints_are_404(api, other_org):
    foreign = factories.entrypoint(factories.automation(other_org), kind="webhook_inbound", webhook_slug="abc",
                                   webhook_secret="s")
    base = f"/v1/automation-entrypoints/{foreign.id}"
    assert api.get(base).status_code == 404
    assert api.patch(base, {"priority": 1}, format="json").status_code == 404
    assert api.delete(base).status_code == 404
    assert api.post(f"{base}/rotate-secret").status_code == 404
    assert api.post(f"/v1/automations/{foreign.automation_id}/entrypoints", {"kind": "dm_received"},
                    format="json").status_code == 404
    stored = Entrypoint.objects.get(pk=foreign.id)
    assert stored.priority == 100 and stored.webhook_secret == "s"


def test_migration_rederives_stored_contains_specificity(automation, account):
    from importlib import import_module

    from django.apps import apps

    rederive = import_module("automations.migrations.0004_contains_keywords_specificity").rederive
    contains = {"keywords": ["hi"], "match_mode": "contains"}
    plain = factories.entrypoint(automation, config=contains, specificity=20)
    scoped = factories.entrypoint(automation, config=contains, social_account=account, specificity=20)
    filtered = factories.entrypoint(automation, config=contains, filters=TAG_FILTER, specificity=20)
    exact = factories.entrypoint(automation, config={"keywords": ["hi"], "match_mode": "exact"}, specificity=30)
    rederive(apps, None)
    assert [Entrypoint.objects.get(pk=e.pk).specificity for e in (plain, scoped, filtered, exact)] == [0, 10, 20, 30]
