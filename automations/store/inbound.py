"""Statements of the inbound path (`runtime.inbound`): claiming an event, upserting its sender, recording
it, reading its situation, finishing it, and the event's lock.

Why hand-written: Django spends about a millisecond compiling and adapting each ORM statement on the
measured machine, several times what PostgreSQL spends running it; inbound events went from 14.6 to 80.5
per second once an event took 13 statements (README, "Performance"). Recording an event is three
statements (`CLAIM_EVENT` with its lock, `UPSERT_SENDER`, `RECORD_EVENT`: conversation + message + event
links), and everything processing needs to know is one read (`SITUATION`).

The event's lock is a session-level advisory lock keyed by the event row: it outlives the claim's commit,
so a retry of the same event id knows while an attempt is still processing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from automations.models import (
    ActiveStatus,
    Automation,
    AutomationRun,
    AutomationStatus,
    Entrypoint,
    InboundEvent,
    RunStatus,
)
from automations.store.base import (
    db_value,
    execute,
    fetch,
    fetch_one,
    insert_columns,
    insert_params,
    insert_placeholders,
    instance_from,
    order_by,
    prefixed_list,
    statement,
)
from contacts.models import Contact, ContactIdentity, Conversation, Message, MessageDirection, SocialAccount

_LOCK_PREFIX = "inbound-event:"

# -- the event's slot and lock ------------------------------------------------------------------------

# Insert the event row unless that event id was seen, and take the new row's lock. Nobody else can know the
# new id yet, so taking it never waits.
CLAIM_EVENT = statement(
    """WITH claim AS (
           INSERT INTO {event} ({event.id}, {event.organization}, {event.event_id}, {event.kind}, {event.payload},
                                {event.trace}, {event.received_at})
           VALUES (%(id)s, %(organization)s, %(event_id)s, '', '{{}}'::jsonb, '[]'::jsonb, %(now)s)
           ON CONFLICT ({event.organization}, {event.event_id}) DO NOTHING RETURNING {event.id})
       SELECT {event.id} AS id, pg_advisory_lock(hashtextextended(%(lock)s, 0))::text AS locked FROM claim""",
    event=InboundEvent,
)
TRY_LOCK_EVENT = "SELECT pg_try_advisory_lock(hashtextextended(%(lock)s, 0)) AS locked"
UNLOCK_EVENT = "SELECT pg_advisory_unlock(hashtextextended(%(lock)s, 0)) AS unlocked"


def _lock_key(row_id: str) -> str:
    return f"{_LOCK_PREFIX}{row_id}"


def claim_event(row_id: str, organization_id: str, event_id: str, now: datetime) -> bool:
    """Insert event row `row_id` for (organization, event_id) and take its lock; False: that event id was
    seen already (nothing written, no lock taken)."""
    return fetch_one(CLAIM_EVENT, {"id": row_id, "organization": organization_id, "event_id": event_id,
                                   "now": now, "lock": _lock_key(row_id)}) is not None


def try_lock_event(row_id: str) -> bool:
    """Take the event's lock only if nobody holds it (never waits: a held lock means a live attempt)."""
    return fetch_one(TRY_LOCK_EVENT, {"lock": _lock_key(row_id)})["locked"]


def unlock_event(row_id: str) -> None:
    execute(UNLOCK_EVENT, {"lock": _lock_key(row_id)})


# -- the sender -----------------------------------------------------------------------------------------

# The contact behind (account, platform user id), its empty name filled in if the event brings one; else a
# new contact and identity. The identity goes first, ON CONFLICT DO NOTHING, so two events for the same new
# person never make two contacts: the loser returns no row (its snapshot predates the winner's commit) and
# reads the winner's contact afterwards.
UPSERT_SENDER = statement(
    """WITH found AS (
           SELECT {contact_list} FROM {identity} i JOIN {contact} c ON c.{contact.id} = i.{identity.contact}
           WHERE i.{identity.social_account} = %(account)s AND i.{identity.platform_user_id} = %(user)s),
       named AS (
           UPDATE {contact} c SET {contact.name} = %(name)s, {contact.updated_at} = %(now)s FROM found f
           WHERE c.{contact.id} = f."c__id" AND c.{contact.name} = '' AND %(name)s <> ''
           RETURNING {contact_list}),
       identity AS (
           INSERT INTO {identity} ({identity_columns}) SELECT {identity_values}
           WHERE NOT EXISTS (SELECT 1 FROM found)
           ON CONFLICT ({identity.social_account}, {identity.platform_user_id}) DO NOTHING
           RETURNING {identity.contact}),
       created AS (
           INSERT INTO {contact} AS c ({contact_columns}) SELECT {contact_values} FROM identity
           RETURNING {contact_list})
       SELECT * FROM named
       UNION ALL SELECT * FROM found WHERE NOT EXISTS (SELECT 1 FROM named)
       UNION ALL SELECT * FROM created""",
    contact=Contact, identity=ContactIdentity, contact_list=prefixed_list(Contact, "c", "c"),
    contact_columns=insert_columns(Contact), contact_values=insert_placeholders(Contact, "c_"),
    identity_columns=insert_columns(ContactIdentity), identity_values=insert_placeholders(ContactIdentity, "i_"),
)


