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
from functools import lru_cache, wraps

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from automations.models import (
    CONTACT_CHANGE_KINDS,
    ActiveStatus,
    Automation,
    AutomationRun,
    AutomationStatus,
    EnrollBlocked,
    Entrypoint,
    InboundEvent,
    InboundKind,
    InboundOutcome,
    RunStatus,
)
from automations.runtime import enrollment, internal_events, matcher, replies
from automations.store import base as sql
from contacts.actions import Sender, change_tags_and_fields, upsert_sender
from contacts.models import (
    Contact,
    ContactIdentity,
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


def _claim_event_slot(organization_id: str, event_id: str, now: datetime) -> str | None:
    """Insert the event row unless that event_id was seen, and take the new row's lock; return the new
    row id or None (duplicate). The lock is session-level: it outlives the claim's commit, so while it is
    held a delivery of the same event_id knows processing is under way, while the processing itself runs
    with no transaction open (runs call out only with their state committed). Nobody else can know the
    new id yet, so taking it never waits."""
    row_id = InboundEvent._meta.pk.get_default()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH claim AS (INSERT INTO {InboundEvent._meta.db_table}
                (id, organization_id, event_id, kind, payload, trace, received_at)
                VALUES (%s, %s, %s, '', '{{}}'::jsonb, '[]'::jsonb, %s)
                ON CONFLICT (organization_id, event_id) DO NOTHING RETURNING id)
                SELECT id, pg_advisory_lock(hashtextextended('{_LOCK_PREFIX}' || id, 0))::text FROM claim""",
            [row_id, organization_id, event_id, now],
        )
        inserted = cursor.fetchone()
    return inserted[0] if inserted else None


def upsert_sender_row(contact: Contact, identity: ContactIdentity, name: str) -> Contact | None:
    """`contacts.actions.upsert_sender`'s statement, for a would-be new `contact` and its `identity`: the
    contact found or created; None when another event created it after this statement's snapshot."""
    rows = sql.execute(_upsert_sender_text(), {
        "account": identity.social_account_id, "user": identity.platform_user_id, "name": name,
        "now": timezone.now(), **_prepared(contact, "c_"), **_prepared(identity, "i_")})
    return sql.instance(Contact, rows[0]) if rows else None


def _prepared(obj, prefix: str) -> dict:
    """`obj`'s insert values (`sql.insert_values`), keyed prefix+column for named parameters."""
    return {prefix + field.column: value
            for field, value in zip(sql.insert_fields(type(obj)), sql.insert_values(obj), strict=True)}


def _insert_values(model, prefix: str, **expressions) -> tuple[str, str]:
    """(column list, value list) for an INSERT of `model` from `_prepared` parameters; `expressions`
    replace the parameter of some columns by SQL."""
    fields = sql.insert_fields(model)
    columns = ", ".join(f'"{field.column}"' for field in fields)
    values = ", ".join(expressions.get(field.column, f"%({prefix}{field.column})s") for field in fields)
    return columns, values


@lru_cache(maxsize=1)
def _upsert_sender_text() -> str:
    """The contact behind (account, platform user id), its empty name filled in if the event brings one;
    else a new contact and identity. The identity goes first, ON CONFLICT DO NOTHING, so two events for
    the same new person never make two contacts: the loser returns no row (its snapshot predates the
    winner's commit) and reads the winner's contact afterwards."""
    contacts, identities = Contact._meta.db_table, ContactIdentity._meta.db_table
    contact_columns, contact_values = _insert_values(Contact, "c_")
    identity_columns, identity_values = _insert_values(ContactIdentity, "i_")
    return (
        f'WITH found AS (SELECT {sql.select_list(Contact, "c")} FROM "{identities}" i JOIN "{contacts}" c '
        f'ON c."id" = i."contact_id" WHERE i."social_account_id" = %(account)s AND i."platform_user_id" = %(user)s), '
        f'named AS (UPDATE "{contacts}" c SET "name" = %(name)s, "updated_at" = %(now)s FROM found f '
        f"WHERE c.\"id\" = f.\"id\" AND c.\"name\" = '' AND %(name)s <> '' RETURNING {sql.select_list(Contact, 'c')}), "
        f'identity AS (INSERT INTO "{identities}" ({identity_columns}) SELECT {identity_values} '
        f"WHERE NOT EXISTS (SELECT 1 FROM found) "
        f'ON CONFLICT ("social_account_id", "platform_user_id") DO NOTHING RETURNING "contact_id"), '
        f'created AS (INSERT INTO "{contacts}" ({contact_columns}) SELECT {contact_values} FROM identity '
        f"RETURNING {contact_columns}) "
        f"SELECT * FROM named UNION ALL SELECT * FROM found WHERE NOT EXISTS (SELECT 1 FROM named) "
        f"UNION ALL SELECT * FROM created"
    )


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


def _situation(account: SocialAccount, contact: Contact, message: Message, kind: str
               ) -> tuple[bool, bool, bool, list]:
    """What processing an event needs to know, read in one statement once the event is recorded:
    is this the first inbound message of its conversation, the contact's first on the channel, does the
    contact have a run waiting for an inbound event (only then are the waiting runs read and offered the
    event), and the candidate entrypoints in match order (`matcher.candidate_entrypoints`).
    "First" ignores `message` itself (it may be a retry's) and counts messages up to its created_at."""
    rows = sql.execute(_situation_text(), {
        "conversation": message.conversation_id, "created": message.created_at, "message": message.pk,
        "contact": contact.pk, "channel": account.channel, "account": account.pk,
        "organization": account.organization_id, "kind": kind})
    first_message, first_on_channel, any_waiting = rows[0][:3]
    width = len(Entrypoint._meta.concrete_fields)
    candidates = []
    for row in rows:
        entrypoint = sql.instance(Entrypoint, row[3:3 + width])
        if entrypoint is None:  # the LEFT JOIN found none
            break
        Entrypoint._meta.get_field("automation").set_cached_value(
            entrypoint, sql.instance(Automation, row[3 + width:]))
        candidates.append(entrypoint)
    return first_message, first_on_channel, any_waiting, candidates


@lru_cache(maxsize=1)
def _situation_text() -> str:
    messages, conversations = Message._meta.db_table, Conversation._meta.db_table
    earlier = (f'SELECT 1 FROM "{messages}" m WHERE m."direction" = \'{MessageDirection.INBOUND}\' '
               f'AND m."created_at" <= %(created)s AND m."id" <> %(message)s')
    waiting_for = ", ".join(f"'{w}'" for w in replies.WAITING_KINDS)
    return (
        f"SELECT f.*, {sql.select_list(Entrypoint, 'e')}, {sql.select_list(Automation, 'a')} FROM (SELECT "
        f'NOT EXISTS ({earlier} AND m."conversation_id" = %(conversation)s), '
        f'NOT EXISTS ({earlier} AND m."conversation_id" IN (SELECT cv."id" FROM "{conversations}" cv '
        f'JOIN "{SocialAccount._meta.db_table}" sa ON sa."id" = cv."social_account_id" '
        f'WHERE cv."contact_id" = %(contact)s AND sa."channel" = %(channel)s)), '
        f'EXISTS (SELECT 1 FROM "{AutomationRun._meta.db_table}" r WHERE r."contact_id" = %(contact)s '
        f"AND r.\"status\" = '{RunStatus.WAITING}' AND r.\"waiting_for\" IN ({waiting_for}) "
        f'AND (r."social_account_id" = %(account)s OR r."social_account_id" IS NULL))) f '
        f'LEFT JOIN ("{Entrypoint._meta.db_table}" e JOIN "{Automation._meta.db_table}" a '
        f"ON a.\"id\" = e.\"automation_id\" AND a.\"status\" = '{AutomationStatus.ACTIVE}') "
        f'ON e."organization_id" = %(organization)s AND e."channel" = %(channel)s AND e."kind" = %(kind)s '
        f"AND e.\"status\" = '{ActiveStatus.ACTIVE}' "
        f'ORDER BY e."specificity" DESC, e."priority" ASC, e."created_at" ASC, e."id" ASC'
    )


_LOCK_PREFIX = "inbound-event:"


def _lock_key(row_id: str) -> str:
    return f"{_LOCK_PREFIX}{row_id}"


def _try_lock_event(row_id: str) -> bool:
    """Take the event's lock only if nobody holds it (never waits: a held lock means a live attempt)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [_lock_key(row_id)])
        return bool(cursor.fetchone()[0])


def _unlock_event(row_id: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [_lock_key(row_id)])


def _unfinished(event: InboundEvent) -> InboundEvent | None:
    """Take over an already-claimed event whose processing never finished (a crash after the claim
    committed): return it fresh, with its lock held; else None (a true duplicate). An attempt still
    processing holds the lock, so this answers None at once instead of waiting for it."""
    if event.outcome is not None:
        return None
    row_id = event.pk
    if not _try_lock_event(row_id):
        return None
    event = InboundEvent.objects.select_related("contact", "conversation").filter(pk=row_id).first()
    if event is None or event.outcome is not None or event.contact_id is None:
        _unlock_event(row_id)
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
            row_id = _claim_event_slot(account.organization_id, event_id, now)
            if row_id is not None:  # the claim took the event's lock
                event, recorded = record(row_id)
    except BaseException:
        # After the rollback (a session lock outlives it), so a failed statement's aborted transaction
        # cannot hide the original error; a lost connection took the lock with it.
        if row_id is not None:
            try:
                _unlock_event(row_id)
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
        _unlock_event(event.pk)


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
    values = {**_prepared(conversation, "cv_"), **_prepared(message, "m_"),
              "event": row_id, "account": account.pk, "kind": kind, "contact": contact.pk,
              "payload": InboundEvent._meta.get_field("payload").get_db_prep_save(event.payload, connection)}
    conversation = sql.instance(Conversation, sql.execute(_record_text(), values)[0])
    conversation.social_account = account
    message.conversation = conversation
    message._state.adding, event._state.adding = False, False
    event.conversation = conversation
    return event, message


@lru_cache(maxsize=1)
def _record_text() -> str:
    conversations, messages = Conversation._meta.db_table, Message._meta.db_table
    conversation_columns, conversation_values = _insert_values(Conversation, "cv_")
    message_columns, message_values = _insert_values(Message, "m_",
                                                     conversation_id="(SELECT \"id\" FROM conversation)")
    return (
        f'WITH conversation AS (INSERT INTO "{conversations}" ({conversation_columns}) '
        f"VALUES ({conversation_values}) "
        f'ON CONFLICT ("contact_id", "social_account_id") DO UPDATE SET "last_inbound_at" = EXCLUDED."last_inbound_at" '
        f"RETURNING {conversation_columns}), "
        f'message AS (INSERT INTO "{messages}" ({message_columns}) VALUES ({message_values})), '
        f'event AS (UPDATE "{InboundEvent._meta.db_table}" SET "social_account_id" = %(account)s, "kind" = %(kind)s, '
        f'"contact_id" = %(contact)s, "conversation_id" = (SELECT "id" FROM conversation), "payload" = %(payload)s '
        f'WHERE "id" = %(event)s) '
        f"SELECT * FROM conversation"
    )


def _process(account, event, contact, conversation, message, *, event_id, kind, text, interactive, post_id,
             story_id, parent_comment_id, attachments, now) -> InboundResult:
    """Steps 2-4: offer to waiting runs, else match and enroll; record the outcome on the event row."""
    first_message, first_on_channel, any_waiting, candidates = _situation(account, contact, message, kind)
    if any_waiting:
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
        first_message=first_message, first_on_channel=first_on_channel,
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
        decision = matcher.decide(account.organization_id, facts, contact, candidates=candidates,
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
    sql.execute(_finish_text(), [outcome, run_id, InboundEvent._meta.get_field("trace").get_db_prep_save(
        trace, connection), event.pk])
    return InboundResult(event, outcome, run_id)


@lru_cache(maxsize=1)
def _finish_text() -> str:
    return (f'UPDATE "{InboundEvent._meta.db_table}" SET "outcome" = %s, "run_id" = %s, "trace" = %s '
            f'WHERE "id" = %s')


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
    return list(InboundEvent.objects.filter(outcome__isnull=True, received_at__lt=cutoff)
                .order_by("received_at", "id").values_list("pk", flat=True)[:limit])


def complete_unfinished(row_ids: list[str]) -> int:
    """Process each event the way its sender's retry would, if no live attempt holds its lock and it is
    still unfinished once the lock is ours (so two sweeps, or a sweep and a retry, process it once);
    return how many were completed. One event failing does not stop the others (it is tried again later)."""
    completed = 0
    for row_id in row_ids:
        if not _try_lock_event(row_id):
            continue
        try:
            result = _complete(row_id)
        except Exception:  # noqa: BLE001 - logged; the next sweep tries it again
            logger.exception("inbound: completing unfinished event row %s failed", row_id)
            metrics.inbound_event("error").inc()
            continue
        finally:
            _unlock_event(row_id)
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
