"""One inbound channel event, end to end: record it once, upsert who sent it, then resume or enroll.

Order of work (ARCHITECTURE "Data flow"):
1. In one transaction: claim the `(organization, event_id)` slot in automation_inbound_events
   (INSERT … ON CONFLICT DO NOTHING), take a session advisory lock on the row, upsert contact +
   identity + conversation, and log the inbound Message. A delivery of the same id answers
   `duplicate` at once while that lock is held (the first attempt is still processing) or once the
   row has its outcome; a retry finding the row unfinished (outcome NULL) and the lock free (the first
   attempt failed after the claim committed) takes the lock and processes it instead. The sender may
   never retry: the scheduler tick does the same for events still unfinished
   RELAY_INBOUND_UNFINISHED_GRACE_SECONDS after they were received (`complete_unfinished`), their
   inputs read back from the event row and its inbound Message (which keeps everything matching needs).
2. Offer the event to the contact's waiting runs (`runtime.replies`); at most one consumes it.
3. Otherwise the matcher picks an entrypoint (then a binding) and `enrollment.enroll` applies the
   pause and re-entry rules. A match blocked by re-entry or a global pause does not fall through; one
   blocked by a pause scoped to its automation does (the next match takes the event).
4. The event row keeps the outcome, the run and the matcher's trace for the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from automations.models import (
    CONTACT_CHANGE_KINDS,
    EnrollBlocked,
    Entrypoint,
    InboundEvent,
    InboundKind,
    InboundOutcome,
)
from automations.runtime import enrollment, internal_events, matcher, replies
from automations.store import inbound as store
from contacts.actions import Sender, change_tags_and_fields, upsert_sender
from contacts.models import (
    Contact,
    Conversation,
    DeliveryStatus,
    Message,
    MessageDirection,
    SocialAccount,
)
from relay.observability import metrics

logger = logging.getLogger(__name__)

@dataclass
class InboundResult:
    event: InboundEvent
    outcome: str
    run_id: str | None

    def as_response(self) -> dict:
        return {
            "event_id": self.event.event_id,
            "contact_id": self.event.contact_id,
            "conversation_id": self.event.conversation_id,
            "outcome": self.outcome,
            "run_id": self.run_id,
        }


def upsert_conversation(contact: Contact, account: SocialAccount, now: datetime) -> Conversation:
    conversation = Conversation.objects.filter(contact=contact, social_account=account).first()
    if conversation is None:
        try:
            with transaction.atomic():
                conversation = Conversation.objects.create(organization_id=contact.organization_id, contact=contact,
                                                           social_account=account, created_at=now)
        except IntegrityError:
            conversation = Conversation.objects.get(contact=contact, social_account=account)
    return conversation


def _unfinished(event: InboundEvent) -> InboundEvent | None:
    """Take over an already-claimed event whose processing never finished (a crash after the claim
    committed): return it fresh, with its lock held; else None (a true duplicate). An attempt still
    processing holds the lock, so this answers None at once instead of waiting for it."""
    if event.outcome is not None:
        return None
    row_id = event.pk
    if not store.try_lock_event(row_id):
        return None
    event = InboundEvent.objects.select_related("contact", "conversation").filter(pk=row_id).first()
    if event is None or event.outcome is not None or event.contact_id is None:
        store.unlock_event(row_id)
        return None
    return event


@dataclass
class _Slot:
    event: InboundEvent  # the original row when `duplicate`
    duplicate: bool
    recorded: object = None  # what `record` returned besides the event (None: a retry took the event over)


@contextmanager
def _event_slot(account: SocialAccount, event_id: str, now: datetime,
                record: Callable[[str], tuple[InboundEvent, object]]) -> Iterator[_Slot]:
    """Claim `event_id` and run `record(row_id)` in the claim's transaction, or take over an unfinished
    event of that id, or report a duplicate. The event's lock is held for the block (released at its end)."""
    recorded, row_id = None, None
    try:
        with transaction.atomic():
            # The lock is session-level: it outlives the claim's commit, so while it is held a delivery of
            # the same event_id knows processing is under way, while the processing itself runs with no
            # transaction open (runs call out only with their state committed).
            claimed_id = InboundEvent._meta.pk.get_default()
            if store.claim_event(claimed_id, account.organization_id, event_id, now):  # with the event's lock
                row_id = claimed_id
                event, recorded = record(row_id)
    except BaseException:
        # After the rollback (a session lock outlives it), so a failed statement's aborted transaction
        # cannot hide the original error; a lost connection took the lock with it.
        if row_id is not None:
            try:
                store.unlock_event(row_id)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                logger.warning("inbound: could not release the lock of event row %s", row_id, exc_info=True)
        raise
    if row_id is None:
        original = InboundEvent.objects.get(organization_id=account.organization_id, event_id=event_id)
        event = _unfinished(original)
        if event is None:
            yield _Slot(original, duplicate=True)
            return
    try:
        yield _Slot(event, duplicate=False, recorded=recorded)
    finally:
        store.unlock_event(event.pk)


