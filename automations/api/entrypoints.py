"""Entrypoints API: what starts an automation. Config is validated per kind, specificity derived,
webhook secrets shown only in the create and rotate-secret responses."""

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.api.automations import _automation, _body
from automations.graph import entrypoints as rules
from automations.models import ActiveStatus, Entrypoint, EntrypointKind
from contacts.models import Channel, SocialAccount
from relay.core.errors import ApiError
from relay.core.openapi import NO_BODY, error_responses, paginated
from relay.core.pagination import paginate
from relay.core.serializers import (
    OrgRelatedField,
    StrictSerializer,
    locked_or_404,
    org_object_or_404,
    require_empty_body,
)

WEBHOOK_PATH = "/v1/webhooks/automations/{slug}"


class EntrypointSerializer(serializers.ModelSerializer):
    automation_id = serializers.CharField(read_only=True)
    social_account_id = serializers.CharField(read_only=True, allow_null=True)
    webhook_url = serializers.SerializerMethodField()

    class Meta:
        model = Entrypoint
        fields = ["id", "automation_id", "channel", "kind", "status", "social_account_id", "config", "filters",
                  "allow_reentry", "reentry_cooldown_min", "priority", "specificity", "webhook_slug", "webhook_url",
                  "created_at", "updated_at"]
        read_only_fields = fields

    def get_webhook_url(self, obj) -> str | None:
        return WEBHOOK_PATH.format(slug=obj.webhook_slug) if obj.webhook_slug else None


class EntrypointWriteSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=EntrypointKind.choices)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    status = serializers.ChoiceField(choices=ActiveStatus.choices, required=False)
    social_account_id = OrgRelatedField(model=SocialAccount, source="social_account", required=False,
                                        allow_null=True)
    config = serializers.DictField(required=False)
    filters = serializers.DictField(required=False)
    allow_reentry = serializers.BooleanField(required=False)
    reentry_cooldown_min = serializers.IntegerField(required=False, min_value=0, max_value=60 * 24 * 365)
    priority = serializers.IntegerField(required=False, min_value=-1_000_000, max_value=1_000_000)

    def validate(self, attrs):
        """Check the merged result (instance + changes): channel, account and the kind's config rules."""
        instance: Entrypoint = self.context["entrypoint"]
        automation = instance.automation
        if self.partial and "kind" in attrs and attrs["kind"] != instance.kind:
            raise serializers.ValidationError({"kind": ["cannot be changed; create a new entrypoint."]})
        if attrs.get("channel", automation.channel) != automation.channel:
            raise ApiError("channel_mismatch", f"This automation runs on {automation.channel}; an entrypoint's "
                           "channel must equal it.", details={"channel": [f"must be {automation.channel}"]})
        account = attrs.get("social_account", instance.social_account if self.partial else None)
        if account is not None and account.channel != automation.channel:
            raise ApiError("channel_mismatch", f"Social account {account.pk} is on {account.channel}, the "
                           f"automation on {automation.channel}.",
                           details={"social_account_id": [f"must be a {automation.channel} account"]})
        kind = attrs.get("kind", instance.kind)
        config = attrs.get("config", instance.config if self.partial else {})
        filters = attrs.get("filters", instance.filters if self.partial else {})
        status = attrs.get("status", instance.status if self.partial else ActiveStatus.ACTIVE)
        problems = rules.validate_config(kind, config, filters=filters, active=status == ActiveStatus.ACTIVE)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class EntrypointWithSecretSerializer(EntrypointSerializer):
    webhook_secret = serializers.CharField(required=False, help_text="webhook_inbound only, and only in this "
                                           "response: later reads never show it.")

    class Meta(EntrypointSerializer.Meta):
        fields = [*EntrypointSerializer.Meta.fields, "webhook_secret"]
        read_only_fields = fields


def _save(request, entrypoint: Entrypoint, *, create: bool):
    """Validate against `entrypoint` (an update passes the row locked by the caller) and write it;
    an update writes only the columns sent plus the derived ones."""
    serializer = EntrypointWriteSerializer(data=_body(request), partial=not create,
                                           context={"request": request, "entrypoint": entrypoint})
    serializer.is_valid(raise_exception=True)
    for name, value in serializer.validated_data.items():
        setattr(entrypoint, name, value)
    entrypoint.channel = entrypoint.automation.channel
    changed = None if create else [*serializer.validated_data, "channel"]
    with transaction.atomic():
        return rules.apply(entrypoint, create=create, changed=changed)


def _with_secret(entrypoint: Entrypoint, secret: str | None) -> dict:
    data = EntrypointSerializer(entrypoint).data
    if secret is not None:
        data["webhook_secret"] = secret  # shown once: later reads never include it
    return data


def _entrypoint(request, pk) -> Entrypoint:
    return org_object_or_404(Entrypoint, request.organization, pk,
                             queryset=Entrypoint.objects.select_related("automation"))


class AutomationEntrypointsView(APIView):
    serializer_class = EntrypointSerializer

    @paginated(EntrypointSerializer)
    def get(self, request, pk):
        automation = _automation(request, pk)
        return paginate(request, automation.entrypoints.all(), EntrypointSerializer)

    @extend_schema(request=EntrypointWriteSerializer, responses={201: EntrypointWithSecretSerializer}, examples=[
        OpenApiExample("keyword DM", request_only=True, value={
            "kind": "dm_received", "config": {"keywords": ["price"], "match_mode": "contains"}, "priority": 10}),
    ])
    def post(self, request, pk):
        automation = _automation(request, pk)
        entrypoint = Entrypoint(organization=request.organization, automation=automation, channel=automation.channel)
        secret = _save(request, entrypoint, create=True)
        return Response(_with_secret(entrypoint, secret), status=201)


class EntrypointDetailView(APIView):
    serializer_class = EntrypointSerializer

    def get(self, request, pk):
        return Response(EntrypointSerializer(_entrypoint(request, pk)).data)

    @extend_schema(request=EntrypointWriteSerializer, responses=EntrypointSerializer)
    def patch(self, request, pk):
        with transaction.atomic():
            entrypoint = locked_or_404(Entrypoint, request.organization, pk,
                                       queryset=Entrypoint.objects.select_related("automation"))
            _save(request, entrypoint, create=False)
        entrypoint.refresh_from_db()
        return Response(EntrypointSerializer(entrypoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        _entrypoint(request, pk).delete()
        return Response(status=204)


class EntrypointRotateSecretView(APIView):
    serializer_class = EntrypointSerializer

    @extend_schema(request=NO_BODY, responses={200: EntrypointWithSecretSerializer,
                                               **error_responses({422: ["not_a_webhook"]})})
    def post(self, request, pk):
        require_empty_body(request)
        entrypoint = _entrypoint(request, pk)
        if entrypoint.kind != EntrypointKind.WEBHOOK_INBOUND:
            raise ApiError("not_a_webhook", "Only webhook_inbound entrypoints have a secret.", status=422,
                           details={"kind": entrypoint.kind})
        secret = rules.rotate_secret(entrypoint)
        return Response(_with_secret(entrypoint, secret))
