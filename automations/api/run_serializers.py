"""Serializers for runs, step runs, and the enroll/simulate request bodies."""

from rest_framework import serializers

from automations.models import AutomationRun, StepRun
from relay.core.serializers import StrictSerializer


class RunSerializer(serializers.ModelSerializer):
    """Exactly the seed's run shape, plus social_account_id."""

    automation_id = serializers.CharField(read_only=True)
    organization_id = serializers.CharField(read_only=True)
    entrypoint_id = serializers.CharField(read_only=True, allow_null=True)
    binding_id = serializers.CharField(read_only=True, allow_null=True)
    contact_id = serializers.CharField(read_only=True)
    conversation_id = serializers.CharField(read_only=True, allow_null=True)
    social_account_id = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = AutomationRun
        fields = ["id", "automation_id", "organization_id", "entrypoint_id", "binding_id", "contact_id",
                  "conversation_id", "social_account_id", "status", "current_node_key", "current_port_key",
                  "context", "waiting_until", "waiting_for", "exit_reason", "started_at", "completed_at",
                  "updated_at"]
        read_only_fields = fields


class StepRunSerializer(serializers.ModelSerializer):
    run_id = serializers.CharField(read_only=True)
    automation_id = serializers.CharField(read_only=True)

    class Meta:
        model = StepRun
        fields = ["id", "run_id", "automation_id", "node_key", "node_kind", "entered_via_port_key",
                  "exited_via_port_key", "outcome", "duration_ms", "payload", "error", "executed_at"]
        read_only_fields = fields


class EnrollSerializer(StrictSerializer):
    contact_id = serializers.CharField(max_length=40)
    entrypoint_id = serializers.CharField(max_length=40, required=False, allow_null=True)
    context_overrides = serializers.DictField(required=False, default=dict, help_text="Seeds run.context.")


class SimulateSerializer(StrictSerializer):
    start_node_key = serializers.CharField(max_length=100, required=False, allow_null=True)
    test_context = serializers.DictField(required=False, default=dict, help_text=(
        "Seeds the run context; its `contact` {name, email, phone, tags, fields} describes the contact."))
    contact_id = serializers.CharField(max_length=40, required=False, allow_null=True,
                                       help_text="Simulate as this contact (read, never written).")
    branch_choices = serializers.DictField(child=serializers.CharField(max_length=150), required=False,
                                           default=dict, help_text="node key → the port to take there.")
    execute_side_effects = serializers.BooleanField(required=False, default=False)

    def validate_execute_side_effects(self, value):
        if value:
            raise serializers.ValidationError("Only false is supported: a simulation never has side effects.")
        return value


class SimulationStepSerializer(serializers.Serializer):
    node_key = serializers.CharField()
    node_kind = serializers.CharField()
    entered_via_port_key = serializers.CharField(allow_null=True)
    exited_via_port_key = serializers.CharField(allow_null=True)
    outcome = serializers.CharField()
    rendered = serializers.JSONField(allow_null=True)
    payload = serializers.DictField()


class SimulationSerializer(serializers.Serializer):
    steps = SimulationStepSerializer(many=True)
    ended_because = serializers.CharField()
    final_context = serializers.DictField()
