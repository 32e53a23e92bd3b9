"""Dry runs (`POST /v1/automations/{id}/simulate`): the same walk and the same node handlers as a real
run, through `RecordingEffects` and a driver that keeps a transcript instead of step rows. Nothing is
written to the database and nothing is sent.

`branch_choices` (node key → port) force the port a node leaves through; at a waiting node the choice
also answers the wait, as a reply or a timeout would, so a whole path can be simulated. Without a
choice the simulation stops at the first wait and `ended_because` says what it waits for.

The contact the run is simulated for: `test_context.contact` (name, email, phone, tags, fields; any
other key is a custom field) describes it, as the reference does, and feeds conditions, filters and
merge tags; with `contact` a real contact is the base (a copy: still nothing is written). The
`contact` key is the contact, not run context: it is not in `final_context`."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from automations.models import AutomationRun
from automations.runtime.effects import RecordingEffects
from automations.runtime.engine import GraphView, Position, Step, Walker
from contacts.models import Contact


class SimulationError(Exception):
    """A request the simulator cannot run (unknown start node, invalid branch choice)."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.details = details or {}


@dataclass
class SimulationDriver:
    choices: dict
    steps: list[dict] = field(default_factory=list)

    def record(self, step: Step) -> None:
        payload = dict(step.payload or {})
        if step.error is not None:
            payload["error"] = step.error
        self.steps.append({
            "node_key": step.node_key, "node_kind": step.node_kind,
            "entered_via_port_key": step.entered_via_port_key, "exited_via_port_key": step.exited_via_port_key,
            "outcome": step.outcome, "rendered": step.rendered, "payload": payload,
        })

    def choice(self, node_key: str) -> str | None:
        return self.choices.get(node_key)

    def paused(self, now) -> None:
        return None

    def before_callout(self, node_key: str, context: dict) -> bool:
        return True


def check_choices(graph: GraphView, choices: dict) -> None:
    problems = {}
    for node_key, port in choices.items():
        node = graph.node(node_key)
        if node is None:
            problems[node_key] = [f"no node {node_key!r} in this graph"]
            continue
        ports = graph.ports(node)
        if port not in ports:
            allowed = ", ".join(ports) if ports else "none (this node has no output port)"
            problems[node_key] = [f"node {node_key!r} ({node.get('kind')}) has no port {port!r}; allowed: {allowed}"]
    if problems:
        raise SimulationError("invalid_branch_choice", "Some branch choices name a node or port that does not exist.",
                              {"branch_choices": problems})


CONTACT_ATTRIBUTES = ("name", "email", "phone")
CUSTOM_FIELD_KEYS = ("fields", "custom_fields")


def contact_problems(described) -> dict[str, list[str]]:
    """What is wrong with a `test_context.contact` (by field path), {} when it can describe a contact."""
    where = "test_context.contact"
    if not isinstance(described, dict):
        return {where: ["must be an object (name, email, phone, tags, fields)."]}
    problems = {}
    for key in CONTACT_ATTRIBUTES:
        if described.get(key) is not None and not isinstance(described[key], str):
            problems[f"{where}.{key}"] = ["must be a string."]
    tags = described.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        problems[f"{where}.tags"] = ["must be a list of strings."]
    for key in CUSTOM_FIELD_KEYS:
        if described.get(key) is not None and not isinstance(described[key], dict):
            problems[f"{where}.{key}"] = ["must be an object of custom field values."]
    return problems


def simulated_contact(automation, described: dict | None, base: Contact | None = None) -> Contact:
    """An unsaved contact for the dry run: `base` copied (or a blank one), with `described` on top."""
    if base is not None:
        contact = copy.deepcopy(base)
    else:
        contact = Contact(organization_id=automation.organization_id, name="", email="", phone="", tags=[],
                          custom_fields={})
    described = described or {}
    for key in CONTACT_ATTRIBUTES:
        if key in described:
            setattr(contact, key, described[key] or "")
    if "tags" in described:
        contact.tags = list(described["tags"] or [])
    custom = dict(contact.custom_fields or {})
    for key, value in described.items():
        if key in CUSTOM_FIELD_KEYS:
            custom.update(value or {})
        elif key not in (*CONTACT_ATTRIBUTES, "tags", "id"):
            custom[key] = value
    contact.custom_fields = custom
    return contact


def simulate(automation, *, start_node_key: str | None = None, test_context: dict | None = None,
             branch_choices: dict | None = None, contact: Contact | None = None,
             now: datetime | None = None) -> dict:
    """Return {"steps": [...], "ended_because": "...", "final_context": {...}}. `contact`: a real contact
    to simulate as (never written)."""
    graph = GraphView(automation.graph)
    start = start_node_key or graph.root
    if graph.node(start) is None:
        raise SimulationError("unknown_start_node", f"The graph has no node {start!r} to start from.",
                              {"start_node_key": [f"no node {start!r}"]})
    choices = dict(branch_choices or {})
    check_choices(graph, choices)
    context = copy.deepcopy(test_context or {})
    described = context.pop("contact", None)
    problems = contact_problems(described) if described is not None else {}
    if problems:
        raise SimulationError("validation_error", "test_context.contact does not describe a contact.", problems)
    # Unsaved stand-ins: handlers read them like real rows; nothing ever saves them.
    run = AutomationRun(organization_id=automation.organization_id, automation_id=automation.pk,
                        contact_id=contact.pk if contact is not None else None, context=context)
    contact = simulated_contact(automation, described, base=contact)
    effects = RecordingEffects(run=run, contact=contact, automation=automation)
    driver = SimulationDriver(choices)
    walker = Walker(graph=graph, run=run, context=context, contact=contact, automation=automation,
                    effects=effects, driver=driver, now=now,
                    max_visits=getattr(settings, "RELAY_MAX_VISITS_PER_ITERATION", 200))
    stop = walker.walk(Position(start))
    if stop.kind == "wait":
        ended = f"waiting_for_{stop.wait.waiting_for}"
    else:
        ended = stop.exit_reason
    return {"steps": driver.steps, "ended_because": ended, "final_context": context}
