"""Contact automation controls API: list pause rows, pause (create/update a scope), resume (delete a scope).

Thin views: parse, resolve ids in the caller's organization (others → 404), call
`automations.runtime.controls`, serialize."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.models import Automation
from automations.runtime import controls
from contacts.models import Contact, ContactAutomationControl
from relay.core.openapi import error_responses, paginated
from relay.core.pagination import paginate
from relay.core.serializers import StrictSerializer, org_object_or_404


class ControlSerializer(serializers.ModelSerializer):
    contact_id = serializers.CharField(read_only=True)
    automation_id = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = ContactAutomationControl
        fields = ["id", "contact_id", "automation_id", "pause_reason", "paused_until", "created_at", "updated_at"]


class PauseBodySerializer(StrictSerializer):
    automation_id = serializers.CharField(required=False, allow_null=True, max_length=40,
                                          help_text="Omit (or null) for a global pause across all automations.")
    pause_reason = serializers.CharField(max_length=200)
    paused_until = serializers.DateTimeField(required=False, allow_null=True,
                                             help_text="Must be in the future; null = until resumed.")


class ResumeBodySerializer(StrictSerializer):
    automation_id = serializers.CharField(required=False, allow_null=True, max_length=40)


class ResumeResponseSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()
    control = ControlSerializer(allow_null=True)
    resumed_run_ids = serializers.ListField(child=serializers.CharField())


def _scope(request, pk, body):
    contact = org_object_or_404(Contact, request.organization, pk)
    automation_id = body.get("automation_id")
    automation = org_object_or_404(Automation, request.organization, automation_id) if automation_id else None
    return contact, automation


class ContactControlsView(APIView):
    serializer_class = ControlSerializer

    @paginated(ControlSerializer)
    def get(self, request, pk):
        contact = org_object_or_404(Contact, request.organization, pk)
        return paginate(request, controls.controls_for(contact), ControlSerializer)


class ContactPauseView(APIView):
    serializer_class = PauseBodySerializer

    @extend_schema(
        request=PauseBodySerializer,
        responses={201: ControlSerializer, 200: ControlSerializer, **error_responses({422: ["invalid_paused_until"]})},
        examples=[OpenApiExample("one automation for a day", request_only=True, value={
            "automation_id": "auto_0123456789abcdefghij", "pause_reason": "talking to support",
            "paused_until": "2030-01-01T12:00:00Z"})],
        description="201 creates the pause for this scope (one automation, or all when `automation_id` is "
                    "omitted); 200 updates the existing one.")
    def post(self, request, pk):
        body = PauseBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        contact, automation = _scope(request, pk, body.validated_data)
        control, created = controls.pause_contact(
            contact, automation=automation, pause_reason=body.validated_data["pause_reason"],
            paused_until=body.validated_data.get("paused_until"),
        )
        return Response(ControlSerializer(control).data, status=201 if created else 200)


class ContactResumeView(APIView):
    serializer_class = ResumeBodySerializer

    @extend_schema(request=ResumeBodySerializer, responses=ResumeResponseSerializer,
                   description="Deletes the pause for this scope and resumes the runs it had parked.")
    def post(self, request, pk):
        body = ResumeBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        contact, automation = _scope(request, pk, body.validated_data)
        result = controls.resume_contact(contact, automation=automation)
        return Response(ResumeResponseSerializer({
            "deleted": result.deleted is not None, "control": result.deleted,
            "resumed_run_ids": result.resumed_run_ids,
        }).data)
