"""Request middleware: request id, log context and latency for every request; JSON errors under /v1 (a
NUL in the path or the query string, which PostgreSQL text cannot hold, is refused before any view sees
it; an unreachable database answers 503 with Retry-After)."""

import logging
import time

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation

from relay.core.errors import json_error, service_unavailable, unavailable
from relay.core.parsers import printable
from relay.observability import logs, metrics

logger = logging.getLogger(__name__)


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContextMiddleware:
    """Outermost: take the caller's X-Request-ID (when it is a plausible id) or make one, keep it in the
    log context for the request (tasks it enqueues carry it on), answer it in X-Request-ID, and time
    the request by route (the URL pattern, so the label set stays small)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = logs.valid_request_id(request.headers.get(logs.REQUEST_ID_HEADER)) or logs.new_request_id()
        request.request_id = request_id
        started = time.perf_counter()
        logs.clear()
        logs.REQUEST_ID.set(request_id)  # cleared when the response is closed (Django logs 4xx after us)
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.HTTP_REQUEST_DURATION.labels(method, route, str(response.status_code)).observe(
            time.perf_counter() - started)
        response[logs.REQUEST_ID_HEADER] = request_id
        return response


def _is_api(request) -> bool:
    return request.path.startswith("/v1/") or request.path == "/v1"


class JsonErrorsForApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_api(request):
            refused = _nul_characters(request)
            if refused is not None:
                return refused
        response = self.get_response(request)
        if _is_api(request) and response.status_code >= 400 and not _is_json(response):
            if response.status_code == 404:
                return json_error("not_found", "No such endpoint.", 404)
            if response.status_code == 405:
                return json_error("method_not_allowed", "Method not allowed on this path.", 405)
            if response.status_code == 400:
                return json_error("bad_request", "The request could not be understood.", 400)
            if response.status_code >= 500:
                return json_error("internal_error", "Something went wrong on our side.", response.status_code)
            return json_error("error", "The request failed.", response.status_code)
        return response

    def process_exception(self, request, exception):
        if _is_api(request):
            if unavailable(exception):
                logger.warning("Request under /v1 failed: database unavailable (%s)", str(exception)[:200])
                return service_unavailable()
            if isinstance(exception, RequestDataTooBig):
                return json_error("payload_too_large", "The request body is too large.", 413)
            if isinstance(exception, SuspiciousOperation):
                return json_error("bad_request", "The request could not be understood.", 400)
            logger.exception("Unhandled error under /v1", exc_info=exception)
            return json_error("internal_error", "Something went wrong on our side; it has been logged.", 500)
        return None


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _nul_characters(request):
    """A 400 naming where a NUL is (the path, or the query parameter), or None."""
    message = "must not contain NUL (\\u0000) characters."
    if "\x00" in request.path:
        details = {"path": [message]}
    else:
        names = [name for name, values in request.GET.lists()
                 if "\x00" in name or any("\x00" in value for value in values)]
        if not names:
            return None
        details = {printable(name): [message] for name in names}
    return json_error("validation_error", "The request is invalid; see details.", 400, details)
