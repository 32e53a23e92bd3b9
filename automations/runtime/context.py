"""What a node handler receives (`NodeContext`) and returns (`NodeResult`).

Handlers (`automations.nodes.<kind>.handle(ctx)`) are plain functions: they read the node config, the
run context and the contact, talk to the outside world only through `ctx.effects`, and return a result
naming the port to leave through, a wait, a goto or an end. They never write the database themselves,
which is what lets the simulator run the very same handlers with a recording `effects`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from automations.graph import filters, merge_tags
from automations.models import StepOutcome


@dataclass
class Wait:
    """Park the run at this node. `job_kind` + `until` schedule the job that resumes it through
    `timeout_port` when nothing else does first."""

    waiting_for: str
    until: datetime | None = None
    job_kind: str | None = None
    timeout_port: str | None = None


@dataclass
class NodeResult:
    port: str | None = None  # leave through this port
    outcome: str = StepOutcome.SUCCESS
    payload: dict = field(default_factory=dict)  # stored on the step row: what was rendered/decided
    rendered: Any = None  # merge-tag-resolved content, shown by the simulator
    error: dict | None = None  # stored on the step row when the node failed in a handled way
    context_updates: dict = field(default_factory=dict)
    wait: Wait | None = None
    goto: str | None = None  # jump to this node key (goto)
    end_reason: str | None = None  # stop here; becomes exit_reason (end)


@dataclass
class NodeContext:
    node: dict
    run: Any  # AutomationRun (unsaved in the simulator)
    context: dict  # the run context as this visit sees it (apply changes via NodeResult.context_updates)
    contact: Any  # Contact (unsaved in the simulator) or None
    automation: Any
    effects: Any  # runtime.effects.Effects or RecordingEffects
    now: datetime
    ports: list[str]
    entered_via_port_key: str | None = None

    @property
    def key(self) -> str:
        return self.node["key"]

    @property
    def kind(self) -> str:
        return self.node["kind"]

    @property
    def config(self) -> dict:
        config = self.node.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def simulated(self) -> bool:
        return bool(getattr(self.effects, "simulated", False))

    def render(self, template) -> str:
        return merge_tags.render(template, contact=self.contact, context=self.context)

    def render_value(self, value):
        return merge_tags.render_value(value, contact=self.contact, context=self.context)

    def evaluate(self, predicates) -> bool:
        return filters.evaluate(predicates, contact=self.contact, context=self.context)


def error_json(exc: BaseException, **extra) -> dict:
    """The step row's `error` for an exception: stable keys, bounded size."""
    code = getattr(exc, "code", None) or type(exc).__name__
    return {"code": str(code), "type": type(exc).__name__, "message": str(exc)[:1000], **extra}
