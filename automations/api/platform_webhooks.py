"""Platform webhook endpoints (no API key: each platform's own verification).

- `GET /v1/platform-webhooks/meta|whatsapp`: Meta's subscription handshake (`hub.verify_token` =
  RELAY_META_VERIFY_TOKEN → the `hub.challenge` as plain text; else 403).
- `POST /v1/platform-webhooks/meta|whatsapp`: `X-Hub-Signature-256` = HMAC-SHA256 of the raw body with
  RELAY_META_APP_SECRET, checked in constant time on the bytes as read, before any parsing.
- `POST /v1/platform-webhooks/telegram/{social_account_id}`: `X-Telegram-Bot-Api-Secret-Token` must equal
  the account's `webhook_secret` (given to setWebhook).
Bodies are read with a 256 KiB cap (413 beyond). A verified delivery is stored as it came and answered 200
at once; a worker processes it (`automations.channels.inbound.deliveries`). A refused one writes nothing."""

import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.channels.inbound import deliveries
from automations.models import WebhookSource
from contacts.models import Channel, SocialAccount
from relay.core import parsers
from relay.core.crypto import SecretUnreadable
from relay.core.errors import ApiError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
META_SIGNATURE_HEADER = "X-Hub-Signature-256"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

_RECEIVED = inline_serializer("PlatformDeliveryReceived", {"received": serializers.BooleanField()})
_ERRORS = {
    400: OpenApiResponse(description="`malformed_json`: the verified body is not a JSON object."),
    413: OpenApiResponse(description="`payload_too_large`: over 256 KiB."),
}


def _parse_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise ApiError("malformed_json", "The body is not a JSON object.")
    return body


def _received(source: str, raw: bytes, account: SocialAccount | None = None) -> Response:
    deliveries.store(source, raw, account)
    return Response({"received": True}, status=200)


def meta_signature_valid(raw: bytes, header: str | None, app_secret: str) -> bool:
    """`sha256=<hex HMAC-SHA256(app secret, raw body)>`, compared in constant time."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[len("sha256="):].strip().lower().encode())


class _MetaWebhookView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    raw_body = True  # read_capped reads the bytes: no parser runs, so no 415
    source: str = ""

    def get(self, request):
        token = settings.RELAY_META_VERIFY_TOKEN
        given = request.query_params.get("hub.verify_token", "")
        challenge = request.query_params.get("hub.challenge", "")
        if (request.query_params.get("hub.mode") != "subscribe" or not token
                or not hmac.compare_digest(token.encode(), given.encode()) or not challenge or len(challenge) > 256):
            raise ApiError("invalid_verify_token", "The subscription handshake did not match.", status=403)
        return HttpResponse(challenge, content_type="text/plain")

    def post(self, request):
        raw = parsers.read_body(request, MAX_BODY_BYTES)
        if not meta_signature_valid(raw, request.headers.get(META_SIGNATURE_HEADER), settings.RELAY_META_APP_SECRET):
            raise ApiError("invalid_signature", f"{META_SIGNATURE_HEADER} does not sign this body.", status=401)
        _parse_object(raw)
        return _received(self.source, raw)


_HANDSHAKE = [OpenApiParameter("hub.mode", str, required=True, description="`subscribe`"),
              OpenApiParameter("hub.verify_token", str, required=True, description="RELAY_META_VERIFY_TOKEN"),
              OpenApiParameter("hub.challenge", str, required=True, description="Echoed back as text/plain.")]


def _handshake_schema(source: str, what: str) -> dict:
    return {"operation_id": f"platform_webhooks_{source}_handshake", "auth": [], "parameters": _HANDSHAKE,
            "summary": f"{what}: webhook subscription handshake",
            "responses": {(200, "text/plain"): OpenApiTypes.STR,
                          403: OpenApiResponse(description="`invalid_verify_token`")}}


def _delivery_schema(source: str, what: str) -> dict:
    signature = OpenApiParameter(META_SIGNATURE_HEADER, str, OpenApiParameter.HEADER, required=True,
                                 description="`sha256=<hex HMAC-SHA256(RELAY_META_APP_SECRET, raw body)>`")
    return {"operation_id": f"platform_webhooks_{source}_deliver", "auth": [], "request": OpenApiTypes.OBJECT,
            "parameters": [signature],
            "summary": f"{what}: webhook delivery (signed with X-Hub-Signature-256)",
            "responses": {200: _RECEIVED, 401: OpenApiResponse(description="`invalid_signature`: nothing recorded."),
                          **_ERRORS}}


class MetaWebhookView(_MetaWebhookView):
    source = WebhookSource.META

    @extend_schema(**_handshake_schema("meta", "Messenger and Instagram"))
    def get(self, request):
        return super().get(request)

    @extend_schema(**_delivery_schema("meta", "Messenger and Instagram"))
    def post(self, request):
        return super().post(request)


class WhatsAppWebhookView(_MetaWebhookView):
    source = WebhookSource.WHATSAPP

    @extend_schema(**_handshake_schema("whatsapp", "WhatsApp Cloud API"))
    def get(self, request):
        return super().get(request)

    @extend_schema(**_delivery_schema("whatsapp", "WhatsApp Cloud API"))
    def post(self, request):
        return super().post(request)


class TelegramWebhookView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    raw_body = True

    @extend_schema(
        operation_id="platform_webhooks_telegram_deliver", auth=[], request=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter(TELEGRAM_SECRET_HEADER, str, OpenApiParameter.HEADER, required=True,
                                     description="The secret_token given to setWebhook.")],
        summary="Telegram: webhook update for one bot (authenticated by X-Telegram-Bot-Api-Secret-Token)",
        responses={200: _RECEIVED, 403: OpenApiResponse(description="`invalid_secret_token`: nothing recorded."),
                   **_ERRORS})
    def post(self, request, social_account_id):
        account = self._verified_account(social_account_id, request.headers.get(TELEGRAM_SECRET_HEADER))
        raw = parsers.read_body(request, MAX_BODY_BYTES)
        _parse_object(raw)
        return _received(WebhookSource.TELEGRAM, raw, account)

    @staticmethod
    def _verified_account(account_id: str, given: str | None) -> SocialAccount:
        """The bot whose secret the header carries. An unknown id answers like a wrong secret, so the
        endpoint does not tell which account ids exist."""
        account = SocialAccount.objects.filter(pk=account_id, channel=Channel.TELEGRAM).first()
        secret = ""
        if account is not None:
            try:
                secret = str(account.credentials.get("webhook_secret") or "")
            except SecretUnreadable:
                logger.error("telegram webhook: credentials of %s cannot be decrypted", account.pk)
        if not secret or not given or not hmac.compare_digest(secret.encode(), given.encode()):
            raise ApiError("invalid_secret_token", f"{TELEGRAM_SECRET_HEADER} is missing or wrong.", status=403)
        return account
