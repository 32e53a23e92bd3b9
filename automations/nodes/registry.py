"""The node-kind registry: kind name → module (derive_ports, validate, handle), plus the kind sets the
validator and runtime share (pause points, kinds that may not be the root)."""

from importlib import import_module
from types import ModuleType

KINDS = ("message", "input", "delay", "wait_event", "condition", "randomizer", "action_group", "http_request",
         "start_automation", "goto", "end")
# Kinds that always wait; a message waits only with branch buttons, quick replies or wait_for_reply.
PAUSE_POINT_KINDS = ("input", "delay", "wait_event")
NOT_ROOT_KINDS = ("input", "delay", "wait_event", "randomizer", "goto")
TERMINAL_KINDS = ("goto", "end")

_modules: dict[str, ModuleType] = {}


def get(kind: str) -> ModuleType:
    """The module for `kind`; KeyError for an unknown kind."""
    if kind not in KINDS:
        raise KeyError(kind)
    if kind not in _modules:
        _modules[kind] = import_module(f"automations.nodes.{kind}")
    return _modules[kind]


def derive_ports(kind: str, config) -> list[str]:
    """Output ports of a node of `kind` with `config`; [] for an unknown kind."""
    try:
        return get(kind).derive_ports(config)
    except KeyError:
        return []


def normalize_config(kind: str, config):
    """The config as stored: a kind with a `normalize(config)` tidies harmless redundancy away (instead of
    rejecting it); other kinds and unknown kinds keep the config as sent."""
    try:
        normalize = getattr(get(kind), "normalize", None)
    except KeyError:
        return config
    return normalize(config) if normalize is not None else config


def node_waits(node: dict) -> bool:
    """True when visiting this node parks the run (a pause point for the cycle rule)."""
    kind = node.get("kind") if isinstance(node, dict) else None
    if kind in PAUSE_POINT_KINDS:
        return True
    if kind == "message":
        return get("message").waits(node.get("config"))
    return False