def _counted(receive):
    """Count every event received by its outcome (`error`: processing raised; the sender retries)."""

    @wraps(receive)
    def counted(*args, **kwargs) -> InboundResult:
        try:
            result = receive(*args, **kwargs)
        except Exception:
            metrics.inbound_event("error").inc()
            raise
        metrics.inbound_event(result.outcome).inc()
        return result

    return counted


@_counted
def receive_event(account: SocialAccount, *, event_id: str, kind: str, sender: Sender, text: str = "",
                  interactive: dict | None = None, post_id: str | None = None, story_id: str | None = None,
                  parent_comment_id: str | None = None, attachments: list | None = None,
                  occurred_at: datetime | None = None, raw: dict | None = None,
                  now: datetime | None = None) -> InboundResult:
    """Record the event once and process it; a retry of an event whose processing failed midway
    (outcome still NULL) processes it then, so every event is processed exactly once."""
    now = now or timezone.now()
    interactive = interactive or {}

    def record(row_id):
        return _record(account, row_id, event_id=event_id, kind=kind, sender=sender, text=text,
                       interactive=interactive, post_id=post_id, story_id=story_id,
                       parent_comment_id=parent_comment_id, attachments=attachments, occurred_at=occurred_at,
                       raw=raw, now=now)

    with _event_slot(account, event_id, now, record) as slot:
        event = slot.event
        if slot.duplicate:
            return InboundResult(event, InboundOutcome.DUPLICATE, None)
        message = slot.recorded or _recorded_message(event)
        if message is None or event.conversation is None:  # the conversation went away meanwhile
            return InboundResult(event, InboundOutcome.DUPLICATE, None)
        return _process(account, event, event.contact, event.conversation, message, event_id=event_id, kind=kind,
                        text=text, interactive=interactive, post_id=post_id, story_id=story_id,
                        parent_comment_id=parent_comment_id, attachments=attachments, now=now)


def _recorded_message(event: InboundEvent) -> Message | None:
    """The inbound Message recorded with `event` (None: its conversation went away since)."""
    return (Message.objects.filter(conversation_id=event.conversation_id, direction=MessageDirection.INBOUND,
                                   payload__event_id=event.event_id).order_by("created_at", "id").first())


def _record(account, row_id, *, event_id, kind, sender, text, interactive, post_id, story_id, parent_comment_id,
            attachments, occurred_at, raw, now):
    """Step 1 (inside the claim's transaction): contact, then in one statement the conversation (created,
    or its last_inbound_at moved), the inbound Message and the event row's links."""
    contact = upsert_sender(account, sender)
    conversation = Conversation(organization_id=contact.organization_id, contact_id=contact.pk,
                                social_account_id=account.pk, created_at=now, last_inbound_at=occurred_at or now)
    message = Message(
        organization_id=account.organization_id, conversation_id=None,
        direction=MessageDirection.INBOUND, text=text or "", status=DeliveryStatus.RECEIVED,
        payload={"kind": kind, "event_id": event_id, "interactive": interactive or None, "post_id": post_id,
                 "story_id": story_id, "parent_comment_id": parent_comment_id, "attachments": attachments or []},
        created_at=now,
    )
    event = InboundEvent(id=row_id, organization_id=account.organization_id, event_id=event_id,
                         social_account=account, kind=kind, contact=contact, payload=raw or {}, trace=[],
                         received_at=now)
    conversation = store.record_event(event, conversation, message)
    conversation.social_account = account
    message.conversation = conversation
    message._state.adding, event._state.adding = False, False
    event.conversation = conversation
    return event, message


