"""Automations API: CRUD, PUT graph (validated, auto-pause), activate / pause / archive."""

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.graph import service
from automations.models import Automation, AutomationStatus
from contacts.models import Channel
from relay.core.errors import ApiError
from relay.core.openapi import NO_BODY, error_responses, paginated
from relay.core.pagination import choice_param, paginate
from relay.core.serializers import (
    StrictSerializer,
    locked_or_404,
    org_object_or_404,
    require_empty_body,
    save_changes,
)

MAX_NODES = 500
MAX_EDGES = 2000


class NodeSerializer(StrictSerializer):
    key = serializers.CharField(max_length=100)
    kind = serializers.CharField(max_length=30)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)
    canvas_x = serializers.FloatField(required=False, allow_null=True)
    canvas_y = serializers.FloatField(required=False, allow_null=True)
    config = serializers.DictField(required=False, allow_null=True)
    ports = serializers.ListField(required=False, help_text="Ignored: ports are always derived by the server.")
    ui_state = serializers.DictField(required=False, allow_null=True)


class EdgeSerializer(StrictSerializer):
    from_node = serializers.CharField(max_length=100)
    from_port = serializers.CharField(max_length=150)
    to_node = serializers.CharField(max_length=100)
    to_port = serializers.CharField(max_length=20, default="in")


class GraphSerializer(StrictSerializer):
    nodes = NodeSerializer(many=True, max_length=MAX_NODES)
    edges = EdgeSerializer(many=True, max_length=MAX_EDGES, required=False, default=list)
    root_node_key = serializers.CharField(max_length=100, allow_null=True, allow_blank=True, required=False,
                                          default=None)


class AutomationSerializer(serializers.ModelSerializer):
    """The full representation: graph with derived ports, its errors and warnings, counters."""

    graph_valid = serializers.SerializerMethodField()

    class Meta:
        model = Automation
        fields = ["id", "name", "channel", "status", "graph", "graph_valid", "graph_errors", "graph_warnings",
                  "total_enrolled", "total_completed", "total_exited", "total_failed", "created_at", "updated_at"]
        read_only_fields = fields

    def get_graph_valid(self, obj) -> bool:
        return not obj.graph_errors


class AutomationListItemSerializer(AutomationSerializer):
    """List rows leave the graph out (it can be large); fetch one automation for it."""

    node_count = serializers.SerializerMethodField()

    class Meta(AutomationSerializer.Meta):
        fields = [f for f in AutomationSerializer.Meta.fields if f != "graph"] + ["node_count"]
        read_only_fields = fields

    def get_node_count(self, obj) -> int:
        nodes = (obj.graph or {}).get("nodes")
        return len(nodes) if isinstance(nodes, list) else 0


class AutomationCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    channel = serializers.ChoiceField(choices=Channel.choices)
    graph = GraphSerializer(required=False)


class AutomationUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)


class GraphStateSerializer(serializers.Serializer):
    graph = serializers.JSONField(help_text="As stored: nodes (with derived ports), edges, root_node_key.")
    graph_errors = serializers.JSONField()
    graph_warnings = serializers.JSONField()


class SavedGraphSerializer(AutomationSerializer):
    auto_paused = serializers.BooleanField(help_text="True when an invalid graph moved an active automation to "
                                                     "paused.")

    class Meta(AutomationSerializer.Meta):
        fields = [*AutomationSerializer.Meta.fields, "auto_paused"]
        read_only_fields = fields


GRAPH_EXAMPLE = OpenApiExample("welcome", request_only=True, value={
    "root_node_key": "hello",
    "nodes": [{"key": "hello", "kind": "message",
               "config": {"blocks": [{"type": "text", "text": "Hi {{contact.name|there}}!"}]}},
              {"key": "done", "kind": "end", "config": {}}],
    "edges": [{"from_node": "hello", "from_port": "next", "to_node": "done", "to_port": "in"}],
})
INVALID_STATE = error_responses({422: ["invalid_state"]})


