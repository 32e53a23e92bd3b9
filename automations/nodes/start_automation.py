"""`start_automation` node: enrolls the contact into another automation (fire-and-forget) → `next`.

The target must exist in the organization, use the same channel and not be this automation. A
target that is not active is only a warning at save (it may be activated later); a run that reaches
the node while the target is paused, archived or a draft fails there, as the reference does: through
`error` when that port is wired, else the run ends `failed` / `handler_failure`."""

from automations.graph.config_checks import check_optional_bool, error, require_object, warn_unknown_keys, warning
from automations.nodes.base import NodeResult


def derive_ports(config) -> list[str]:
    return ["next", "error"]


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, ("target_automation_id", "entrypoint_id", "pass_context"), issues)
    check_optional_bool(config, "pass_context", issues)
    target_id = config.get("target_automation_id")
    entrypoint_id = config.get("entrypoint_id")
    if not isinstance(target_id, str) or not target_id.startswith("auto_"):
        issues.append(error("invalid_config", "config.target_automation_id must be an automation id (auto_…)."))
        return issues
    if entrypoint_id is not None and (not isinstance(entrypoint_id, str) or not entrypoint_id.startswith("aep_")):
        issues.append(error("invalid_config", "config.entrypoint_id must be an entrypoint id (aep_…)."))
        entrypoint_id = None
    if automation is None:
        return issues
    if target_id == automation.pk:
        issues.append(error("start_automation_self", "An automation cannot start itself."))
        return issues
    from automations.models import Automation, AutomationStatus

    target = Automation.objects.filter(organization_id=automation.organization_id, pk=target_id).first()
    if target is None:
        issues.append(error("unknown_automation", f"No automation {target_id} in this organization."))
        return issues
    if target.channel != automation.channel:
        issues.append(error("channel_mismatch",
                            f"The target automation runs on {target.channel}, this one on {automation.channel}."))
    if target.status != AutomationStatus.ACTIVE:
        issues.append(warning("target_not_active",
                              f"The target automation is {target.status}; nobody is enrolled until it is active."))
    if entrypoint_id is not None and not target.entrypoints.filter(pk=entrypoint_id).exists():
        issues.append(error("unknown_entrypoint", f"Entrypoint {entrypoint_id} does not belong to the target."))
    return issues


def handle(ctx):
    """Enroll the contact into the target automation (fire-and-forget) and leave through `next`.

    A target that is gone, on another channel or this automation itself is skipped (outcome `skipped`,
    the reason in the payload). A target that is not active fails the node (`error`, naming the
    target and its status)."""
    from automations.models import Automation, AutomationStatus, StepOutcome

    config = ctx.config
    target_id = config.get("target_automation_id")
    pass_context = config.get("pass_context") is True
    rendered = {"target_automation_id": target_id, "pass_context": pass_context}
    target = Automation.objects.filter(organization_id=ctx.automation.organization_id, pk=target_id).first()
    skip = None
    if target is None:
        skip = "unknown_automation"
    elif target.pk == ctx.automation.pk:
        skip = "start_automation_self"
    elif target.channel != ctx.automation.channel:
        skip = "channel_mismatch"
    elif target.status != AutomationStatus.ACTIVE:
        return NodeResult(port="error", outcome=StepOutcome.FAILED, rendered=rendered,
                          payload={"target_automation_id": target_id, "target_status": target.status},
                          error={"code": "target_not_active", "target_automation_id": target_id,
                                 "target_status": target.status,
                                 "message": f"The target automation {target_id} is {target.status}, not active."})
    if skip:
        return NodeResult(port="next", outcome=StepOutcome.SKIPPED, rendered=rendered,
                          payload={"target_automation_id": target_id, "skipped": skip})
    entrypoint_id = config.get("entrypoint_id")
    entrypoint = target.entrypoints.filter(pk=entrypoint_id).first() if entrypoint_id else None
    report = ctx.effects.start_automation(target, entrypoint=entrypoint,
                                          context=dict(ctx.context) if pass_context else {})
    return NodeResult(port="next", payload=report, rendered=rendered)