def _process(account, event, contact, conversation, message, *, event_id, kind, text, interactive, post_id,
             story_id, parent_comment_id, attachments, now) -> InboundResult:
    """Steps 2-4: offer to waiting runs, else match and enroll; record the outcome on the event row."""
    situation = store.situation(account, contact, message, kind, replies.WAITING_KINDS)
    if situation.any_waiting:
        reply = replies.InboundReply(
            kind=kind, text=text or "", interactive_type=interactive.get("type"),
            interactive_id=interactive.get("id"), attachments=attachments or [], message_id=message.id,
            event_id=event_id,
        )
        resumed_run = replies.offer_to_waiting_runs(contact, account, reply, now=now)
        if resumed_run is not None:
            return _finish(event, InboundOutcome.RESUMED, resumed_run.id, [{"resumed_run_id": resumed_run.id}])

    facts = matcher.EventFacts(
        kind=kind, channel=account.channel, social_account_id=account.id, text=text or "", post_id=post_id,
        story_id=story_id, parent_comment_id=parent_comment_id, payload_id=interactive.get("id"),
        first_message=situation.first_message, first_on_channel=situation.first_on_channel,
    )
    trigger = {"kind": kind, "event_id": event_id, "text": text or "", "message_id": message.id}
    for key, value in (("post_id", post_id), ("story_id", story_id), ("payload_id", interactive.get("id"))):
        if value:
            trigger[key] = value
    # A pause scoped to the matched automation skips only that one: match again without it, so the next
    # entrypoint (or binding) that fits takes the event. A global pause, or re-entry, ends the matching.
    passed_over: dict[str, str] = {}
    paused_skip = None  # the first skip recorded for a scoped pause: the outcome if nothing else enrolls
    while True:
        decision = matcher.decide(account.organization_id, facts, contact, candidates=situation.candidates,
                                  passed_over=passed_over)
        source = decision.entrypoint or decision.binding
        if source is None:
            if paused_skip is not None:
                return _finish(event, InboundOutcome.CONTACT_PAUSED, paused_skip.run.id, decision.trace)
            return _finish(event, InboundOutcome.NO_MATCH, None, decision.trace)
        result = enrollment.enroll(
            source.automation, contact, entrypoint=decision.entrypoint, binding=decision.binding,
            conversation=conversation, social_account=account, context={"trigger": trigger},
            source=enrollment.TRIGGER, now=now,
        )
        if result.ok:
            return _finish(event, InboundOutcome.ENROLLED, result.run.id, decision.trace)
        decision.trace[-1]["result"] = result.blocked
        if result.blocked == EnrollBlocked.CONTACT_PAUSED and not result.pause_global:
            passed_over[source.automation_id] = result.blocked
            paused_skip = paused_skip or result
            continue
        return _finish(event, result.inbound_outcome, result.run.id if result.run else None, decision.trace)


def _finish(event: InboundEvent, outcome: str, run_id: str | None, trace: list) -> InboundResult:
    event.outcome = outcome
    event.run_id = run_id
    event.trace = trace
    store.finish_event(event.pk, outcome, run_id, trace)
    return InboundResult(event, outcome, run_id)


def record_webhook_delivery(entrypoint: Entrypoint, contact: Contact, body: dict, outcome: str,
                            run_id: str | None, result: str) -> InboundEvent:
    """Keep a webhook delivery like a channel event: its outcome and a one-entry trace (the webhook's
    entrypoint and what became of it), so the admin answers "why was this contact never enrolled?" for
    webhooks too. A delivery has no provider event id: the row's own id stands in."""
    event = InboundEvent(organization_id=entrypoint.organization_id, kind=InboundKind.WEBHOOK_INBOUND,
                         social_account_id=entrypoint.social_account_id, contact=contact, payload=body,
                         outcome=outcome, run_id=run_id,
                         trace=[{"entrypoint_id": entrypoint.id, "automation_id": entrypoint.automation_id,
                                 "specificity": entrypoint.specificity, "priority": entrypoint.priority,
                                 "result": result}])
    event.event_id = f"webhook:{event.pk}"
    event.save(force_insert=True)
    metrics.inbound_event(outcome).inc()
    return event


def _apply_contact_change(contact: Contact, kind: str, tag: str | None, field: str | None, value) -> list:
    """Apply one platform-side tag/field change to the contact; return the internal events it produced
    (empty when nothing changed: the tag was already there, the value already equal)."""
    if kind == InboundKind.TAG_APPLIED:
        changes = change_tags_and_fields(contact, add_tags=[tag])
    elif kind == InboundKind.TAG_REMOVED:
        changes = change_tags_and_fields(contact, remove_tags=[tag])
    else:
        changes = change_tags_and_fields(contact, set_fields={field: value})
    return [[kind, data] for kind, data in internal_events.events_from_changes(
        changes["tags_added"], changes["tags_removed"], changes["fields_changed"])]


