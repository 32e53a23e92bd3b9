"""webhook_inbound: HMAC-signed POSTs start runs; bad or stale signatures write nothing."""

import json
import time

import pytest
from rest_framework.test import APIClient

from automations.models import AutomationRun, InboundEvent, StepRun
from automations.runtime.webhooks import json_path, mapped_context, sign
from contacts.models import Contact
from tests import factories
from tests.helpers import assert_statements
from tests.inbound.helpers import make_entrypoint, reply_flow

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


@pytest.fixture
def hook(org):
    automation = reply_flow(org)
    return make_entrypoint(automation, kind="webhook_inbound", config={
        "contact_lookup": "email", "create_contact": True,
        "payload_mapping": {"order_id": "$.order.id", "first_item": "$.order.items[0].sku", "missing": "$.nope"},
    })


def post(slug, body, secret=None, *, timestamp=None, header=None):
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    headers = {}
    if header is not None:
        headers["HTTP_X_RELAY_SIGNATURE"] = header
    elif secret is not None:
        headers["HTTP_X_RELAY_SIGNATURE"] = sign(secret, raw, timestamp)
    return APIClient().post(f"/v1/webhooks/automations/{slug}", raw, content_type="application/json", **headers)


BODY = {"email": "buyer@example.com", "name": "Buyer", "order": {"id": "1234", "items": [{"sku": "A-1"}]}}


def test_good_signature_enrolls_with_mapped_context(hook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(hook.webhook_slug, BODY, hook.webhook_secret)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["outcome"] == "enrolled"
    run = AutomationRun.objects.get(pk=body["run_id"])
    assert run.context == {"order_id": "1234", "first_item": "A-1"}
    assert Contact.objects.get(pk=body["contact_id"]).email == "buyer@example.com"
    # It ran: a contact known only by email has no conversation, and greet has no error edge.
    assert (run.status, run.exit_reason) == ("failed", "handler_failure")
    assert StepRun.objects.get(run_id=run.pk).error["code"] == "no_conversation"


def test_existing_contact_is_found_by_email(hook, org):
    person = factories.contact(org, email="buyer@example.com")
    response = post(hook.webhook_slug, BODY, hook.webhook_secret)
    assert response.json()["contact_id"] == person.id
    assert Contact.objects.count() == 1


@pytest.mark.parametrize("tamper", ["bad_hmac", "stale", "future", "missing", "malformed", "other_secret"])
def test_bad_or_stale_signature_is_401_and_writes_nothing(hook, tamper):
    raw = json.dumps(BODY).encode()
    now = int(time.time())
    header = {
        "bad_hmac": sign(hook.webhook_secret, raw + b" ", now),
        "stale": sign(hook.webhook_secret, raw, now - 301),
        # Beyond the tolerance by more than a slow request takes: the server's clock moves on meanwhile.
        "future": sign(hook.webhook_secret, raw, now + 330),
        "missing": None,
        "malformed": "v1=abc",
        "other_secret": sign("whsec_other", raw, now),
    }[tamper]
    response = post(hook.webhook_slug, raw, header=header) if header else post(hook.webhook_slug, raw)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"invalid_signature", "stale_signature"}
    assert AutomationRun.objects.count() == 0 and Contact.objects.count() == 0


def test_signature_within_tolerance_is_accepted(hook):
    assert post(hook.webhook_slug, BODY, hook.webhook_secret, timestamp=int(time.time()) - 290).status_code == 202


def test_unknown_slug_is_404(hook):
    response = post("nope", BODY, hook.webhook_secret)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_contact_not_created_unless_allowed(org):
    entry = make_entrypoint(reply_flow(org), kind="webhook_inbound", config={"contact_lookup": "phone"})
    response = post(entry.webhook_slug, {"phone": "+15550001111"}, entry.webhook_secret)
    assert response.status_code == 404 and response.json()["error"]["code"] == "contact_not_found"
    missing = post(entry.webhook_slug, {"email": "x@example.com"}, entry.webhook_secret)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "contact_unresolved"
    assert Contact.objects.count() == 0


def test_invalid_json_with_good_signature_is_400(hook):
    response = post(hook.webhook_slug, b"{not json", hook.webhook_secret)
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"


