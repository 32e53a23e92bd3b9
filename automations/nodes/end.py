"""`end` node: finishes the run; `config.reason` (default `completed`) becomes the run's exit_reason."""

from automations.graph.config_checks import as_dict, error, require_object, warn_unknown_keys
from automations.nodes.base import NodeResult

TERMINAL = True

DEFAULT_REASON = "completed"
MAX_REASON_LENGTH = 100


def derive_ports(config) -> list[str]:
    return []


def reason(config) -> str:
    value = as_dict(config).get("reason")
    return value if isinstance(value, str) and value.strip() else DEFAULT_REASON


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if config is None:
        return issues
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, ("reason",), issues)
    value = config.get("reason")
    if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > MAX_REASON_LENGTH):
        issues.append(error("invalid_config", f"config.reason must be a non-empty string (≤ {MAX_REASON_LENGTH})."))
    return issues


def handle(ctx):
    """Finish the run; the reason becomes exit_reason."""
    why = reason(ctx.config)
    return NodeResult(end_reason=why, payload={"reason": why}, rendered={"reason": why})
