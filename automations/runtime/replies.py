"""Offering an inbound event to the contact's waiting runs — at most one consumes it.

- A button or quick-reply tap goes to the run waiting on a message node that has exactly that
  `button.<id>` / `quick_reply.<id>` port (the oldest such run; other runs stay waiting).
- A plain reply goes to a run waiting on an `input` node (validated by `input_type`, with attempts)
  or on a `wait_for_reply` message (→ `next`); typing a button/quick-reply label counts as the tap.
- A `wait_event` node consumes events whose kind is in its `event_kinds` (→ `received`).
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
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from automations.graph.regex_guard import safe_regex_search
from automations.models import AutomationRun, InboundKind, RunStatus, StepOutcome, StepRun, WaitingFor
from automations.nodes import message as message_node
from automations.runtime.effects import Effects
from automations.runtime.engine import GraphView
from automations.runtime.resume import exit_graph_changed, resume_waiting, waiting_entry_port
from automations.runtime.runs import write_run
from contacts.models import Contact, Message, MessageDirection

REPLY_KINDS = {InboundKind.DM_RECEIVED, InboundKind.STORY_REPLY}  # events that count as "the contact answered"
SKIP_WORDS = {"skip"}
ATTEMPTS_KEY = "input_attempts"  # context[ATTEMPTS_KEY][node_key] = invalid attempts so far
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


@dataclass
class InboundReply:
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


# -- input validation -------------------------------------------------------------------------------

def normalise_phone(text: str) -> str | None:
    compact = re.sub(r"[\s\-().]", "", text or "")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if _E164.match(compact) else None


def _number(text: str):
    cleaned = (text or "").strip().replace(" ", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(value) if value.is_integer() else value


def _mime_ok(mime: str, accepted: list) -> bool:
    if not accepted:
        return True
    mime = (mime or "").lower()
    for pattern in accepted:
        pattern = str(pattern).lower()
        if pattern == mime or (pattern.endswith("/*") and mime.startswith(pattern[:-1])):
            return True
    return False


def evaluate_input(config: dict, reply: InboundReply) -> tuple[bool, object, str | None]:
    """(valid, captured value, reason if invalid) for one reply to an input node."""
    input_type = config.get("input_type") or "text"
    text = (reply.text or "").strip()
    validation = config.get("validation") if isinstance(config.get("validation"), dict) else {}
    if input_type == "file":
        files = [a for a in reply.attachments if isinstance(a, dict)]
        if not files:
            return False, None, "no_file"
        attachment = files[0]
        if not _mime_ok(attachment.get("mime_type", ""), config.get("accepted_mime_types") or []):
            return False, None, "mime_type_not_accepted"
        size = attachment.get("size_bytes") or attachment.get("size") or 0
        max_mb = config.get("max_size_mb")
        if max_mb and isinstance(size, int | float) and size > max_mb * 1024 * 1024:
            return False, None, "file_too_large"
        return True, attachment, None
    if not text:
        return False, None, "empty"
    if input_type == "email":
        return (True, text.lower(), None) if _EMAIL.match(text) else (False, None, "not_an_email")
    if input_type == "phone":
        phone = normalise_phone(text)
        return (True, phone, None) if phone else (False, None, "not_a_phone_number")
    if input_type == "number":
        value = _number(text)
        if value is None:
            return False, None, "not_a_number"
        if isinstance(validation.get("min"), int | float) and value < validation["min"]:
            return False, None, "below_min"
        if isinstance(validation.get("max"), int | float) and value > validation["max"]:
            return False, None, "above_max"
        return True, value, None
    if input_type == "choice":
        folded = text.casefold()
        for choice in config.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            words = [choice.get("value"), choice.get("label"), *(choice.get("match") or [])]
            if any(str(w).strip().casefold() == folded for w in words if w is not None):
                return True, choice.get("value"), None
        return False, None, "not_a_choice"
    # text
    if isinstance(validation.get("min"), int) and len(text) < validation["min"]:
        return False, None, "too_short"
    if isinstance(validation.get("max"), int) and len(text) > validation["max"]:
        return False, None, "too_long"
    pattern = validation.get("pattern")
    if isinstance(pattern, str) and pattern and safe_regex_search(pattern, text) is None:
        return False, None, "pattern_mismatch"
    return True, text, None


# -- routing ----------------------------------------------------------------------------------------

# Waits an inbound event can end. A message still being delivered (its parts go out one by one) takes
# a tap on a button it already sent, as it would once delivered.
WAITING_KINDS = (WaitingFor.INPUT, WaitingFor.REPLY, WaitingFor.INBOUND_EVENT, WaitingFor.DELIVERY)


def _waiting_runs(contact: Contact, account_id: str):
    return (AutomationRun.objects.filter(
        contact=contact, status=RunStatus.WAITING, waiting_for__in=WAITING_KINDS,
    ).filter(Q(social_account_id=account_id) | Q(social_account__isnull=True))
        .select_related("automation", "social_account", "conversation").order_by("started_at", "id"))


def _label_port(config: dict, text: str) -> str | None:
    """A typed reply equal to a branch button's or quick reply's label acts as the tap."""
    folded = (text or "").strip().casefold()
    if not folded:
        return None
    for button in message_node.branch_buttons(config):
        if str(button.get("label", "")).strip().casefold() == folded:
            return f"button.{button.get('id')}"
    for quick in config.get("quick_replies") or []:
        if isinstance(quick, dict) and str(quick.get("label", "")).strip().casefold() == folded:
            return f"quick_reply.{quick.get('id')}"
    return None


def _message_port(run: AutomationRun, node: dict, ports: list[str], reply: InboundReply) -> str | None:
    if node.get("kind") != "message" or run.waiting_for not in (WaitingFor.REPLY, WaitingFor.DELIVERY):
        return None
    config = node.get("config") or {}
    if reply.is_tap:
        return reply.tap_port if reply.tap_port in ports else None
    if run.waiting_for == WaitingFor.DELIVERY:  # typed text answers the message once it is all out
        return None
    if reply.kind not in REPLY_KINDS:
        return None
    port = _label_port(config, reply.text)
    if port in ports:
        return port
    return "next" if config.get("wait_for_reply") else None


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
        ports = graph.ports(node)
        kind = node.get("kind")
        moved = False
        if kind == "message":
            port = _message_port(run, node, ports, reply)
            if port is not None:
                moved = resume_waiting(run, port, context_updates=_reply_context(node, reply, port),
                                       payload={"reply": reply.summary()}, now=now)
            else:
                if orphaned_tap is None and _tapped_a_removed_port(run, ports, reply):
                    orphaned_tap = (run, reply.tap_port)
                continue
        elif kind == "input" and run.waiting_for == WaitingFor.INPUT and not reply.is_tap \
                and reply.kind in REPLY_KINDS:
            moved = _answer_input(run, node, ports, reply, now)
        elif kind == "wait_event" and run.waiting_for == WaitingFor.INBOUND_EVENT:
            kinds = (node.get("config") or {}).get("event_kinds") or []
            if reply.kind not in kinds:
                continue
            moved = resume_waiting(run, "received", context_updates={"last_event": reply.summary()},
                                   payload={"event": reply.summary()}, now=now)
        else:
            continue
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


def _reply_context(node: dict, reply: InboundReply, port: str) -> dict:
    if reply.is_tap or port.startswith(("button.", "quick_reply.")):
        chosen = port.split(".", 1)[1]
        return {"last_button": {"node_key": node["key"], "port": port, "id": chosen}}
    return {"last_reply": reply.text}


def _answer_input(run: AutomationRun, node: dict, ports: list[str], reply: InboundReply, now: datetime) -> bool:
    config = node.get("config") or {}
    node_key = node["key"]
    if "skip" in ports and (reply.text or "").strip().casefold() in SKIP_WORDS:
        return resume_waiting(run, "skip", payload={"reply": reply.summary(), "skipped": True}, now=now)
    valid, value, reason = evaluate_input(config, reply)
    attempts = dict((run.context or {}).get(ATTEMPTS_KEY) or {})
    attempt = int(attempts.get(node_key, 0)) + 1
    if valid:
        attempts.pop(node_key, None)
        target = config.get("field") or node_key
        return resume_waiting(run, "captured", context_updates={target: value, ATTEMPTS_KEY: attempts},
                              payload={"reply": reply.summary(), "captured": value, "attempt": attempt}, now=now)
    max_attempts = config.get("max_retries") or 1
    attempts[node_key] = attempt
    payload = {"reply": reply.summary(), "invalid": reason, "attempt": attempt, "max_attempts": max_attempts}
    if attempt >= max_attempts:
        attempts.pop(node_key, None)
        return resume_waiting(run, "invalid", context_updates={ATTEMPTS_KEY: attempts}, payload=payload, now=now)
    return _retry_input(run, node, attempts, payload, now)


def _retry_input(run: AutomationRun, node: dict, attempts: dict, payload: dict, now: datetime) -> bool:
    """An invalid reply with attempts left: record it, re-send the prompt, keep waiting."""
    context = copy.deepcopy(run.context or {})
    context[ATTEMPTS_KEY] = attempts
    prompt = _last_prompt(run)
    entered_via = waiting_entry_port(run)
    with transaction.atomic():
        if not write_run(run, context=context):
            return False
        payload = {**payload, "reprompted_message_ids": []}
        if prompt:
            effects = Effects(run=run, contact=run.contact, automation=run.automation)
            payload["reprompted_message_ids"] = effects.send_message(node_key=prompt[0], parts=prompt[1])
            effects.apply()
        StepRun.objects.create(
            run_id=run.pk, automation_id=run.automation_id, node_key=node["key"], node_kind="input",
            entered_via_port_key=entered_via, outcome=StepOutcome.WAITING, payload=payload, executed_at=now,
        )
    return True


def _last_prompt(run: AutomationRun) -> tuple[str, list[dict]] | None:
    """The parts of the last message node this run sent (its step payload): the prompt to repeat."""
    step = (StepRun.objects.filter(run_id=run.pk, node_kind="message", outcome=StepOutcome.SUCCESS)
            .order_by("-executed_at", "-id").values("node_key", "payload").first())
    parts = (step or {}).get("payload", {}).get("parts") if step else None
    return (step["node_key"], copy.deepcopy(parts)) if parts else None
