"""Bindings API: the fallback automation per social account (`default_reply`, `welcome_message`);
one per (account, type) → 409 binding_exists."""

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.api.automations import _body
from automations.models import ActiveStatus, Automation, Binding, BindingType
from contacts.models import SocialAccount
from relay.core.errors import ApiError
from relay.core.openapi import error_responses, paginated
from relay.core.pagination import choice_param, paginate
from relay.core.serializers import OrgRelatedField, StrictSerializer, locked_or_404, org_object_or_404, save_changes


class BindingSerializer(serializers.ModelSerializer):
    social_account_id = serializers.CharField(read_only=True)
    automation_id = serializers.CharField(read_only=True)

    class Meta:
        model = Binding
        fields = ["id", "social_account_id", "binding_type", "automation_id", "config", "status", "created_at",
                  "updated_at"]
        read_only_fields = fields


class BindingWriteSerializer(StrictSerializer):
    social_account_id = OrgRelatedField(model=SocialAccount, source="social_account")
    binding_type = serializers.ChoiceField(choices=BindingType.choices)
    automation_id = OrgRelatedField(model=Automation, source="automation")
    config = serializers.DictField(required=False)
    status = serializers.ChoiceField(choices=ActiveStatus.choices, required=False)

    def validate(self, attrs):
        instance = self.context.get("binding")
        account = attrs.get("social_account", getattr(instance, "social_account", None))
        automation = attrs.get("automation", getattr(instance, "automation", None))
        if account.channel != automation.channel:
            raise ApiError("channel_mismatch", f"Automation {automation.pk} runs on {automation.channel}, the "
                           f"social account is on {account.channel}.",
                           details={"automation_id": [f"must be a {account.channel} automation"]})
        return attrs


def _conflict(account_id, binding_type):
    return ApiError("binding_exists", f"Social account {account_id} already has a {binding_type} binding.",
                    status=409, details={"social_account_id": [account_id], "binding_type": [binding_type]})


def _save(binding: Binding, *, create: bool, changes: dict | None = None) -> Binding:
    """Insert `binding` (create) or write `changes` to it (an update), refusing a second binding of the
    same type on the account."""
    changes = changes or {}
    account = changes["social_account"].pk if "social_account" in changes else binding.social_account_id
    binding_type = changes.get("binding_type", binding.binding_type)
    clash = Binding.objects.filter(social_account_id=account, binding_type=binding_type)
    if not create:
        clash = clash.exclude(pk=binding.pk)
    if clash.exists():
        raise _conflict(account, binding_type)
    try:
        with transaction.atomic():
            if create:
                binding.save(force_insert=True)
            else:
                save_changes(binding, changes)
    except IntegrityError:  # a concurrent request took the slot between the check and the insert
        raise _conflict(account, binding_type)
    return binding


def _binding(request, pk) -> Binding:
    return org_object_or_404(Binding, request.organization, pk)


# A referenced account or automation that is not the caller's is a 404, a second binding of a type a 409.
WRITE_ERRORS = error_responses({404: ["not_found"], 409: ["binding_exists"]})


class BindingListView(APIView):
    serializer_class = BindingSerializer

    @paginated(BindingSerializer, filters=[
        OpenApiParameter("social_account_id", str), OpenApiParameter("automation_id", str),
        OpenApiParameter("binding_type", str, enum=BindingType.values),
        OpenApiParameter("status", str, enum=ActiveStatus.values),
    ])
    def get(self, request):
        queryset = Binding.objects.filter(organization=request.organization)
        for param in ("social_account_id", "automation_id"):
            if request.query_params.get(param):
                queryset = queryset.filter(**{param: request.query_params[param]})
        for param, choices in (("binding_type", BindingType.values), ("status", ActiveStatus.values)):
            value = choice_param(request, param, choices)
            if value:
                queryset = queryset.filter(**{param: value})
        return paginate(request, queryset, BindingSerializer)

    @extend_schema(request=BindingWriteSerializer, responses={201: BindingSerializer, **WRITE_ERRORS}, examples=[
        OpenApiExample("default reply", request_only=True, value={
            "social_account_id": "acc_0123456789abcdefghij", "binding_type": "default_reply",
            "automation_id": "auto_0123456789abcdefghij"}),
    ])
    def post(self, request):
        serializer = BindingWriteSerializer(data=_body(request), context={"request": request})
        serializer.is_valid(raise_exception=True)
        binding = _save(Binding(organization=request.organization, **serializer.validated_data), create=True)
        return Response(BindingSerializer(binding).data, status=201)


class BindingDetailView(APIView):
    serializer_class = BindingSerializer

    def get(self, request, pk):
        return Response(BindingSerializer(_binding(request, pk)).data)

    @extend_schema(request=BindingWriteSerializer, responses={200: BindingSerializer, **WRITE_ERRORS})
    def patch(self, request, pk):
        with transaction.atomic():
            binding = locked_or_404(Binding, request.organization, pk)
            serializer = BindingWriteSerializer(data=_body(request), partial=True,
                                                context={"request": request, "binding": binding})
            serializer.is_valid(raise_exception=True)
            binding = _save(binding, create=False, changes=serializer.validated_data)
        return Response(BindingSerializer(binding).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        _binding(request, pk).delete()
        return Response(status=204)
