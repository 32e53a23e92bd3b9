"""The OpenAPI document (/v1/schema) says what the API really does: the bearer key, the error envelope on
every 4xx an operation can answer, paginated lists as {data, next_cursor, has_more}, strict request bodies.

For a view method:
    @paginated(ItemSerializer, filters=[OpenApiParameter("status", str, enum=…)])   a cursor-paginated list
    @extend_schema(request=…, responses={201: …, **error_responses({409: ["binding_exists"]})})
    @extend_schema(request=NO_BODY, …)                                             an action POST without body
400 (bad input), 401 (API key views), 404 (paths with an id), 413 and 415 (operations with a body) and 503
(database out of reach, with Retry-After) are added to every operation by RelayAutoSchema; name the others
(409, 422 …) with error_responses(). A view with its own schema class extends RelayAutoSchema.
"""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers

from relay.core.pagination import CursorPageSchema
from relay.core.serializers import StrictMixin

# The codes each status carries across the API (an operation adds its own with error_responses()).
COMMON_ERROR_CODES: dict[int, list[str]] = {
    400: ["validation_error", "unknown_field", "malformed_json", "json_too_deep"],
    401: ["unauthenticated", "invalid_api_key"],
    404: ["not_found"],
    413: ["payload_too_large"],
    415: ["unsupported_media_type"],
    503: ["service_unavailable"],
}

STATUS_TEXT = {
    400: "The request is invalid; `details` names the fields.",
    401: "No API key, or a malformed, revoked or unknown one.",
    404: "No such object in this organization.",
    409: "Conflict with the current state.",
    413: "The body is larger than the server accepts.",
    415: "The body is not application/json.",
    422: "Valid, but not allowed in the object's current state.",
    503: "Temporarily unavailable; retry after the Retry-After header's seconds.",
}

BACKTICKED_CODE = re.compile(r"`([a-z][a-z0-9_]*)`")

# A body that must be absent or {} (action POSTs): any key is an unknown field.
NO_BODY = {"application/json": {"type": "object", "additionalProperties": False, "maxProperties": 0,
                                "description": "No body, or an empty object."}}


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. `validation_error`.")
    message = serializers.CharField(help_text="A human sentence.")
    details = serializers.DictField(help_text="Per-field messages or the values involved; may be empty.")


class ErrorSerializer(serializers.Serializer):
    """The one error envelope: {"error": {"code", "message", "details"}}."""

    error = ErrorBodySerializer()


def error_response(status: int, codes: list[str] | tuple[str, ...] = ()) -> OpenApiResponse:
    """The error envelope for one status, with an example per code it can carry."""
    examples = [
        OpenApiExample(code, value={"error": {"code": code, "message": STATUS_TEXT.get(status, "Request failed."),
                                              "details": {}}}, response_only=True, status_codes=[str(status)])
        for code in codes
    ]
    return OpenApiResponse(ErrorSerializer, description=STATUS_TEXT.get(status, "Request failed."),
                           examples=examples)


def error_responses(statuses: dict[int, list[str]]) -> dict:
    """{status: error_response(status, codes)} for extend_schema(responses=…): the 4xx an operation adds."""
    return {status: error_response(status, codes) for status, codes in statuses.items()}


def paginated(item_serializer, *, filters=(), **schema):
    """Mark a GET as a cursor-paginated list of `item_serializer` ({data, next_cursor, has_more}, ?limit=,
    ?cursor=); `filters` are its other query parameters."""

    extra_responses = schema.pop("responses", {})

    def decorate(method):
        method.relay_paginated = True
        return extend_schema(responses={200: item_serializer, **extra_responses}, parameters=list(filters),
                             **schema)(method)

    return decorate


class RelayAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, taught Relay's conventions (see the module docstring)."""

    def _view_method(self):
        return getattr(self.view, self.method.lower(), None)

    def _is_list_view(self, serializer=None) -> bool:
        return self.method == "GET" and getattr(self._view_method(), "relay_paginated", False)

    def _get_paginator(self):
        return CursorPageSchema() if self._is_list_view() else None

    def _has_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH")

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        statuses = {400, 503}  # 503: the database is out of reach (with Retry-After)
        if self.view.get_authenticators():
            statuses.add(401)
        if "{" in self.path:
            statuses.add(404)
        if self._has_body():
            statuses.add(413)
            # A view that reads its raw bytes itself (`raw_body = True`) or accepts any type never answers 415.
            raw = getattr(self.view, "raw_body", False) or any(p.media_type == "*/*" for p in self.view.get_parsers())
            if not raw:
                statuses.add(415)
        for status in sorted(statuses):
            codes = list(COMMON_ERROR_CODES[status])
            if status == 400 and self._is_list_view():
                codes += ["invalid_limit", "invalid_cursor"]
            responses.setdefault(str(status), self._get_response_for_code(error_response(status, codes), str(status)))
        responses["503"].setdefault("headers", {})["Retry-After"] = {
            "schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
        for status, response in responses.items():
            if status.startswith("4") and "content" not in response:
                # An error documented by description only (OpenApiResponse(description="`code`: why")) still
                # answers the envelope: give it the schema, with the codes its description names as examples.
                codes = BACKTICKED_CODE.findall(response.get("description", ""))
                described = self._get_response_for_code(error_response(int(status), codes), status)
                responses[status] = {**described, "description": response.get("description") or described[
                    "description"]}
        return responses

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictMixin):
            schema["additionalProperties"] = False  # unknown keys are answered 400 unknown_field
        return schema


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "relay.core.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An organization's API key (`manage.py create_api_key --org NAME`), sent as "
                               "`Authorization: Bearer <key>`."}


class OrgRelatedFieldSchema(OpenApiSerializerFieldExtension):
    """A reference by public id (`acc_…`, `ct_…`) to an object of the caller's organization."""

    target_class = "relay.core.serializers.OrgRelatedField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = build_basic_type(OpenApiTypes.STR)
        model = self.target.model
        prefix = getattr(model._meta.pk, "prefix", None)
        schema["description"] = f"Id of a {model._meta.verbose_name} in your organization."
        if prefix:
            schema["example"] = f"{prefix}_0123456789abcdefghij"
        if self.target.allow_null:
            schema["nullable"] = True
        return schema