def upsert_sender_row(contact: Contact, identity: ContactIdentity, name: str, now: datetime) -> Contact | None:
    """`contacts.actions.upsert_sender`'s statement, for a would-be new `contact` and its `identity`: the
    contact found or created; None when another event created it after this statement's snapshot."""
    row = fetch_one(UPSERT_SENDER, {
        "account": identity.social_account_id, "user": identity.platform_user_id, "name": name, "now": now,
        **insert_params(contact, "c_"), **insert_params(identity, "i_")})
    return instance_from(Contact, row, "c") if row else None


# -- recording the event ----------------------------------------------------------------------------------

# The conversation (created, or its last_inbound_at moved), the inbound Message and the event row's links.
RECORD_EVENT = statement(
    """WITH conversation AS (
           INSERT INTO {conversation} AS cv ({conversation_columns}) VALUES ({conversation_values})
           ON CONFLICT ({conversation.contact}, {conversation.social_account})
           DO UPDATE SET {conversation.last_inbound_at} = EXCLUDED.{conversation.last_inbound_at}
           RETURNING {conversation_list}),
       message AS (INSERT INTO {message} ({message_columns}) VALUES ({message_values})),
       event AS (
           UPDATE {event} SET {event.social_account} = %(account)s, {event.kind} = %(kind)s,
                  {event.contact} = %(contact)s, {event.conversation} = (SELECT "cv__id" FROM conversation),
                  {event.payload} = %(payload)s
           WHERE {event.id} = %(event)s)
       SELECT * FROM conversation""",
    conversation=Conversation, message=Message, event=InboundEvent,
    conversation_list=prefixed_list(Conversation, "cv", "cv"),
    conversation_columns=insert_columns(Conversation), conversation_values=insert_placeholders(Conversation, "cv_"),
    message_columns=insert_columns(Message),
    message_values=insert_placeholders(Message, "m_", **{
        Message._meta.get_field("conversation").column: '(SELECT "cv__id" FROM conversation)'}),
)


def record_event(event: InboundEvent, conversation: Conversation, message: Message) -> Conversation:
    """Write `conversation` (or move the existing one's last_inbound_at), `message` in it, and `event`'s
    account, kind, contact, conversation and payload; the conversation as stored."""
    row = fetch_one(RECORD_EVENT, {
        **insert_params(conversation, "cv_"), **insert_params(message, "m_"), "event": event.pk,
        "account": event.social_account_id, "kind": event.kind, "contact": event.contact_id,
        "payload": db_value(InboundEvent._meta.get_field("payload"), event.payload)})
    return instance_from(Conversation, row, "cv")


# -- the situation ------------------------------------------------------------------------------------------

# "First" ignores the event's own message (it may be a retry's) and counts messages up to its created_at.
_EARLIER_INBOUND = statement(
    """SELECT 1 FROM {message} m WHERE m.{message.direction} = '{inbound}'
       AND m.{message.created_at} <= %(created)s AND m.{message.id} <> %(message)s""",
    message=Message, inbound=MessageDirection.INBOUND,
)

