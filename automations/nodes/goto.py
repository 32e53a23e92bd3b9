"""`goto` node: jumps to `target_node_key` (no output port). The graph validator checks that the
target exists and counts the jump as an edge for the cycle rule."""

from automations.graph.config_checks import error, is_nonempty_str, require_object, warn_unknown_keys
from automations.nodes.base import NodeResult

MAY_BE_ROOT = False
TERMINAL = True


def derive_ports(config) -> list[str]:
    return []


def target(config) -> str | None:
    value = config.get("target_node_key") if isinstance(config, dict) else None
    return value if isinstance(value, str) and value else None


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, ("target_node_key",), issues)
    if not is_nonempty_str(config.get("target_node_key"), 100):
        issues.append(error("invalid_config", "config.target_node_key is required."))
    return issues


def handle(ctx):
    """Jump to the target node (a missing target ends the path like an edge to a deleted node)."""
    key = target(ctx.config)
    if key is None:
        raise ValueError("goto has no target_node_key")
    return NodeResult(goto=key, payload={"target_node_key": key}, rendered={"target_node_key": key})