def test_rotated_secret_stops_the_old_one(api, hook):
    old = hook.webhook_secret
    rotated = api.post(f"/v1/automation-entrypoints/{hook.id}/rotate-secret").json()
    new_secret = rotated.get("webhook_secret")
    assert new_secret and new_secret != old
    assert post(hook.webhook_slug, BODY, old).status_code == 401
    assert post(hook.webhook_slug, BODY, new_secret).status_code == 202


VIP_ONLY = {"all": [{"field": "contact.tags", "op": "contains", "value": "vip"}]}


def test_webhook_entrypoint_filters_keep_a_contact_out(api, org):
    automation = reply_flow(org)
    created = api.post(f"/v1/automations/{automation.id}/entrypoints", {
        "kind": "webhook_inbound", "config": {"contact_lookup": "email"}, "filters": VIP_ONLY}, format="json")
    assert created.status_code == 201, created.json()
    slug, secret = created.json()["webhook_slug"], created.json()["webhook_secret"]
    plain = factories.contact(org, email="plain@example.com", tags=["lead"])
    vip = factories.contact(org, email="vip@example.com", tags=["vip"])

    response = post(slug, {"email": "plain@example.com"}, secret)
    assert response.status_code == 202, response.json()
    assert response.json() == {"outcome": "filtered_out", "run_id": None, "contact_id": plain.id}
    assert not AutomationRun.objects.filter(contact=plain).exists()
    stored = InboundEvent.objects.get(contact=plain)
    assert (stored.kind, stored.outcome, stored.run_id) == ("webhook_inbound", "filtered_out", None)
    assert [(t["entrypoint_id"], t["result"]) for t in stored.trace] == [(created.json()["id"], "filters_failed")]

    response = post(slug, {"email": "vip@example.com"}, secret)
    assert response.json()["outcome"] == "enrolled"
    run = AutomationRun.objects.get(contact=vip)
    assert run.pk == response.json()["run_id"]
    stored = InboundEvent.objects.get(contact=vip)
    assert (stored.outcome, stored.run_id, stored.trace[0]["result"]) == ("enrolled", run.pk, "matched")


def test_webhook_filters_see_the_mapped_context(org):
    entry = make_entrypoint(reply_flow(org), kind="webhook_inbound",
                            config={"contact_lookup": "email", "payload_mapping": {"plan": "$.plan"}},
                            filters={"all": [{"field": "context.plan", "op": "eq", "value": "pro"}]})
    factories.contact(org, email="a@example.com")
    assert post(entry.webhook_slug, {"email": "a@example.com", "plan": "free"},
                entry.webhook_secret).json()["outcome"] == "filtered_out"
    assert post(entry.webhook_slug, {"email": "a@example.com", "plan": "pro"},
                entry.webhook_secret).json()["outcome"] == "enrolled"


def test_the_same_filter_on_dm_received_and_webhook_agree(api, org, account, django_capture_on_commit_callbacks):
    from tests.inbound.helpers import event, send

    dm_flow, hook_flow = reply_flow(org), reply_flow(org)
    make_entrypoint(dm_flow, filters=VIP_ONLY)
    hook_entry = make_entrypoint(hook_flow, kind="webhook_inbound", config={"contact_lookup": "contact_id"},
                                 filters=VIP_ONLY)
    person = factories.contact(org, account=account, platform_user_id="psid-x")
    dm = send(api, django_capture_on_commit_callbacks, event(account, "hi", user="psid-x"))
    assert dm["outcome"] == "no_match" and dm["contact_id"] == person.id
    hook = post(hook_entry.webhook_slug, {"contact_id": person.id}, hook_entry.webhook_secret).json()
    assert hook["outcome"] == "filtered_out"
    assert not AutomationRun.objects.filter(contact=person).exists()


def test_json_path_subset():
    doc = {"a": {"b": [{"c": 1}, {"c 2": 2}]}}
    assert json_path(doc, "$.a.b[0].c") == 1
    assert json_path(doc, "$.a.b[1]['c 2']") == 2
    assert mapped_context({"x": "$.a.b[5]", "y": "a.b", "z": "$.a"}, doc) == {"z": doc["a"]}


# -- replays ---------------------------------------------------------------------------------------

