"""The walk: visit nodes from a position until the run waits, parks, ends or fails.

Shared by the live runner (`runtime.runner`) and the simulator (`runtime.simulator`): both hand it a
driver that decides what persistence means (buffered step rows and one transaction per persist, or a
transcript). The walk itself never writes; node handlers only talk to `effects`.

Positions: "visit node X (entered through port P)" or, when `port_key` is set, "leave node X through
port P" — the shape a run has after a resume or at a missing edge.

A node that fails (a crash, or a handled failure leaving through `error`) follows its `error` edge when
one is wired; otherwise the run ends `failed` / `handler_failure` (SPEC §4, seed exit table). A missing
edge for any other port ends the run `completed`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from automations.models import ExitReason, RunStatus, StepOutcome
from automations.nodes import registry
from automations.nodes.base import NodeContext, NodeResult, Wait, error_json


class GraphView:
    """Read access to a stored graph: nodes by key, the edge leaving (node, port), a node's ports."""

    def __init__(self, graph: dict | None):
        graph = graph if isinstance(graph, dict) else {}
        self.root = graph.get("root_node_key")
        self.nodes: dict[str, dict] = {}
        for node in graph.get("nodes") or []:
            if isinstance(node, dict) and isinstance(node.get("key"), str):
                self.nodes.setdefault(node["key"], node)
        self.edges: dict[tuple[str, str], str] = {}
        for edge in graph.get("edges") or []:
            if isinstance(edge, dict):
                self.edges.setdefault((edge.get("from_node"), edge.get("from_port")), edge.get("to_node"))

    def node(self, key) -> dict | None:
        return self.nodes.get(key) if key is not None else None

    def target(self, node_key: str, port_key: str) -> str | None:
        return self.edges.get((node_key, port_key))

    def ports(self, node: dict) -> list[str]:
        """Derived from the node's current config (the same rule the validator stores in `ports`)."""
        module = registry.find(node.get("kind"))
        if module is not None:
            try:
                return list(module.derive_ports(node.get("config") or {}))
            except Exception:  # noqa: BLE001 - a malformed config has no ports rather than crashing
                return []
        return list(node.get("ports") or [])


@dataclass
class Position:
    node_key: str | None
    port_key: str | None = None  # set: leave node_key through this port
    entered_via: str | None = None  # visiting: the port we arrived through


@dataclass
class Step:
    """One node visit: becomes a StepRun row (live) or a transcript entry (simulator)."""

    node_key: str
    node_kind: str
    entered_via_port_key: str | None
    exited_via_port_key: str | None
    outcome: str
    duration_ms: int = 0
    payload: dict = field(default_factory=dict)
    error: dict | None = None
    rendered: Any = None
    executed_at: datetime = field(default_factory=timezone.now)


@dataclass
class Stop:
    """How a walk ended. kind: wait | park | finish."""

    kind: str
    node_key: str | None
    port_key: str | None = None
    status: str | None = None
    exit_reason: str | None = None
    wait: Wait | None = None
    pause: Any = None  # PauseInfo when parked


@dataclass
class PauseInfo:
    reason: str
    paused_until: datetime | None = None
    control_id: str | None = None
    automation_id: str | None = None


def finish(status, reason, node_key, port_key=None) -> Stop:
    return Stop("finish", node_key, port_key, status=status, exit_reason=reason)