# Is this the first inbound message of its conversation, the contact's first on the channel, does the
# contact have a run waiting for an inbound event; and the event's candidate entrypoints in match order
# (active, of an active automation, of the event's channel and kind), one row each (one row of NULLs if none).
SITUATION = statement(
    """SELECT f.first_message, f.first_on_channel, f.any_waiting, {entrypoint_list}, {automation_list}
       FROM (SELECT
           NOT EXISTS ({earlier} AND m.{message.conversation} = %(conversation)s) AS first_message,
           NOT EXISTS ({earlier} AND m.{message.conversation} IN (
               SELECT cv.{conversation.id} FROM {conversation} cv
               JOIN {account} sa ON sa.{account.id} = cv.{conversation.social_account}
               WHERE cv.{conversation.contact} = %(contact)s AND sa.{account.channel} = %(channel)s))
               AS first_on_channel,
           EXISTS (SELECT 1 FROM {run} r WHERE r.{run.contact} = %(contact)s AND r.{run.status} = '{waiting}'
                   AND r.{run.waiting_for} = ANY(%(waiting_kinds)s)
                   AND (r.{run.social_account} = %(account)s OR r.{run.social_account} IS NULL)) AS any_waiting
       ) f
       LEFT JOIN ({entrypoint} e JOIN {automation} a
                  ON a.{automation.id} = e.{entrypoint.automation} AND a.{automation.status} = '{automation_active}')
           ON e.{entrypoint.organization} = %(organization)s AND e.{entrypoint.channel} = %(channel)s
              AND e.{entrypoint.kind} = %(kind)s AND e.{entrypoint.status} = '{entrypoint_active}'
       ORDER BY {match_order}""",
    message=Message, conversation=Conversation, account=SocialAccount, run=AutomationRun, entrypoint=Entrypoint,
    automation=Automation, earlier=_EARLIER_INBOUND, waiting=RunStatus.WAITING,
    automation_active=AutomationStatus.ACTIVE, entrypoint_active=ActiveStatus.ACTIVE,
    entrypoint_list=prefixed_list(Entrypoint, "e", "e"), automation_list=prefixed_list(Automation, "a", "a"),
    match_order=order_by(Entrypoint, "e", Entrypoint.MATCH_ORDER),
)


@dataclass(frozen=True)
class Situation:
    """What processing an event needs to know, read in one statement once the event is recorded."""

    first_message: bool  # the first inbound message of its conversation
    first_on_channel: bool  # the contact's first inbound message on the channel
    any_waiting: bool  # the contact has a run waiting for an inbound event (only then are they read)
    candidates: list[Entrypoint]  # in match order, each with its automation


def situation(account: SocialAccount, contact: Contact, message: Message, kind: str,
              waiting_kinds: list[str]) -> Situation:
    """The situation of the event `message` records (`kind`, through `account`, from `contact`);
    `waiting_kinds`: the `waiting_for` values an inbound event can answer."""
    rows = fetch(SITUATION, {
        "conversation": message.conversation_id, "created": message.created_at, "message": message.pk,
        "contact": contact.pk, "channel": account.channel, "account": account.pk,
        "organization": account.organization_id, "kind": kind, "waiting_kinds": list(waiting_kinds)})
    candidates = []
    for row in rows:
        entrypoint = instance_from(Entrypoint, row, "e")
        if entrypoint is None:  # the LEFT JOIN found none
            break
        Entrypoint._meta.get_field("automation").set_cached_value(entrypoint, instance_from(Automation, row, "a"))
        candidates.append(entrypoint)
    first = rows[0]
    return Situation(first_message=first["first_message"], first_on_channel=first["first_on_channel"],
                     any_waiting=first["any_waiting"], candidates=candidates)


# -- finishing the event ------------------------------------------------------------------------------------

FINISH_EVENT = statement(
    """UPDATE {event} SET {event.outcome} = %(outcome)s, {event.run} = %(run)s, {event.trace} = %(trace)s
       WHERE {event.id} = %(event)s""",
    event=InboundEvent,
)


def finish_event(event_id: str, outcome: str, run_id: str | None, trace: list) -> None:
    """Keep the event's outcome, the run it resumed or started, and the matcher's trace."""
    execute(FINISH_EVENT, {"event": event_id, "outcome": outcome, "run": run_id,
                           "trace": db_value(InboundEvent._meta.get_field("trace"), trace)})


# -- unfinished events (the tick) -----------------------------------------------------------------------------

# Recorded events still without an outcome, received before the cutoff, oldest first (the partial index
# on received_at WHERE outcome IS NULL).
UNFINISHED_EVENTS = statement(
    """SELECT {event.id} AS id FROM {event} WHERE {event.outcome} IS NULL AND {event.received_at} < %(cutoff)s
       ORDER BY {event.received_at} ASC, {event.id} ASC LIMIT %(limit)s""",
    event=InboundEvent,
)


def unfinished_event_ids(cutoff: datetime, limit: int) -> list[str]:
    return [row["id"] for row in fetch(UNFINISHED_EVENTS, {"cutoff": cutoff, "limit": limit})]
