"""Small helpers the per-kind node modules share when they validate a config.

An issue is a dict `{code, message, port?}`; warnings carry `severity: "warning"` and the graph
validator files them under `graph_warnings` (it also fills `node_key`). Codes are stable API."""

import re

PORT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CONTEXT_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_CONTEXT_KEY_LENGTH = 100
WARNING = "warning"


def error(code: str, message: str, *, port: str | None = None) -> dict:
    issue = {"code": code, "message": message}
    if port is not None:
        issue["port"] = port
    return issue


def warning(code: str, message: str, *, port: str | None = None) -> dict:
    return {**error(code, message, port=port), "severity": WARNING}


def is_warning(issue: dict) -> bool:
    return issue.get("severity") == WARNING


def as_dict(config) -> dict:
    return config if isinstance(config, dict) else {}


def require_object(config, issues: list) -> bool:
    if isinstance(config, dict):
        return True
    issues.append(error("invalid_config", "config must be an object."))
    return False


def warn_unknown_keys(config: dict, allowed, issues: list, where: str = "config"):
    for key in sorted(set(config) - set(allowed)):
        issues.append(warning("unknown_config_key", f"{where}.{key} is not a known setting and is ignored."))


def list_of_dicts(value) -> list[dict]:
    """The dict items of a list (garbage-tolerant, for port derivation)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_nonempty_str(value, max_length: int | None = None) -> bool:
    return isinstance(value, str) and value.strip() != "" and (max_length is None or len(value) <= max_length)


def is_context_key(value) -> bool:
    return isinstance(value, str) and len(value) <= MAX_CONTEXT_KEY_LENGTH and bool(CONTEXT_KEY_RE.match(value))


def is_port_id(value) -> bool:
    return isinstance(value, str) and bool(PORT_ID_RE.match(value))


def check_port_id(value, where: str, issues: list) -> bool:
    if is_port_id(value):
        return True
    issues.append(error("invalid_id", f"{where} must be 1-64 letters, digits, '_' or '-' (it becomes a port name)."))
    return False


def is_http_url(value) -> bool:
    """http(s) URL, or one that starts with a merge tag (resolved at run time)."""
    if not isinstance(value, str) or len(value) > 2048:
        return False
    lowered = value.strip().lower()
    return lowered.startswith(("http://", "https://", "{{")) and len(lowered) > len("https://") - 1


def check_optional_bool(config: dict, key: str, issues: list):
    if key in config and config[key] is not None and not isinstance(config[key], bool):
        issues.append(error("invalid_config", f"config.{key} must be true or false."))


def check_optional_positive_int(config: dict, key: str, issues: list, maximum: int | None = None):
    if config.get(key) is None:
        return
    value = config[key]
    if not is_int(value) or value < 1:
        issues.append(error("invalid_config", f"config.{key} must be a positive integer."))
    elif maximum is not None and value > maximum:
        issues.append(error("invalid_config", f"config.{key} must be at most {maximum}."))


def unique_ports(ports: list[str]) -> list[str]:
    return list(dict.fromkeys(ports))
