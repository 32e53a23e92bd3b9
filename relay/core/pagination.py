"""Cursor pagination: ?limit= (default 50, max 200) & ?cursor=; newest first by (created_at, id)."""

import base64
import json
from datetime import datetime

from django.db.models import Q
from rest_framework.response import Response

from relay.core.errors import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def parse_limit(request) -> int:
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError("invalid_limit", f"limit must be an integer between 1 and {MAX_LIMIT}.",
                       details={"limit": [f"must be 1..{MAX_LIMIT}"]})
    return limit


def choice_param(request, name: str, choices) -> str | None:
    """An enum list filter: absent → None, a known value → it, anything else → 400 validation_error
    (a typo must not look like an empty result)."""
    value = request.query_params.get(name)
    if not value:
        return None
    allowed = list(choices)
    if value not in allowed:
        raise ApiError("validation_error", f"Unknown {name} filter.",
                       details={name: [f"must be one of {', '.join(allowed)}"]})
    return value


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _bad_cursor() -> ApiError:
    return ApiError("invalid_cursor", "The cursor is malformed or expired.", details={"cursor": ["invalid"]})


def _decode(cursor: str) -> tuple[datetime, str | int]:
    """Cursors are opaque but client-held: anything but [aware ISO timestamp, str|int id] is a 400."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError
        stamp, last_id = values
        if not isinstance(stamp, str) or isinstance(last_id, bool) or not isinstance(last_id, str | int):
            raise ValueError
        stamp_value = datetime.fromisoformat(stamp)
        if stamp_value.tzinfo is None:
            raise ValueError
        return stamp_value, last_id
    except (ValueError, TypeError, json.JSONDecodeError):
        raise _bad_cursor() from None


def paginate(request, queryset, serializer_class, *, time_field: str = "created_at", ascending=False,
             serializer_context: dict | None = None) -> Response:
    """Keyset pagination on (time_field, id): stable under inserts, O(limit) per page."""
    limit = parse_limit(request)
    direction = "" if ascending else "-"
    queryset = queryset.order_by(f"{direction}{time_field}", f"{direction}id")
    cursor = request.query_params.get("cursor")
    if cursor:
        stamp_value, last_id = _decode(cursor)
        op = "gt" if ascending else "lt"
        try:  # an id of the wrong type for this table (a string on bigint step-run ids)
            queryset = queryset.filter(
                Q(**{f"{time_field}__{op}": stamp_value}) | Q(**{time_field: stamp_value, f"id__{op}": last_id})
            )
        except (ValueError, TypeError):
            raise _bad_cursor() from None
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more:
        last = rows[-1]
        stamp = getattr(last, time_field)
        next_cursor = _encode([stamp.isoformat() if hasattr(stamp, "isoformat") else stamp, last.pk])
    data = serializer_class(rows, many=True, context=serializer_context or {"request": request}).data
    return Response({"data": data, "next_cursor": next_cursor, "has_more": has_more})


class CursorPageSchema:
    """How paginate() looks in the OpenAPI document (drf-spectacular asks a paginator for these two)."""

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {"name": "limit", "in": "query", "required": False,
             "description": f"Page size, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
            {"name": "cursor", "in": "query", "required": False,
             "description": "The `next_cursor` of the previous page.", "schema": {"type": "string"}},
        ]

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["data", "next_cursor", "has_more"],
            "properties": {
                "data": schema,
                "next_cursor": {"type": "string", "nullable": True,
                                "description": "Pass as ?cursor= for the next page; null on the last page."},
                "has_more": {"type": "boolean"},
            },
        }
