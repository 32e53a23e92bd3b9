"""The one JSON error shape: {"error": {"code", "message", "details"}} with a stable snake_case code."""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """Raise from services and views: ApiError("reentry_blocked", "…", status=409, details={…})."""

    def __init__(self, code: str, message: str, status: int = 400, details: dict | None = None):
        self.code = code
        self.message = message
        self.status_code = status
        self.details = details or {}
        super().__init__(detail=message, code=code)


RETRY_AFTER_SECONDS = 5


def unavailable(exc) -> bool:
    """The database is out of reach or gave up on the statement for a passing reason (connection refused
    or lost, no pooled connection in time, deadlock, serialization failure): worth a retry, not a 500."""
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


UNAVAILABLE = ("service_unavailable", "The service is briefly unavailable (database); retry the same request "
               "after the Retry-After delay.")


def service_unavailable() -> JsonResponse:
    response = json_error(*UNAVAILABLE, 503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def json_error(code: str, message: str, status_code: int, details: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status_code)


def _validation_details(detail):
    if isinstance(detail, dict):
        return {str(k): _validation_details(v) for k, v in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(d, dict | list) for d in detail):
            return [str(d) for d in detail]
        return [_validation_details(d) for d in detail]
    return [str(detail)]


def _has_code(codes, wanted: str) -> bool:
    """True if `wanted` appears anywhere in DRF's (possibly nested) error codes."""
    if isinstance(codes, dict):
        return any(_has_code(value, wanted) for value in codes.values())
    if isinstance(codes, list):
        return any(_has_code(value, wanted) for value in codes)
    return codes == wanted


_SIMPLE = {
    exceptions.NotAuthenticated: ("unauthenticated", "Authentication required: send Authorization: Bearer <key>."),
    exceptions.AuthenticationFailed: ("invalid_api_key", "The API key is missing, malformed, revoked or unknown."),
    exceptions.PermissionDenied: ("forbidden", "You are not allowed to do this."),
    exceptions.NotFound: ("not_found", "Not found."),
    exceptions.MethodNotAllowed: ("method_not_allowed", "Method not allowed on this path."),
    exceptions.NotAcceptable: ("not_acceptable", "Only application/json responses are available."),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "Send the body as application/json."),
    exceptions.Throttled: ("rate_limited", "Too many requests."),
    exceptions.ParseError: ("malformed_json", "The request body is not valid JSON."),
}


def api_exception_handler(exc, context):
    """DRF exception handler: every failure under /v1 becomes the JSON error body."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApiError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    elif isinstance(exc, exceptions.ValidationError):
        details = _validation_details(exc.detail)
        if _has_code(exc.get_codes(), "unknown_field"):
            code, message = "unknown_field", "The body has fields this endpoint does not accept."
        else:
            code, message = "validation_error", "The request body is invalid; see details for each field."
        if not isinstance(details, dict):
            details = {"non_field_errors": details}
        response = Response(error_body(code, message, details), status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, exceptions.APIException):
        code, message = next(
            ((c, m) for cls, (c, m) in _SIMPLE.items() if isinstance(exc, cls)),
            (exc.default_code if isinstance(exc.default_code, str) else "error", str(exc.detail)),
        )
        if isinstance(exc, exceptions.ParseError) and str(exc.detail):
            message = f"{message} ({exc.detail})"
        response = Response(error_body(code, message), status=exc.status_code)
        if getattr(exc, "auth_header", None):
            response["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            response["Retry-After"] = str(int(exc.wait))
    elif unavailable(exc):
        logger.warning("API request failed: database unavailable (%s)", str(exc)[:200])
        response = Response(error_body(*UNAVAILABLE), status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    else:
        logger.exception("Unhandled error in API view", exc_info=exc)
        response = Response(
            error_body("internal_error", "Something went wrong on our side; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return response
