"""`condition` node: evaluates `predicates` (automations.graph.filters) → `true` or `false`."""

from automations.graph import filters
from automations.graph.config_checks import error, require_object, warn_unknown_keys, warning
from automations.nodes.base import NodeResult


def derive_ports(config) -> list[str]:
    return ["true", "false"]


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, ("predicates",), issues)
    predicates = config.get("predicates")
    problems = filters.validate_predicates(predicates)
    issues += [error("invalid_predicates", problem) for problem in problems]
    if not problems and not predicates:
        issues.append(warning("empty_predicates", "No predicates: this condition always takes `true`.",
                              port="false"))
    return issues


def handle(ctx):
    """`true` when the contact/context satisfies the predicates, else `false`."""
    result = ctx.evaluate(ctx.config.get("predicates"))
    return NodeResult(port="true" if result else "false", payload={"result": result}, rendered={"result": result})
