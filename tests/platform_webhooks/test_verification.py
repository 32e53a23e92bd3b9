"""Platform webhook endpoints verify before anything is recorded: Meta's handshake and body signature,
Telegram's secret header, a body cap enforced while reading."""

import json

import pytest
from rest_framework.test import APIClient

from automations.api.platform_webhooks import MAX_BODY_BYTES, meta_signature_valid
from automations.models import InboundEvent, PlatformDelivery
from contacts.models import Contact
from tests.platform_webhooks.payloads import (
    VERIFY_TOKEN,
    fb_message,
    page_envelope,
    post_meta,
    post_telegram,
    sign,
    tg_message,
    wa_envelope,
    wa_text,
)

pytestmark = [pytest.mark.django_db]


def nothing_recorded():
    return (PlatformDelivery.objects.count(), InboundEvent.objects.count(), Contact.objects.count()) == (0, 0, 0)


def test_reference_signature_sample_verifies():
    """The sample in reference §5: body "test", app secret "secret"."""
    header = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
    assert meta_signature_valid(b"test", header, "secret")
    assert not meta_signature_valid(b"test ", header, "secret")
    assert not meta_signature_valid(b"test", header, "other")
    assert not meta_signature_valid(b"test", header.replace("sha256=", "sha1="), "secret")
    assert not meta_signature_valid(b"test", header, "")


@pytest.mark.parametrize("path", ["meta", "whatsapp"])
def test_handshake_answers_the_challenge_as_plain_text(path):
    response = APIClient().get(f"/v1/platform-webhooks/{path}", {
        "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    {"hub.mode": "subscribe", "hub.challenge": "1"},
])
def test_handshake_with_wrong_token_or_mode_is_403(params):
    response = APIClient().get("/v1/platform-webhooks/meta", params)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_verify_token"


def test_handshake_is_refused_when_no_verify_token_is_configured(settings):
    settings.RELAY_META_VERIFY_TOKEN = ""
    response = APIClient().get("/v1/platform-webhooks/whatsapp",
                               {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"})
    assert response.status_code == 403


@pytest.mark.parametrize("tamper", ["other_secret", "body_changed", "missing", "malformed", "sha1"])
def test_forged_meta_signature_records_nothing(fb_account, wa_account, tamper):
    body = page_envelope(fb_account.external_id, fb_message(fb_account.external_id, "price"))
    raw = json.dumps(body).encode()
    signature = {"other_secret": sign(raw, "not-the-app-secret"), "body_changed": sign(raw + b" "),
                 "missing": "", "malformed": "deadbeef", "sha1": sign(raw).replace("sha256", "sha1")}[tamper]
    for path, payload in (("meta", raw), ("whatsapp", json.dumps(wa_envelope(
            wa_account.external_id, messages=[wa_text("price")])).encode())):
        response = post_meta(path, payload, signature=signature if tamper != "body_changed" else sign(payload + b"x"))
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == "invalid_signature"
    assert nothing_recorded()


def test_meta_signature_is_refused_when_no_app_secret_is_configured(settings, fb_account):
    settings.RELAY_META_APP_SECRET = ""
    body = page_envelope(fb_account.external_id, fb_message(fb_account.external_id, "price"))
    response = post_meta("meta", body, secret="")
    assert response.status_code == 401
    assert nothing_recorded()


def test_signature_is_checked_on_the_raw_bytes_not_a_reserialisation(fb_account, django_capture_on_commit_callbacks):
    """Meta may escape unicode differently than json.dumps would: the bytes as sent are what is signed."""
    raw = b'{"object":"page","entry":[{"id":"PAGE-1","messaging":[]}],"note":"caf\\u00e9"}'
    with django_capture_on_commit_callbacks():
        assert post_meta("meta", raw).status_code == 200
    assert bytes(PlatformDelivery.objects.get().body) == raw


def test_body_over_the_cap_is_413_and_not_stored(fb_account):
    padding = "x" * (MAX_BODY_BYTES + 1)
    body = json.dumps({"object": "page", "entry": [], "padding": padding}).encode()
    response = post_meta("meta", body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert nothing_recorded()


def test_body_cap_holds_while_reading_even_if_content_length_lies(fb_account):
    """The declared length is checked first, but the cap is enforced on what is actually read."""
    from io import BytesIO

    from django.test import RequestFactory

    from relay.core.errors import ApiError
    from relay.core.parsers import read_body

    request = RequestFactory().post("/x", b"", content_type="application/json")
    request._stream = BytesIO(b"y" * (MAX_BODY_BYTES + 10))
    request.META["CONTENT_LENGTH"] = "10"
    with pytest.raises(ApiError) as caught:
        read_body(request, MAX_BODY_BYTES)
    assert caught.value.status_code == 413
    request._stream = BytesIO(b"z" * 100)
    assert read_body(request, MAX_BODY_BYTES) == b"z" * 100


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 5000 + b"]" * 5000])
def test_signed_body_that_is_not_a_json_object_is_400_and_not_stored(raw):
    response = post_meta("whatsapp", raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert nothing_recorded()


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", "s3cr3t_Token-"])
def test_telegram_without_the_right_secret_header_records_nothing(tg_account, secret):
    response = post_telegram(tg_account.pk, tg_message("price"), secret=secret)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_secret_token"
    assert PlatformDelivery.objects.count() == 0 and InboundEvent.objects.count() == 0


def test_telegram_unknown_account_answers_like_a_wrong_secret(tg_account, fb_account):
    for account_id in ("acc_doesnotexist", fb_account.pk):
        response = post_telegram(account_id, tg_message("price"))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "invalid_secret_token"
    assert PlatformDelivery.objects.count() == 0


def test_telegram_account_without_a_webhook_secret_accepts_nothing(tg_account):
    tg_account.set_credentials({"bot_token": "123456789:AAtest"})
    tg_account.save()
    assert post_telegram(tg_account.pk, tg_message("price"), secret="").status_code == 403
    assert PlatformDelivery.objects.count() == 0


def test_verified_delivery_is_stored_as_it_arrived_and_answered_200(tg_account, django_capture_on_commit_callbacks):
    update = json.dumps(tg_message("price")).encode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_telegram(tg_account.pk, update)
    assert response.status_code == 200 and response.json() == {"received": True}
    delivery = PlatformDelivery.objects.get()
    assert (delivery.source, delivery.social_account_id, delivery.status) == ("telegram", tg_account.pk, "pending")
    assert bytes(delivery.body) == update
    assert len(callbacks) == 1  # the processing task, enqueued once the row is committed
    assert InboundEvent.objects.count() == 0  # nothing processed in the request itself
