"""Offering an inbound event to the contact's waiting runs — at most one consumes it.

The runs are offered the event oldest first; the kind of the node each waits at decides (its `answer`,
`automations.nodes.base`), for instance:
- `message`: a button or quick-reply tap on a port it has (other runs stay waiting); a plain reply
  to a `wait_for_reply` message (→ `next`); typing a button/quick-reply label counts as the tap;
- `input`: a plain reply, validated by `input_type`, with attempts (an invalid one is asked again here);
- `wait_event`: events whose kind is in its `event_kinds` (→ `received`).
Resuming goes through `runtime.resume.resume_waiting`, which cancels the wait's timeout job. If two
events race for one run, the optimistic run write lets exactly one through; the loser offers its
event to the next candidate (and, failing all, to the matcher).

Graph-change safety (seed): a run whose waiting node is gone exits `graph_changed` when an event
reaches it, and the event goes on to the other runs and the matcher. A tap on a button or quick reply
this run sent, whose port its node no longer has, exits it `graph_changed` with that port — unless
another run takes the tap.
"""

from __future__ import annotations

import copy
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from automations.models import AutomationRun, RunStatus, StepOutcome, StepRun, WaitingFor
from automations.nodes import registry
from automations.nodes.base import Answer, InboundReply, NodeContext
from automations.runtime.effects import Effects
from automations.runtime.engine import GraphView
from automations.runtime.resume import exit_graph_changed, resume_waiting, waiting_entry_port
from automations.runtime.runs import write_run
from automations.store.runs import LoadedRun
from contacts.models import Contact, Message, MessageDirection

# Waits an inbound event can end: those of the node kinds that answer replies (`answer`).
WAITING_KINDS = registry.answered_waiting_for()


def _waiting_runs(contact: Contact, account_id: str):
    return (AutomationRun.objects.filter(
        contact=contact, status=RunStatus.WAITING, waiting_for__in=WAITING_KINDS,
    ).filter(Q(social_account_id=account_id) | Q(social_account__isnull=True))
        .select_related("automation", "social_account", "conversation").order_by("started_at", "id"))


def offer_to_waiting_runs(contact: Contact, account, reply: InboundReply, *,
                          now: datetime | None = None) -> AutomationRun | None:
    """Resume the one waiting run this event answers; return it, or None if no run consumed it."""
    now = now or timezone.now()
    orphaned_tap = None  # (run, port): a tap on a button this run sent whose port is gone
    for run in _waiting_runs(contact, account.pk):
        graph = GraphView(run.automation.graph)
        node = graph.node(run.current_node_key)
        if node is None:
            exit_graph_changed(run, now)  # nothing can resume it any more; the event goes on
            continue
        answer = registry.answerer(node.get("kind"), run.waiting_for)
        if answer is None:
            continue
        ports = graph.ports(node)
        ctx = NodeContext(node=node, run=run, context=run.context or {}, contact=contact, automation=run.automation,
                          effects=None, now=now, ports=ports)
        answered = answer(ctx, reply)
        if answered is None:
            if orphaned_tap is None and _tapped_a_removed_port(run, ports, reply):
                orphaned_tap = (run, reply.tap_port)
            continue
        if answered.port is None:
            moved = _ask_again(LoadedRun.unread(run), node, answered, now)
        else:
            moved = resume_waiting(run, answered.port, context_updates=answered.context_updates,
                                   payload=answered.payload, now=now)
        if moved:
            return run
    if orphaned_tap is not None:
        run, port = orphaned_tap
        exit_graph_changed(run, now, port)
    return None


def _tapped_a_removed_port(run: AutomationRun, ports: list[str], reply: InboundReply) -> bool:
    """Was this tap on a button/quick reply the run's waiting message sent, now gone from the node?

    Checking what this run sent keeps a tap meant for another run (or a stale message) from retiring it."""
    if not reply.is_tap or run.waiting_for != WaitingFor.REPLY:
        return False
    if reply.tap_port in ports:
        return False
    field_name = {"button": "buttons", "quick_reply": "quick_replies"}.get(reply.interactive_type)
    if field_name is None:
        return False
    sent = (Message.objects.filter(run_id=run.pk, node_key=run.current_node_key, direction=MessageDirection.OUTBOUND)
            .values_list("payload", flat=True))
    return any(isinstance(item, dict) and str(item.get("id")) == str(reply.interactive_id)
               for payload in sent for item in (payload or {}).get(field_name) or [])


def _ask_again(loaded: LoadedRun, node: dict, answered: Answer, now: datetime) -> bool:
    """A reply the node did not accept, with attempts left: record it, re-send the prompt, keep waiting."""
    run = loaded.run
    context = copy.deepcopy(run.context or {})
    context.update(answered.context_updates)
    prompt = _last_prompt(run)
    entered_via = waiting_entry_port(loaded)
    with transaction.atomic():
        if not write_run(run, context=context):
            return False
        payload = {**answered.payload, "reprompted_message_ids": []}
        if prompt:
            effects = Effects(run=run, contact=run.contact, automation=run.automation)
            payload["reprompted_message_ids"] = effects.send_message(node_key=prompt[0], parts=prompt[1])
            effects.apply()
        StepRun.objects.create(
            run_id=run.pk, automation_id=run.automation_id, node_key=node["key"], node_kind=node.get("kind", ""),
            entered_via_port_key=entered_via, outcome=StepOutcome.WAITING, payload=payload, executed_at=now,
        )
    return True


def _last_prompt(run: AutomationRun) -> tuple[str, list[dict]] | None:
    """The parts of the last message node this run sent (its step payload): the prompt to repeat."""
    step = (StepRun.objects.filter(run_id=run.pk, node_kind="message", outcome=StepOutcome.SUCCESS)
            .order_by("-executed_at", "-id").values("node_key", "payload").first())
    parts = (step or {}).get("payload", {}).get("parts") if step else None
    return (step["node_key"], copy.deepcopy(parts)) if parts else None
