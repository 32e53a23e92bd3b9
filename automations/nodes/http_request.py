"""`http_request` node: one outgoing HTTP call; 2xx → `success`, anything else → `error`. The parsed
response is stored under `context[response_key]` when set. Timeout capped at 30 s, body 256 KiB."""

from automations.graph.config_checks import (
    error,
    is_context_key,
    is_http_url,
    is_int,
    require_object,
    warn_unknown_keys,
)
from automations.nodes.base import NodeResult

CONFIG_KEYS = ("method", "url", "headers", "body", "timeout_ms", "response_key")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
MAX_TIMEOUT_MS = 30_000
DEFAULT_TIMEOUT_MS = 10_000
MAX_BODY_BYTES = 256 * 1024
MAX_RESPONSE_BYTES = 512 * 1024


def derive_ports(config) -> list[str]:
    return ["success", "error"]


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, CONFIG_KEYS, issues)
    if config.get("method") not in METHODS:
        issues.append(error("invalid_config", f"config.method must be one of {', '.join(METHODS)}."))
    if not is_http_url(config.get("url")):
        issues.append(error("invalid_url", "config.url must be an http(s) URL (merge tags allowed)."))
    headers = config.get("headers")
    if headers is not None and (not isinstance(headers, dict)
                                or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
        issues.append(error("invalid_config", "config.headers must be an object of string values."))
    body = config.get("body")
    if body is not None:
        if not isinstance(body, str):
            issues.append(error("invalid_config", "config.body must be a string (merge tags allowed)."))
        elif len(body.encode()) > MAX_BODY_BYTES:
            issues.append(error("body_too_large", f"config.body is larger than {MAX_BODY_BYTES} bytes."))
    timeout = config.get("timeout_ms")
    if timeout is not None:
        if not is_int(timeout) or timeout < 1:
            issues.append(error("invalid_config", "config.timeout_ms must be a positive integer."))
        elif timeout > MAX_TIMEOUT_MS:
            issues.append(error("timeout_too_long", f"config.timeout_ms must be at most {MAX_TIMEOUT_MS}."))
    if config.get("response_key") is not None and not is_context_key(config["response_key"]):
        issues.append(error("invalid_config", "config.response_key must be a context key (letters, digits, '_')."))
    return issues


# -- runtime -------------------------------------------------------------------------------------------

SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "x-api-key", "api-key")
BODY_PREVIEW_CHARS = 2000


def calls_out(config) -> bool:
    """The runner commits the run's state before visiting a node that calls out."""
    return True


def redact_headers(headers: dict) -> dict:
    return {k: ("[redacted]" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def _preview(body) -> str:
    import json

    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str)
    return text[:BODY_PREVIEW_CHARS]


def handle(ctx):
    """Send the request (merge tags resolved) through `effects.http`; 2xx → `success`, anything else
    or a refused/failed request → `error`. `context[response_key]` = {status, headers, body}."""
    from automations.models import StepOutcome
    from automations.runtime.outbound_http import HttpError

    config = ctx.config
    method = config.get("method") or "GET"
    url = ctx.render(config.get("url"))
    headers = {str(k): ctx.render(v) for k, v in (config.get("headers") or {}).items()}
    body = ctx.render(config["body"]) if config.get("body") is not None else None
    request = {"method": method, "url": url, "headers": redact_headers(headers), "body": body}
    response_key = config.get("response_key")
    try:
        response = ctx.effects.http(method, url, headers=headers, body=body, timeout_ms=config.get("timeout_ms"))
    except HttpError as exc:
        failure = {"code": exc.code, "message": str(exc)}
        updates = {}
        if response_key:
            updates = {response_key: {"status": None, "headers": {}, "body": None, "error": failure}}
        return NodeResult(port="error", outcome=StepOutcome.FAILED, payload={"request": request}, rendered=request,
                          error=failure, context_updates=updates)
    updates = {response_key: response.as_dict()} if response_key else {}
    payload = {"request": request, "response": {"status": response.status, "headers": response.headers,
                                                "elapsed_ms": response.elapsed_ms,
                                                "body_preview": _preview(response.body)}}
    if response.ok:
        return NodeResult(port="success", payload=payload, rendered=request, context_updates=updates)
    return NodeResult(port="error", outcome=StepOutcome.FAILED, payload=payload, rendered=request,
                      context_updates=updates,
                      error={"code": "http_status", "message": f"the server answered {response.status}",
                             "status": response.status})
