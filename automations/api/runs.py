"""Run endpoints: enroll, list/retrieve runs, step timeline, stop, simulate. Thin views: parse, call one
runtime function, serialize."""

from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.api.run_serializers import (
    EnrollSerializer,
    RunSerializer,
    SimulateSerializer,
    SimulationSerializer,
    StepRunSerializer,
)
from automations.models import Automation, AutomationRun, EnrollBlocked, Entrypoint, RunStatus, StepRun
from automations.runtime.enrollment import MANUAL, enroll
from automations.runtime.runs import RunConflict, stop_run
from automations.runtime.simulator import SimulationError, simulate
from contacts.models import Contact
from relay.core.errors import ApiError
from relay.core.openapi import NO_BODY, error_responses, paginated
from relay.core.pagination import choice_param, paginate
from relay.core.serializers import org_object_or_404, require_empty_body

ENROLL_REFUSALS = {
    EnrollBlocked.AUTOMATION_NOT_ACTIVE: (422, "The automation is not active."),
    EnrollBlocked.REENTRY_BLOCKED: (409, "The contact has a live run in this automation or is within its re-entry "
                                         "cooldown."),
}


def _datetime_param(request, name):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    value = parse_datetime(raw.replace(" ", "+"))
    if value is None:
        raise ApiError("validation_error", f"{name} must be an ISO-8601 timestamp.",
                       details={name: ["must be an ISO-8601 timestamp"]})
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


class AutomationRunsView(APIView):
    serializer_class = RunSerializer

    @paginated(RunSerializer, filters=[
        OpenApiParameter("status", str, enum=RunStatus.values),
        OpenApiParameter("contact_id", str),
        OpenApiParameter("started_after", OpenApiTypes.DATETIME, description="Runs started at or after."),
        OpenApiParameter("started_before", OpenApiTypes.DATETIME, description="Runs started before."),
    ])
    def get(self, request, pk):
        automation = org_object_or_404(Automation, request.organization, pk)
        runs = AutomationRun.objects.filter(automation=automation)
        status = choice_param(request, "status", RunStatus.values)
        if status:
            runs = runs.filter(status=status)
        if request.query_params.get("contact_id"):
            runs = runs.filter(contact_id=request.query_params["contact_id"])
        started_after = _datetime_param(request, "started_after")
        started_before = _datetime_param(request, "started_before")
        if started_after:
            runs = runs.filter(started_at__gte=started_after)
        if started_before:
            runs = runs.filter(started_at__lt=started_before)
        return paginate(request, runs, RunSerializer, time_field="started_at")


class AutomationEnrollView(APIView):
    serializer_class = RunSerializer

    @extend_schema(
        request=EnrollSerializer,
        responses={201: RunSerializer, **error_responses({409: [EnrollBlocked.REENTRY_BLOCKED],
                                                                  422: [EnrollBlocked.AUTOMATION_NOT_ACTIVE]})},
        examples=[OpenApiExample("manual", request_only=True, value={
            "contact_id": "ct_0123456789abcdefghij", "context_overrides": {"coupon": "SPRING"}})],
        description="Enroll a contact by hand. A paused contact's run is created and parked (waiting, "
                    "`external_event`) without executing.")
    def post(self, request, pk):
        automation = org_object_or_404(Automation, request.organization, pk)
        body = EnrollSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        contact = org_object_or_404(Contact, request.organization, body.validated_data["contact_id"])
        entrypoint = None
        if body.validated_data.get("entrypoint_id"):
            entrypoint = org_object_or_404(Entrypoint, request.organization, body.validated_data["entrypoint_id"],
                                           queryset=automation.entrypoints.all())
        result = enroll(automation, contact, entrypoint=entrypoint,
                        context=body.validated_data.get("context_overrides") or {}, source=MANUAL)
        if not result.ok:
            status, message = ENROLL_REFUSALS.get(result.blocked, (409, "The contact cannot be enrolled."))
            raise ApiError(result.blocked, message, status=status,
                           details={"automation_id": automation.pk, "contact_id": contact.pk})
        return Response(RunSerializer(result.run).data, status=201)


class AutomationSimulateView(APIView):
    serializer_class = SimulationSerializer

    @extend_schema(
        request=SimulateSerializer, responses=SimulationSerializer,
        examples=[OpenApiExample("take the large button", request_only=True, value={
            "test_context": {"plan": "pro"}, "branch_choices": {"ask_size": "button.large"}})],
        description="A dry run of the graph: writes nothing, sends nothing.")
    def post(self, request, pk):
        automation = org_object_or_404(Automation, request.organization, pk)
        body = SimulateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        contact_id = body.validated_data.get("contact_id")
        contact = org_object_or_404(Contact, request.organization, contact_id) if contact_id else None
        try:
            transcript = simulate(automation, start_node_key=body.validated_data.get("start_node_key"),
                                  test_context=body.validated_data.get("test_context"),
                                  branch_choices=body.validated_data.get("branch_choices"), contact=contact)
        except SimulationError as exc:
            raise ApiError(exc.code, str(exc), status=400, details=exc.details)
        return Response(transcript)


def _run(request, pk) -> AutomationRun:
    return org_object_or_404(AutomationRun, request.organization, pk)


class RunDetailView(APIView):
    serializer_class = RunSerializer

    def get(self, request, pk):
        return Response(RunSerializer(_run(request, pk)).data)


class RunStepsView(APIView):
    serializer_class = StepRunSerializer

    @paginated(StepRunSerializer, description=(
                       "The run's step timeline, oldest first. Step rows are append-only, so a node "
                       "that waits has two rows: the visit (`outcome` `waiting`, e.g. with the sent "
                       "`message_id`), then the resume (the port it left by, e.g. `button.large`, and "
                       "what resumed it: the reply, the job). A re-prompted input adds one row per "
                       "invalid reply; a run parked by a contact pause has a row with `payload.parked`."))
    def get(self, request, pk):
        run = _run(request, pk)
        return paginate(request, StepRun.objects.filter(run_id=run.pk), StepRunSerializer,
                        time_field="executed_at", ascending=True)


class RunStopView(APIView):
    serializer_class = RunSerializer

    @extend_schema(request=NO_BODY, responses={200: RunSerializer,
                                               **error_responses({409: ["conflict"], 422: ["invalid_state"]})})
    def post(self, request, pk):
        require_empty_body(request)
        run = _run(request, pk)
        try:
            stopped = stop_run(run)
        except RunConflict:
            raise ApiError("conflict", "The run changed while stopping it; try again.", status=409)
        if not stopped:
            raise ApiError("invalid_state", f"Only active or waiting runs can be stopped; this one is {run.status}.",
                           status=422, details={"status": run.status})
        return Response(RunSerializer(run).data)
