"""`POST /v1/inbound-events` (API key) and `POST /v1/webhooks/automations/{slug}` (HMAC, no key)."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.models import CONTACT_CHANGE_KINDS, InboundKind, InboundOutcome
from automations.runtime import inbound, webhooks
from automations.store.accounts import organization_account
from contacts import actions
from contacts.models import Contact, SocialAccount
from relay.core import parsers
from relay.core.openapi import error_responses
from relay.core.serializers import OrgRelatedField, StrictSerializer

# What a platform reports here: every inbound kind but a webhook delivery (which has its own door).
INBOUND_KINDS = [kind for kind in InboundKind if kind != InboundKind.WEBHOOK_INBOUND]


class _AccountField(OrgRelatedField):
    """The event's social account: the same lookup, as one statement built once (every event makes it:
    `store.accounts.ORGANIZATION_ACCOUNT`)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        request = self.context.get("request")
        organization = getattr(request, "organization", None) or self.context.get("organization")
        account = organization_account(data, getattr(organization, "pk", organization))
        if account is None:
            return super().to_internal_value(data)  # its not_found answer
        return account


class InboundContactSerializer(StrictSerializer):
    platform_user_id = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class InteractiveSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=["button", "quick_reply"])
    id = serializers.CharField(max_length=100)


class InboundEventSerializer(StrictSerializer):
    event_id = serializers.CharField(max_length=200)
    social_account_id = _AccountField(model=SocialAccount)
    kind = serializers.ChoiceField(choices=INBOUND_KINDS)
    contact = InboundContactSerializer(required=False)
    contact_id = OrgRelatedField(model=Contact, required=False)
    text = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    interactive = InteractiveSerializer(required=False)
    post_id = serializers.CharField(required=False, max_length=200)
    story_id = serializers.CharField(required=False, max_length=200)
    parent_comment_id = serializers.CharField(required=False, max_length=200)
    attachments = serializers.ListField(child=serializers.DictField(), required=False, max_length=20)
    occurred_at = serializers.DateTimeField(required=False)
    tag = serializers.CharField(required=False, max_length=100)
    field = serializers.CharField(required=False, max_length=100)
    value = serializers.JSONField(required=False, allow_null=True)

    def validate(self, attrs):
        if bool(attrs.get("contact")) == bool(attrs.get("contact_id")):
            raise serializers.ValidationError({"contact": ["Send exactly one of `contact` or `contact_id`."]})
        kind = attrs["kind"]
        if kind in (InboundKind.TAG_APPLIED, InboundKind.TAG_REMOVED) and not (attrs.get("tag") or "").strip():
            raise serializers.ValidationError({"tag": [f"required for {kind}."]})
        if kind == InboundKind.FIELD_CHANGED and (not attrs.get("field") or "value" not in attrs):
            raise serializers.ValidationError({"field": ["`field` and `value` are required for field_changed."]})
        return attrs


class InboundEventResponseSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    contact_id = serializers.CharField(allow_null=True)
    conversation_id = serializers.CharField(allow_null=True)
    outcome = serializers.ChoiceField(choices=InboundOutcome.choices)
    run_id = serializers.CharField(allow_null=True)


class WebhookResponseSerializer(serializers.Serializer):
    outcome = serializers.CharField(help_text="`enrolled`, or why not (e.g. `reentry_blocked`).")
    run_id = serializers.CharField(allow_null=True)
    contact_id = serializers.CharField(allow_null=True)


class InboundEventView(APIView):
    serializer_class = InboundEventSerializer

    @extend_schema(
        request=InboundEventSerializer,
        responses={202: InboundEventResponseSerializer, **error_responses({404: ["not_found"]})},
        examples=[
            OpenApiExample("a DM", request_only=True, value={
                "event_id": "mid.1234", "social_account_id": "acc_0123456789abcdefghij", "kind": "dm_received",
                "contact": {"platform_user_id": "ig-4711", "name": "Bob"}, "text": "price?"}),
            OpenApiExample("a button press", request_only=True, value={
                "event_id": "mid.1235", "social_account_id": "acc_0123456789abcdefghij", "kind": "postback",
                "contact_id": "ct_0123456789abcdefghij", "interactive": {"type": "button", "id": "btn_large"}}),
        ],
        description="One channel event. The same `event_id` twice answers `duplicate` and is processed once.")
    def post(self, request):
        serializer = InboundEventSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return Response(receive(serializer.validated_data, raw=request.data).as_response(), status=202)


def receive(data: dict, raw) -> inbound.InboundResult:
    """Process one validated inbound event (`InboundEventSerializer`); platform webhooks come here too."""
    contact_data = data.get("contact") or {}
    sender = actions.Sender(
        contact_id=data["contact_id"].id if data.get("contact_id") else None,
        platform_user_id=contact_data.get("platform_user_id"), name=contact_data.get("name", ""),
    )
    if data["kind"] in CONTACT_CHANGE_KINDS:
        return inbound.receive_contact_change(
            data["social_account_id"], event_id=data["event_id"], kind=data["kind"], sender=sender,
            tag=(data.get("tag") or "").strip() or None, field=data.get("field"), value=data.get("value"), raw=raw,
        )
    return inbound.receive_event(
        data["social_account_id"],
        event_id=data["event_id"], kind=data["kind"],
        sender=sender,
        text=data.get("text", ""), interactive=data.get("interactive"), post_id=data.get("post_id"),
        story_id=data.get("story_id"), parent_comment_id=data.get("parent_comment_id"),
        attachments=data.get("attachments"), occurred_at=data.get("occurred_at"), raw=raw,
    )


class RawJsonParser(BaseParser):
    """Keep the exact bytes (the signature covers the raw body, not a re-serialisation of it), read no
    more than RELAY_WEBHOOK_MAX_BODY_BYTES (413 `payload_too_large` above)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        return parsers.read_capped(stream, settings.RELAY_WEBHOOK_MAX_BODY_BYTES,
                                   parsers.declared_length(request.META if request is not None else {}))


class WebhookView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [RawJsonParser]

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter(
            webhooks.SIGNATURE_HEADER, str, OpenApiParameter.HEADER, required=True,
            description="`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>`, 5 minutes' tolerance.")],
        responses={202: WebhookResponseSerializer, **error_responses({
            401: ["invalid_signature", "stale_signature"], 404: ["not_found", "contact_not_found"],
            409: ["duplicate_delivery"], 413: ["payload_too_large"],
            422: ["contact_unresolved", "entrypoint_inactive"]})},
        description="A `webhook_inbound` entrypoint's door: no API key, the body is signed with its secret.")
    def post(self, request, slug):
        raw = request.data if isinstance(request.data, bytes) else b""
        signature = request.headers.get(webhooks.SIGNATURE_HEADER)
        return Response(webhooks.receive_webhook(slug, raw, signature).as_response(), status=202)
