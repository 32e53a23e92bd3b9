"""Request bodies from outside: size-capped while read, then parsed, then checked for what PostgreSQL's
jsonb and the runtime cannot hold — every refusal a 4xx JSON error, never a 5xx.

- over the cap (`DATA_UPLOAD_MAX_MEMORY_SIZE` for the API, `RELAY_WEBHOOK_MAX_BODY_BYTES` for signed
  webhooks) → 413 `payload_too_large`, judged on Content-Length first and enforced while reading;
- not JSON → 400 `malformed_json`;
- nested deeper than `MAX_JSON_DEPTH` → 400 `json_too_deep`;
- a NUL (U+0000) or an unpaired surrogate in any string, key or value → 400 `validation_error` whose
  details name the field (`graph.nodes[0].config.text`).
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.parsers import BaseParser

from relay.core.errors import ApiError

MAX_JSON_DEPTH = 64  # objects and arrays inside each other; documented in the README
READ_CHUNK_BYTES = 64 * 1024


def too_large(limit: int) -> ApiError:
    return ApiError("payload_too_large", f"The request body is larger than {limit} bytes.", status=413,
                    details={"max_bytes": limit})


def declared_length(meta) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return 0


def read_capped(stream, limit: int, declared: int = 0) -> bytes:
    """Read the whole body, refusing (413) before reading when Content-Length says it is over `limit`
    and while reading when the stream turns out longer; never holds more than `limit` + one chunk."""
    if declared > limit:
        raise too_large(limit)
    if stream is None:
        return b""
    chunks, size = [], 0
    while True:
        chunk = stream.read(READ_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)


def read_body(request, limit: int) -> bytes:
    """A view's raw request body under `limit` (Content-Length checked first, then what is really read)."""
    return read_capped(request, limit, declared_length(request.META))


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate (\ud800) cannot be stored or sent anywhere
        return True
    return False


def printable(text: str) -> str:
    """`text` with NUL and unpaired surrogates spelled as escapes, so an error message can carry it."""
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()


def _path(parent: str, key) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    key = printable(str(key))
    return f"{parent}.{key}" if parent else key


def check_document(document, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ApiError unless `document` is at most `max_depth` levels deep and all its strings (keys
    included) are storable. Iterative: a hostile document cannot exhaust the stack."""
    stack = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= max_depth:
                raise ApiError("json_too_deep", f"JSON nested deeper than {max_depth} levels is not accepted.",
                               details={path or "body": [f"nested deeper than {max_depth} levels."]})
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                child = _path(path, key)
                if isinstance(key, str) and _bad_text(key):
                    raise _bad_characters(child)
                stack.append((item, child, depth + 1))
        elif isinstance(value, str) and _bad_text(value):
            raise _bad_characters(path or "body")


def _bad_characters(path: str) -> ApiError:
    return ApiError("validation_error", "The request body is invalid; see details for each field.",
                    details={path: ["must not contain NUL (\\u0000) or unpaired surrogate (\\ud800-\\udfff) "
                                    "characters."]})


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH):
    """Parse `raw` (UTF-8 JSON; NaN and Infinity refused) and `check_document` it; ApiError (400) when it
    is not acceptable."""
    try:
        document = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise ApiError("json_too_deep", f"JSON nested deeper than {max_depth} levels is not accepted.",
                       details={"body": [f"nested deeper than {max_depth} levels."]})
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError("malformed_json", f"The request body is not valid JSON ({exc}).")
    check_document(document, max_depth)
    return document


class JSONParser(BaseParser):
    """The API's JSON parser: capped at DATA_UPLOAD_MAX_MEMORY_SIZE, then `parse_json`."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        meta = request.META if request is not None else {}
        raw = read_capped(stream, settings.DATA_UPLOAD_MAX_MEMORY_SIZE, declared_length(meta))
        return parse_json(raw)