def test_a_signed_delivery_is_accepted_once(hook):
    raw = json.dumps(BODY).encode()
    header = sign(hook.webhook_secret, raw)
    timestamp, digest = header.split(",")
    answers = [post(hook.webhook_slug, raw, header=h) for h in (header, header, header, f"{digest},{timestamp}",
                                                               f" {timestamp} , {digest.upper().replace('V1', 'v1')} ")]
    assert [a.status_code for a in answers] == [202, 409, 409, 409, 409]
    assert {a.json()["error"]["code"] for a in answers[1:]} == {"duplicate_delivery"}
    assert AutomationRun.objects.count() == 1
    # A new delivery of the same body is signed with its own timestamp: accepted (re-entry rules apply).
    # (One second before the first's: `now - 1` equals it when the posts above cross a second boundary.)
    earlier = int(timestamp.removeprefix("t=")) - 1
    assert post(hook.webhook_slug, raw, hook.webhook_secret, timestamp=earlier).status_code == 202


def test_a_refused_delivery_is_not_remembered(org):
    entry = make_entrypoint(reply_flow(org), kind="webhook_inbound", config={"contact_lookup": "email"})
    raw = json.dumps({"email": "late@example.com"}).encode()
    header = sign(entry.webhook_secret, raw)
    assert post(entry.webhook_slug, raw, header=header).status_code == 404  # contact_not_found: nothing done
    factories.contact(org, email="late@example.com")
    assert post(entry.webhook_slug, raw, header=header).status_code == 202
    assert post(entry.webhook_slug, raw, header=header).status_code == 409


def test_deliveries_past_the_replay_window_are_forgotten(hook):
    from datetime import timedelta

    from django.utils import timezone

    from automations.models import WebhookDelivery

    old = WebhookDelivery.objects.create(entrypoint=hook, signature="0" * 64,
                                         received_at=timezone.now() - timedelta(seconds=601))
    assert post(hook.webhook_slug, BODY, hook.webhook_secret).status_code == 202
    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()
    assert WebhookDelivery.objects.filter(entrypoint=hook).count() == 1


# -- size, shape and header junk: 4xx, nothing written ---------------------------------------------

def test_a_body_over_the_cap_is_413_before_the_slug_is_looked_up(hook, settings):
    settings.RELAY_WEBHOOK_MAX_BODY_BYTES = 1024
    raw = json.dumps({**BODY, "pad": "x" * 1024}).encode()
    with assert_statements(0):
        for slug in (hook.webhook_slug, "no-such-slug"):
            response = post(slug, raw, hook.webhook_secret)
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "payload_too_large"
    assert post(hook.webhook_slug, json.dumps(BODY).encode(), hook.webhook_secret).status_code == 202


def test_the_cap_is_enforced_while_reading_whatever_content_length_says():
    from relay.core.parsers import READ_CHUNK_BYTES, read_capped

    class Endless:
        served = 0

        def read(self, size):
            self.served += size
            return b"x" * size

    stream = Endless()
    with pytest.raises(Exception) as refused:
        read_capped(stream, 256 * 1024, declared=10)
    assert refused.value.status_code == 413
    assert stream.served <= 256 * 1024 + READ_CHUNK_BYTES
    assert read_capped(None, 10) == b""


@pytest.mark.parametrize("header", ["t=\u00b2,v1=" + "a" * 64, "t=1,v1=\u00b2", "t=,v1=", "t=1e3,v1=" + "a" * 64,
                                    "t=99999999999999999999,v1=" + "a" * 64, "garbage", "t=1,v1=" + "g" * 64])
def test_malformed_signature_headers_are_401(hook, header):
    response = post(hook.webhook_slug, BODY, header=header)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deeply_nested_signed_json_is_400(hook, depth):
    raw = b'{"email": "buyer@example.com", "x": ' + b"[" * depth + b"]" * depth + b"}"
    response = post(hook.webhook_slug, raw, hook.webhook_secret)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "json_too_deep"
    assert AutomationRun.objects.count() == 0 and Contact.objects.count() == 0


@pytest.mark.parametrize("raw, field", [(b'{"email": "a\\u0000@example.com"}', "email"),
                                        (b'{"email": "b@example.com", "order": {"n\\u0000": 1}}', "order.n\\u0000"),
                                        (b'{"email": "c@example.com", "x": ["\\ud800"]}', "x[0]")])
def test_nul_or_lone_surrogates_in_signed_json_are_400_naming_the_field(hook, raw, field):
    response = post(hook.webhook_slug, raw, hook.webhook_secret)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and list(error["details"]) == [field]
    assert AutomationRun.objects.count() == 0 and Contact.objects.count() == 0