@_counted
def receive_contact_change(account: SocialAccount, *, event_id: str, kind: str, sender: Sender,
                           tag: str | None = None, field: str | None = None, value=None, raw: dict | None = None,
                           now: datetime | None = None) -> InboundResult:
    """A tag/field change reported by the platform: apply it to the contact once (idempotent by event_id),
    then start the automations listening for it, as a change through the contacts API does. The
    events to fire are kept on the event row so a retry after a failure fires them exactly once."""
    now = now or timezone.now()

    def record(row_id):
        contact = upsert_sender(account, sender)
        conversation = upsert_conversation(contact, account, now)
        event = InboundEvent.objects.get(pk=row_id)
        event.social_account, event.kind, event.contact, event.conversation = account, kind, contact, conversation
        event.payload = raw or {}
        event.trace = [{"pending_events": _apply_contact_change(contact, kind, tag, field, value)}]
        event.save(update_fields=["social_account", "kind", "contact", "conversation", "payload", "trace"])
        return event, None

    with _event_slot(account, event_id, now, record) as slot:
        event = slot.event
        if slot.duplicate:
            return InboundResult(event, InboundOutcome.DUPLICATE, None)
        return _fire_pending(event)


def _fire_pending(event: InboundEvent) -> InboundResult:
    """A recorded contact change's processing: fire the internal events kept on its row."""
    pending = [tuple(item) for item in ((event.trace or [{}])[0].get("pending_events") or [])]
    contact = Contact.objects.get(pk=event.contact_id)
    reports = internal_events.fire(contact, pending)
    started = [r["run_id"] for r in reports if r.get("run_id")]
    if started:
        return _finish(event, InboundOutcome.ENROLLED, started[0], reports)
    outcome = EnrollBlocked.inbound_outcome_of({r.get("blocked") for r in reports})
    return _finish(event, outcome, None, reports)


# ------------------------------------------------------------------------- unfinished events (the tick)

UNFINISHED_BATCH = 50


def unfinished_event_ids(now: datetime | None = None, limit: int = UNFINISHED_BATCH) -> list[str]:
    """Recorded events still without an outcome RELAY_INBOUND_UNFINISHED_GRACE_SECONDS after they were
    received, oldest first: their attempt died after the record committed (the live ones are skipped
    by `complete_unfinished`, which tries their lock)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.RELAY_INBOUND_UNFINISHED_GRACE_SECONDS)
    return store.unfinished_event_ids(cutoff, limit)


def complete_unfinished(row_ids: list[str]) -> int:
    """Process each event the way its sender's retry would, if no live attempt holds its lock and it is
    still unfinished once the lock is ours (so two sweeps, or a sweep and a retry, process it once);
    return how many were completed. One event failing does not stop the others (it is tried again later)."""
    completed = 0
    for row_id in row_ids:
        if not store.try_lock_event(row_id):
            continue
        try:
            result = _complete(row_id)
        except Exception:  # noqa: BLE001 - logged; the next sweep tries it again
            logger.exception("inbound: completing unfinished event row %s failed", row_id)
            metrics.inbound_event("error").inc()
            continue
        finally:
            store.unlock_event(row_id)
        if result is not None:
            metrics.inbound_event(result.outcome).inc()
            completed += 1
    return completed


def _complete(row_id: str) -> InboundResult | None:
    """Steps 2-4 for an event whose record committed, its inputs read back from the stored rows (the event,
    its inbound Message); None if it is finished meanwhile. The caller holds the event's lock."""
    event = (InboundEvent.objects.select_related("social_account", "contact", "conversation")
             .filter(pk=row_id, outcome__isnull=True).first())
    if event is None:
        return None
    if event.kind in CONTACT_CHANGE_KINDS and event.contact is not None:
        return _fire_pending(event)
    account, message = event.social_account, None
    if account is not None and event.contact is not None and event.conversation is not None:
        message = _recorded_message(event)
    if message is None:  # its account, contact or conversation was deleted since: nothing left to process
        return _finish(event, InboundOutcome.NO_MATCH, None, [{"result": "sender_deleted"}])
    stored = message.payload or {}
    return _process(account, event, event.contact, event.conversation, message, event_id=event.event_id,
                    kind=event.kind, text=message.text, interactive=stored.get("interactive") or {},
                    post_id=stored.get("post_id"), story_id=stored.get("story_id"),
                    parent_comment_id=stored.get("parent_comment_id"),
                    attachments=stored.get("attachments") or [], now=timezone.now())
