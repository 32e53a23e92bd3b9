"""Reading a request body from outside with a size cap enforced while reading, never after.

`request.body` would buffer whatever the client sends (up to Django's upload limit) before anyone can
look at it; an endpoint open to the internet reads at most `limit + 1` bytes and answers 413."""

from relay.core.errors import ApiError

CHUNK = 64 * 1024


def read_capped(request, limit: int) -> bytes:
    """The raw body (at most `limit` bytes) of a Django (or DRF) request, or ApiError 413
    `payload_too_large`. A declared Content-Length over the cap is refused before reading anything."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    while size <= limit:
        chunk = request.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise _too_large(limit)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError("payload_too_large", f"The body is larger than {limit} bytes.", status=413,
                    details={"max_bytes": limit})
