"""No HTML error pages under /v1: unknown paths and crashes outside DRF views answer JSON too."""

import logging

from relay.core.errors import json_error

logger = logging.getLogger(__name__)


def _is_api(request) -> bool:
    return request.path.startswith("/v1/") or request.path == "/v1"


class JsonErrorsForApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
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
            logger.exception("Unhandled error under /v1", exc_info=exception)
            return json_error("internal_error", "Something went wrong on our side; it has been logged.", 500)
        return None


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")
