"""Serializer helpers shared by every API: strict bodies (unknown fields → 400 unknown_field)."""

from rest_framework import serializers


class StrictMixin:
    """Reject keys the serializer does not declare as writable, instead of silently dropping them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")] for name in unknown}
                )
        return super().to_internal_value(data)


class StrictSerializer(StrictMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictMixin, serializers.ModelSerializer):
    pass


class EmptyBodySerializer(StrictSerializer):
    """Declares no fields: every key of an action endpoint's body is an unknown field."""


def require_empty_body(request) -> None:
    """Action POSTs (activate, stop, rotate-secret …) take no body; reject fields rather than ignore them."""
    from relay.core.errors import ApiError

    data = request.data
    if not data:
        return
    if not isinstance(data, dict):
        raise ApiError("validation_error", "The body must be empty or a JSON object.",
                       details={"non_field_errors": ["expected an object"]})
    EmptyBodySerializer(data=dict(data)).is_valid(raise_exception=True)


def org_object_or_404(model, organization, pk, *, queryset=None):
    """Fetch by public id within the caller's organization; another org's id is a plain 404."""
    from relay.core.errors import ApiError

    qs = queryset if queryset is not None else model.objects.all()
    obj = qs.filter(organization=organization, pk=pk).first()
    if obj is None:
        raise ApiError("not_found", f"{model._meta.verbose_name.capitalize()} {pk} not found.", status=404)
    return obj


def locked_or_404(model, organization, pk, *, queryset=None):
    """Like org_object_or_404, but the row is locked (FOR UPDATE) until the caller's transaction ends:
    a PATCH applies its changes to the row as it is now, never to a snapshot a concurrent write has
    since changed, and a row deleted meanwhile answers 404 instead of being re-inserted."""
    qs = queryset if queryset is not None else model.objects.all()
    return org_object_or_404(model, organization, pk, queryset=qs.select_for_update(of=("self",)))


def save_changes(instance, changes: dict, *, also=()):
    """Write only the columns a PATCH sent (plus `also` and updated_at), then reload the row: columns it
    did not send keep whatever a concurrent writer stored, and the response shows the row as stored."""
    for name, value in changes.items():
        setattr(instance, name, value)
    fields = [*changes, *also]
    if any(field.name == "updated_at" for field in instance._meta.concrete_fields):
        fields.append("updated_at")
    instance.save(update_fields=list(dict.fromkeys(fields)))
    instance.refresh_from_db()
    return instance


class OrgRelatedField(serializers.RelatedField):
    """A writable reference by public id, restricted to the request's organization."""

    default_error_messages = {
        "does_not_exist": "No {model} with id {value} in this organization.",
        "incorrect_type": "Expected a string id, got {data_type}.",
    }

    def __init__(self, model=None, **kwargs):
        self.model = model
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", model.objects.all())
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        qs = super().get_queryset()
        organization = getattr(request, "organization", None) or self.context.get("organization")
        return qs.filter(organization=organization)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        obj = self.get_queryset().filter(pk=data).first()
        if obj is None:  # unknown, or another organization's: 404 either way, as for ids in the path
            from relay.core.errors import ApiError

            raise ApiError("not_found", self.error_messages["does_not_exist"].format(
                model=self.model._meta.verbose_name, value=data), status=404,
                details={"field": self.field_name, "id": data})
        return obj

    def to_representation(self, value):
        return value.pk
