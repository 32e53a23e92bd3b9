"""`delay` node: waits `seconds + minutes + hours + days` (sum > 0), then leaves through `next`.

The run waits with `waiting_for` delay; a `resume_delay` job ends the wait through `next`. Inbound events
do not end it (no `answer`)."""

from datetime import timedelta

from automations.graph.config_checks import as_dict, error, is_number, require_object
from automations.models import JobKind, StepOutcome, WaitingFor
from automations.nodes.base import NodeResult, Wait

UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
MAX_TOTAL_SECONDS = 365 * 86400

WAIT = Wait(WaitingFor.DELAY, timeout_job=JobKind.RESUME_DELAY, timeout_port="next")
WAITS = (WAIT,)
MAY_BE_ROOT = False


def derive_ports(config) -> list[str]:
    return ["next"]


def total_seconds(config) -> float:
    """The delay length; malformed units count as zero."""
    config = as_dict(config)
    return float(sum(config[unit] * factor for unit, factor in UNITS.items() if is_number(config.get(unit))))


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    for key in sorted(set(config) - set(UNITS)):
        issues.append(error("invalid_config", f"config.{key} is not a delay unit (use {', '.join(UNITS)})."))
    for unit in UNITS:
        value = config.get(unit)
        if value is not None and (not is_number(value) or value < 0):
            issues.append(error("invalid_config", f"config.{unit} must be a number >= 0."))
    total = total_seconds(config)
    if total <= 0:
        issues.append(error("delay_zero", "A delay needs a total duration above zero."))
    elif total > MAX_TOTAL_SECONDS:
        issues.append(error("invalid_config", "A delay can last at most 365 days."))
    return issues


def handle(ctx):
    """Park the run for the configured duration; a `resume_delay` job resumes it through `next`."""
    seconds = total_seconds(ctx.config)
    if seconds <= 0:  # an invalid (zero) delay does not hold the contact forever
        return NodeResult(port="next", outcome=StepOutcome.SKIPPED, payload={"seconds": 0})
    until = ctx.now + timedelta(seconds=seconds)
    return NodeResult(payload={"seconds": seconds, "until": until.isoformat()},
                      rendered={"seconds": seconds},
                      wait=WAIT.ending_at(until))
