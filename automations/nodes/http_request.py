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
