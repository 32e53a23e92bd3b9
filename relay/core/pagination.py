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


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError
        return values
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ApiError("invalid_cursor", "The cursor is malformed or expired.", details={"cursor": ["invalid"]})


def paginate(request, queryset, serializer_class, *, time_field: str = "created_at", ascending=False,
             serializer_context: dict | None = None) -> Response:
    """Keyset pagination on (time_field, id): stable under inserts, O(limit) per page."""
    limit = parse_limit(request)
    direction = "" if ascending else "-"
    queryset = queryset.order_by(f"{direction}{time_field}", f"{direction}id")
    cursor = request.query_params.get("cursor")
    if cursor:
        stamp, last_id = _decode(cursor)
        try:
            stamp_value = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
        except ValueError:
            raise ApiError("invalid_cursor", "The cursor is malformed or expired.", details={"cursor": ["invalid"]})
        op = "gt" if ascending else "lt"
        queryset = queryset.filter(
            Q(**{f"{time_field}__{op}": stamp_value}) | Q(**{time_field: stamp_value, f"id__{op}": last_id})
        )
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
