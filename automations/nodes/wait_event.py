"""`wait_event` node: waits for one of `event_kinds` from the contact; `timeout` after `timeout_min`.

Ports: `received`, `timeout`, `error`. The run waits with `waiting_for = "inbound_event"`. A kind listed
twice is stored once (`normalize`), not refused. A `wait_event_timeout` job ends the wait through
`timeout`; an event of a listed kind ends it through `received` (`answer`)."""

from datetime import timedelta

from automations.graph.config_checks import check_optional_positive_int, error, require_object, warn_unknown_keys
from automations.models import InboundKind, JobKind, WaitingFor
from automations.nodes.base import Answer, NodeResult, Wait

EVENT_KINDS = (InboundKind.DM_RECEIVED, InboundKind.COMMENT_CREATED, InboundKind.STORY_REPLY,
               InboundKind.STORY_MENTION, InboundKind.LIVE_COMMENT, InboundKind.SHARE_TO_DM, InboundKind.AD_CLICK)
MAX_TIMEOUT_MIN = 60 * 24 * 30

WAIT = Wait(WaitingFor.INBOUND_EVENT, timeout_job=JobKind.WAIT_EVENT_TIMEOUT, timeout_port="timeout")
WAITS = (WAIT,)
MAY_BE_ROOT = False


def derive_ports(config) -> list[str]:
    return ["received", "timeout", "error"]


def normalize(config):
    """`event_kinds` without repeats, first occurrence kept (hashable entries only; others are left for
    `validate` to refuse)."""
    kinds = config.get("event_kinds") if isinstance(config, dict) else None
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        return config
    return {**config, "event_kinds": list(dict.fromkeys(kinds))}


def validate(config, *, automation=None) -> list[dict]:
    issues: list[dict] = []
    if not require_object(config, issues):
        return issues
    warn_unknown_keys(config, ("event_kinds", "timeout_min"), issues)
    kinds = config.get("event_kinds")
    if not isinstance(kinds, list) or not kinds:
        issues.append(error("invalid_config", "config.event_kinds must be a non-empty list."))
    else:
        unknown = [k for k in kinds if k not in EVENT_KINDS]
        if unknown:
            issues.append(error("unknown_event_kind",
                                f"config.event_kinds has unknown kinds {unknown}; use {', '.join(EVENT_KINDS)}."))
    check_optional_positive_int(config, "timeout_min", issues, maximum=MAX_TIMEOUT_MIN)
    return issues


def handle(ctx):
    """Park the run until one of `event_kinds` arrives (`received`) or `timeout_min` passes (`timeout`)."""
    kinds = ctx.config.get("event_kinds") or []
    timeout = ctx.config.get("timeout_min")
    until = ctx.now + timedelta(minutes=timeout) if isinstance(timeout, int) and timeout > 0 else None
    return NodeResult(payload={"event_kinds": kinds, "timeout_min": timeout}, rendered={"event_kinds": kinds},
                      wait=WAIT.ending_at(until))


def answer(ctx, reply):
    """An event of one of `event_kinds` leaves through `received` (kept as `context.last_event`)."""
    if reply.kind not in (ctx.config.get("event_kinds") or []):
        return None
    return Answer("received", payload={"event": reply.summary()}, context_updates={"last_event": reply.summary()})
