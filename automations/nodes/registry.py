"""The node-kind registry: kind name → module, and what the validator and the runtime ask of a kind, read
from the kind's own declarations (`automations.nodes.base` lists them and their defaults)."""

from functools import cache
from importlib import import_module
from types import ModuleType

from automations.nodes.base import Wait

KINDS = ("message", "input", "delay", "wait_event", "condition", "randomizer", "action_group", "http_request",
         "start_automation", "goto", "end")

_modules: dict[str, ModuleType] = {}


def get(kind: str) -> ModuleType:
    """The module for `kind`; KeyError for an unknown kind."""
    if kind not in KINDS:
        raise KeyError(kind)
    if kind not in _modules:
        _modules[kind] = import_module(f"automations.nodes.{kind}")
    return _modules[kind]


def find(kind) -> ModuleType | None:
    """The module for `kind`, or None for an unknown kind."""
    try:
        return get(kind)
    except (KeyError, TypeError):
        return None


def derive_ports(kind: str, config) -> list[str]:
    """Output ports of a node of `kind` with `config`; [] for an unknown kind."""
    try:
        return get(kind).derive_ports(config)
    except KeyError:
        return []


def normalize_config(kind: str, config):
    """The config as stored: a kind with a `normalize(config)` tidies harmless redundancy away (instead of
    rejecting it); other kinds and unknown kinds keep the config as sent."""
    normalize = getattr(find(kind), "normalize", None)
    return normalize(config) if normalize is not None else config


# -- declarations --------------------------------------------------------------------------------------

def waits_of(kind) -> tuple[Wait, ...]:
    """The waits a kind parks runs with (none for an unknown kind)."""
    return tuple(getattr(find(kind), "WAITS", ()))


def node_waits(node: dict) -> bool:
    """True when visiting this node parks the run (a pause point for the cycle rule)."""
    module = find(node.get("kind") if isinstance(node, dict) else None)
    if module is None:
        return False
    waits = getattr(module, "waits", None)
    return bool(waits(node.get("config"))) if waits is not None else bool(waits_of(node["kind"]))


def may_be_root(kind) -> bool:
    """Whether a run may start at a node of `kind` (an unknown kind is reported as unknown, not here)."""
    return getattr(find(kind), "MAY_BE_ROOT", True)


def is_terminal(kind) -> bool:
    """Whether the walk never leaves a node of `kind` through a port (it ends or jumps)."""
    return getattr(find(kind), "TERMINAL", False)


def calls_out(node: dict) -> bool:
    """Does visiting this node call the outside world synchronously (so state must commit first)?"""
    check = getattr(find(node.get("kind")), "calls_out", None)
    return bool(check and check(node.get("config") or {}))


def answerer(kind, waiting_for):
    """The kind's `answer(ctx, reply)` when a run waiting at it for `waiting_for` takes inbound events;
    else None (the kind does not answer, or does not park runs that way)."""
    answer = getattr(find(kind), "answer", None)
    if answer is None or not any(wait.waiting_for == waiting_for for wait in waits_of(kind)):
        return None
    return answer


@cache
def answered_waiting_for() -> tuple[str, ...]:
    """Every `waiting_for` an inbound event may end: the waits of the kinds that answer replies."""
    found = [wait.waiting_for for kind in KINDS if hasattr(get(kind), "answer") for wait in waits_of(kind)]
    return tuple(dict.fromkeys(found))


@cache
def timeout_waits() -> dict[str, Wait]:
    """Scheduled job kind → the wait whose timeout it is (its `waiting_for` and the port it resumes through)."""
    found: dict[str, Wait] = {}
    for kind in KINDS:
        for wait in waits_of(kind):
            if wait.timeout_job is not None and found.setdefault(wait.timeout_job, wait) != wait:
                raise ValueError(f"job kind {wait.timeout_job} ends two different waits")
    return found


def unwired_exit(kind, port: str) -> str | None:
    """The exit reason when a node of `kind` leaves through `port` and no edge is wired there (None: the
    run completes)."""
    return next((wait.exit_if_unwired for wait in waits_of(kind) if wait.timeout_port == port), None)
