"""Insights endpoints: one response shape for an automation, an entrypoint, a binding and the
organization's roll-up. Thin views: parse the period, pick the scope, call `insights.queries`."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.insights import queries
from automations.insights.queries import Scope, ScopeKind
from automations.models import Automation, Binding, Entrypoint, RunStatus, StepOutcome
from relay.core.openapi import RelayAutoSchema, error_responses
from relay.core.serializers import org_object_or_404


class InsightsSeriesSerializer(serializers.Serializer):
    bucket_start = serializers.DateTimeField()
    started = serializers.IntegerField()
    completed = serializers.IntegerField()
    exited = serializers.IntegerField()
    failed = serializers.IntegerField()


def _counts_serializer(name: str, keys) -> type[serializers.Serializer]:
    """A fixed-key {key: count} object for the schema (every key always present)."""
    return type(name, (serializers.Serializer,), {key: serializers.IntegerField() for key in keys})


NodeOutcomesSerializer = _counts_serializer("NodeOutcomesSerializer", StepOutcome.values)
RunTotalsSerializer = _counts_serializer("RunTotalsSerializer", RunStatus.values)


class InsightsNodeSerializer(serializers.Serializer):
    automation_id = serializers.CharField()
    node_key = serializers.CharField()
    node_kind = serializers.CharField()
    visits = serializers.IntegerField(help_text="Distinct runs that reached the node in the period.")
    outcomes = NodeOutcomesSerializer(help_text="Step rows by outcome.")
    exits_by_port = serializers.DictField(child=serializers.IntegerField(), help_text="Step rows by exit port.")
    median_duration_ms = serializers.IntegerField(allow_null=True)


# Built with type(): "from" is a Python keyword.
InsightsSerializer = type("InsightsSerializer", (serializers.Serializer,), {
    "period": serializers.ChoiceField(choices=queries.PERIODS),
    "from": serializers.DateTimeField(),
    "to": serializers.DateTimeField(),
    "totals": RunTotalsSerializer(help_text="Runs started in the period, by current status."),
    "exit_reasons": serializers.DictField(child=serializers.IntegerField(),
                                          help_text="Finished runs started in the period, by exit reason."),
    "series": InsightsSeriesSerializer(many=True, help_text=(
        "Hour buckets for 24h, days otherwise: runs started in the bucket and how many of them have "
        "completed, exited or failed by now.")),
    "nodes": InsightsNodeSerializer(many=True),
})

PERIOD_PARAMETERS = [
    OpenApiParameter("period", str, enum=queries.PERIODS, description="Default 7d."),
    OpenApiParameter("from", str, description="ISO 8601; with period=custom (at most 366 days before to)."),
    OpenApiParameter("to", str, description="ISO 8601; with period=custom."),
]
ERRORS = ("400: invalid_period, invalid_timestamp, invalid_range (custom without from/to, from not before to, "
          "span over 366 days, from/to with a preset period). 404: not_found.")


class InsightsSchema(RelayAutoSchema):
    """One view class serves four routes: each gets its own operationId."""

    def get_operation_id(self):
        return f"{self.view.operation_name}_insights"


class InsightsView(APIView):
    serializer_class = InsightsSerializer
    schema = InsightsSchema()
    model = None  # None: the organization's roll-up
    operation_name = "organization"

    def scope(self, request, pk) -> tuple[Scope, dict | None]:
        if self.model is None:
            return Scope(ScopeKind.ORGANIZATION, request.organization.pk), None
        obj = org_object_or_404(self.model, request.organization, pk,
                                queryset=self.model.objects.select_related(*(() if self.model is Automation
                                                                             else ("automation",))))
        automation = obj if isinstance(obj, Automation) else obj.automation
        kind = {Automation: ScopeKind.AUTOMATION, Entrypoint: ScopeKind.ENTRYPOINT, Binding: ScopeKind.BINDING}
        return Scope(kind[self.model], obj.pk, automation.pk), automation.graph

    @extend_schema(parameters=PERIOD_PARAMETERS, description=ERRORS, responses={
        200: InsightsSerializer, **error_responses({400: ["invalid_period", "invalid_timestamp", "invalid_range"]})})
    def get(self, request, pk=None):
        window = queries.parse_window(request.query_params)
        scope, graph = self.scope(request, pk)
        return Response(queries.insights(scope, window, graph))
