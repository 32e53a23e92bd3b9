"""The node contract: what a node kind module declares, what its handler receives and returns, and how a
waiting kind takes an inbound reply.

A kind is one module in `automations.nodes` (listed in `registry.KINDS`) with:

- `derive_ports(config) -> list[str]`, `validate(config, *, automation=None) -> list[issue]` and optionally
  `normalize(config)` — the graph side;
- `handle(ctx: NodeContext) -> NodeResult` — one visit. Handlers read the node config, the run context and
  the contact, talk to the outside world only through `ctx.effects`, and return the port to leave
  through, a wait, a goto or an end. They never write the database themselves, which is what lets the
  simulator run the very same handlers with a recording `effects`;
- what the rest of the system asks of the kind, each with a default (`registry` reads them):
  `WAITS` — the `Wait`s it parks a run with (default none); `waits(config)` — whether a visit parks the
  run, for a kind that waits only with some configs (default: it waits iff it declares `WAITS`);
  `answer(ctx, reply) -> Answer | None` — how it takes an inbound event while a run waits there (a kind
  without one is never offered events); `calls_out(config)` — the visit calls the outside world
  synchronously, so the run's state commits first (default no); `MAY_BE_ROOT` (default True);
  `TERMINAL` — the walk never leaves it through a port (default False).

The runtime derives its per-kind knowledge from these declarations: which runs an inbound event is
offered to (`replies`), which scheduled jobs end which waits and through which port (`scheduler`,
`jobs`), the exit of a timeout port left unwired (`engine`), pause points and root kinds (`validator`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from automations.graph import filters, merge_tags
from automations.models import InboundKind, StepOutcome


@dataclass(frozen=True)
class Wait:
    """A way a kind parks a run, declared once in its module: the run's `waiting_for` while parked and,
    for a wait that can time out, the scheduled job kind that ends it and the port that job resumes
    through (`exit_if_unwired`: the exit reason when that port has no edge; otherwise the run completes).

    A handler returns the declaration itself, or `ending_at(until)` to schedule the timeout job."""

    waiting_for: str
    timeout_job: str | None = None
    timeout_port: str | None = None
    exit_if_unwired: str | None = None
    until: datetime | None = None  # set per visit: when the timeout job is due (None: no timeout)

    def ending_at(self, until: datetime | None) -> Wait:
        return replace(self, until=until)

    def scheduled_job(self, node_key: str) -> tuple[str, datetime, dict] | None:
        """(kind, due_at, payload) of the job that ends this wait at the node, if it has one."""
        if self.timeout_job is None or self.until is None:
            return None
        return self.timeout_job, self.until, {"node_key": node_key, "port_key": self.timeout_port}


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
    effects: Any  # runtime.effects.Effects or RecordingEffects; None while answering a reply
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


# Inbound event kinds that count as "the contact answered" (a typed reply), as opposed to other events.
REPLY_KINDS = {InboundKind.DM_RECEIVED, InboundKind.STORY_REPLY}


@dataclass
class InboundReply:
    """An inbound event as offered to a waiting run (`runtime.replies`)."""

    kind: str
    text: str = ""
    interactive_type: str | None = None  # button | quick_reply
    interactive_id: str | None = None
    attachments: list = field(default_factory=list)
    message_id: str | None = None
    event_id: str | None = None

    @property
    def is_tap(self) -> bool:
        return bool(self.interactive_type and self.interactive_id)

    @property
    def tap_port(self) -> str | None:
        """The message-node port a tap answers (`button.<id>` / `quick_reply.<id>`); None for a typed reply."""
        return f"{self.interactive_type}.{self.interactive_id}" if self.is_tap else None

    def summary(self) -> dict:
        data = {"kind": self.kind, "text": self.text, "message_id": self.message_id, "event_id": self.event_id}
        if self.is_tap:
            data["interactive"] = {"type": self.interactive_type, "id": self.interactive_id}
        if self.attachments:
            data["attachments"] = self.attachments
        return data


@dataclass
class Answer:
    """What a waiting node makes of an inbound reply it takes: leave through `port`, merging
    `context_updates` into the run context, with `payload` on the node's step row. `port` None: the reply
    was taken but not accepted, and the node keeps waiting — the run's last message is sent again."""

    port: str | None
    payload: dict = field(default_factory=dict)
    context_updates: dict = field(default_factory=dict)


def error_json(exc: BaseException, **extra) -> dict:
    """The step row's `error` for an exception: stable keys, bounded size."""
    code = getattr(exc, "code", None) or type(exc).__name__
    return {"code": str(code), "type": type(exc).__name__, "message": str(exc)[:1000], **extra}