def _body(request):
    if not isinstance(request.data, dict):
        raise ApiError("validation_error", "The body must be a JSON object.",
                       details={"non_field_errors": ["expected an object"]})
    return request.data


def _automation(request, pk) -> Automation:
    return org_object_or_404(Automation, request.organization, pk)


class AutomationListView(APIView):
    serializer_class = AutomationListItemSerializer

    @paginated(AutomationListItemSerializer, filters=[
        OpenApiParameter("status", str, enum=AutomationStatus.values),
        OpenApiParameter("channel", str, enum=Channel.values),
    ])
    def get(self, request):
        queryset = Automation.objects.filter(organization=request.organization)
        status = choice_param(request, "status", AutomationStatus.values)
        if status:
            queryset = queryset.filter(status=status)
        channel = choice_param(request, "channel", Channel.values)
        if channel:
            queryset = queryset.filter(channel=channel)
        return paginate(request, queryset, AutomationListItemSerializer)

    @extend_schema(request=AutomationCreateSerializer, responses={201: AutomationSerializer}, examples=[
        OpenApiExample("with a graph", request_only=True,
                       value={"name": "Welcome", "channel": "instagram", "graph": GRAPH_EXAMPLE.value}),
    ])
    def post(self, request):
        serializer = AutomationCreateSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        automation = service.create_automation(request.organization, name=data["name"], channel=data["channel"],
                                               graph=data.get("graph"))
        return Response(AutomationSerializer(automation).data, status=201)


class AutomationDetailView(APIView):
    serializer_class = AutomationSerializer

    def get(self, request, pk):
        return Response(AutomationSerializer(_automation(request, pk)).data)

    @extend_schema(request=AutomationUpdateSerializer, responses=AutomationSerializer)
    def patch(self, request, pk):
        with transaction.atomic():
            automation = locked_or_404(Automation, request.organization, pk)
            serializer = AutomationUpdateSerializer(data=_body(request), partial=True)
            serializer.is_valid(raise_exception=True)
            save_changes(automation, serializer.validated_data)
        return Response(AutomationSerializer(automation).data)

    @extend_schema(responses={204: None, **INVALID_STATE},
                   description="Only a draft, paused or archived automation can be deleted.")
    def delete(self, request, pk):
        service.delete_automation(_automation(request, pk))
        return Response(status=204)


class AutomationGraphView(APIView):
    serializer_class = GraphSerializer

    @extend_schema(responses=GraphStateSerializer)
    def get(self, request, pk):
        automation = _automation(request, pk)
        return Response({"graph": automation.graph, "graph_errors": automation.graph_errors,
                         "graph_warnings": automation.graph_warnings})

    @extend_schema(request=GraphSerializer, responses={200: SavedGraphSerializer, **INVALID_STATE},
                   examples=[GRAPH_EXAMPLE],
                   description="Validated on save: an invalid graph is stored with its `graph_errors`, and an "
                               "active automation is moved to paused (`auto_paused`).")
    def put(self, request, pk):
        automation = _automation(request, pk)
        serializer = GraphSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        auto_paused = service.save_graph(automation, serializer.validated_data)
        return Response({**AutomationSerializer(automation).data, "auto_paused": auto_paused})


class AutomationActionView(APIView):
    """POST /automations/{id}/activate | pause | archive."""

    serializer_class = AutomationSerializer
    action = None  # set by as_view(action=...)
    actions = {"activate": service.activate, "pause": service.pause, "archive": service.archive}

    @extend_schema(request=NO_BODY, responses={200: AutomationSerializer,
                                               **error_responses({422: ["invalid_state", "graph_invalid"]})})
    def post(self, request, pk):
        require_empty_body(request)
        automation = self.actions[self.action](_automation(request, pk))
        return Response(AutomationSerializer(automation).data)