class Walker:
    """Runs nodes for one execution iteration (the visit cap counts per iteration)."""

    def __init__(self, *, graph: GraphView, run, context: dict, contact, automation, effects, driver,
                 now: datetime | None = None, max_visits: int = 200):
        self.graph = graph
        self.run = run
        self.context = context
        self.contact = contact
        self.automation = automation
        self.effects = effects
        self.driver = driver
        self.fixed_now = now
        self.max_visits = max_visits
        self.visits = 0

    def now(self) -> datetime:
        return self.fixed_now or timezone.now()

    def walk(self, position: Position, *, gone_reason: str = ExitReason.NODE_REMOVED) -> Stop | None:
        """Visit from `position` until a stop. None means the driver gave up (a stale run at a callout).

        `gone_reason` is the exit reason when the *starting* node no longer exists: `graph_changed` for a
        run resumed from a wait, `node_removed` for an active run picked up between visits."""
        first = True
        while True:
            node = self.graph.node(position.node_key)
            if position.port_key is not None:
                if node is None:
                    return finish(RunStatus.EXITED, gone_reason, position.node_key, position.port_key)
                if first and position.port_key not in self.graph.ports(node):
                    return finish(RunStatus.EXITED, ExitReason.GRAPH_CHANGED, position.node_key, position.port_key)
                first = False
                target = self.graph.target(node["key"], position.port_key)
                if target is None:  # the path ends here, unless the kind says how this port ends a run
                    reason = registry.unwired_exit(node.get("kind"), position.port_key)
                    if reason is not None:
                        return finish(RunStatus.EXITED, reason, node["key"], position.port_key)
                    return finish(RunStatus.COMPLETED, ExitReason.COMPLETED, node["key"], position.port_key)
                if self.graph.node(target) is None:  # an edge to a node that is gone: the path ended
                    return finish(RunStatus.COMPLETED, ExitReason.COMPLETED, node["key"], position.port_key)
                position = Position(target, entered_via=position.port_key)
                continue

            if node is None:
                return finish(RunStatus.EXITED, gone_reason if first else ExitReason.NODE_REMOVED, position.node_key)
            first = False
            if self.visits >= self.max_visits:
                return finish(RunStatus.FAILED, ExitReason.INFINITE_LOOP_CAP, node["key"])
            pause = self.driver.paused(self.now())
            if pause is not None:
                self.driver.record(Step(node["key"], node.get("kind", ""), position.entered_via, None,
                                        StepOutcome.WAITING, payload=_parked_payload(pause)))
                return Stop("park", node["key"], pause=pause)
            if registry.calls_out(node) and not self.driver.before_callout(node["key"], self.context):
                return None
            self.visits += 1
            next_position_or_stop = self._visit(node, position)
            if isinstance(next_position_or_stop, Stop):
                return next_position_or_stop
            position = next_position_or_stop

    def _visit(self, node: dict, position: Position) -> Position | Stop:
        key, kind = node["key"], node.get("kind", "")
        ports = self.graph.ports(node)
        executed_at = timezone.now()
        started = time.monotonic()
        result, error = None, None
        try:
            module = registry.find(kind)
            if module is None or not hasattr(module, "handle"):
                raise LookupError(f"no handler for node kind {kind!r}")
            ctx = NodeContext(node=node, run=self.run, context=self.context, contact=self.contact,
                              automation=self.automation, effects=self.effects, now=self.now(), ports=ports,
                              entered_via_port_key=position.entered_via)
            result = module.handle(ctx)
            if not isinstance(result, NodeResult):
                raise TypeError(f"{kind} handler returned {type(result).__name__}, not NodeResult")
        except Exception as exc:  # noqa: BLE001 - any handler crash is recorded on the step, never raised
            error = error_json(exc)
        duration_ms = int((time.monotonic() - started) * 1000)

        def step(exited, outcome, payload=None, err=None, rendered=None):
            self.driver.record(Step(key, kind, position.entered_via, exited, outcome, duration_ms,
                                    payload if payload is not None else {}, err, rendered, executed_at))

        def handler_failure(payload=None, err=None, rendered=None):
            """A failure nobody wired an `error` edge for fails the run (SPEC §4), never completes it."""
            step(None, StepOutcome.FAILED, payload, err, rendered)
            return finish(RunStatus.FAILED, ExitReason.HANDLER_FAILURE, key)

        if error is not None:
            if "error" in ports and self.graph.target(key, "error") is not None:
                step("error", StepOutcome.FAILED, err=error)
                return Position(key, port_key="error")
            return handler_failure(err=error)

        if result.context_updates:
            self.context.update(copy.deepcopy(result.context_updates))
        forced = self.driver.choice(key)
        if result.wait is not None:
            outcome = result.outcome if result.outcome != StepOutcome.SUCCESS else StepOutcome.WAITING
            step(None, outcome, result.payload, result.error, result.rendered)
            if forced is None:
                return Stop("wait", key, wait=result.wait)
            # The simulator answers the wait with the branch choice, as a reply would.
            self.driver.record(Step(key, kind, None, forced, StepOutcome.SUCCESS,
                                    payload={"answered_by": "branch_choice"}))
            return Position(key, port_key=forced)
        if result.end_reason is not None:
            step(None, result.outcome, result.payload, result.error, result.rendered)
            return finish(RunStatus.COMPLETED, result.end_reason, key)
        if result.goto is not None:
            step(None, result.outcome, result.payload, result.error, result.rendered)
            if self.graph.node(result.goto) is None:
                return finish(RunStatus.COMPLETED, ExitReason.COMPLETED, key)
            return Position(result.goto)
        port = forced or result.port
        if port is None:
            step(None, result.outcome, result.payload, result.error, result.rendered)
            return finish(RunStatus.COMPLETED, ExitReason.COMPLETED, key)
        payload = result.payload if forced is None else {**result.payload, "forced_port": forced}
        if forced is None and result.outcome == StepOutcome.FAILED and port == "error" \
                and self.graph.target(key, "error") is None:
            return handler_failure(payload, result.error, result.rendered)
        step(port, result.outcome, payload, result.error, result.rendered)
        return Position(key, port_key=port)


def _parked_payload(pause: PauseInfo) -> dict:
    return {"parked": True, "reason": ExitReason.CONTACT_PAUSED, "pause_reason": pause.reason,
            "paused_until": pause.paused_until.isoformat() if pause.paused_until else None,
            "control_id": pause.control_id, "automation_id": pause.automation_id}
