"""The one door to the outside world: sending messages, HTTP calls, contact writes, pauses, starting
other automations.

`Effects` (live) applies in-memory changes at once (so later nodes of the same run see them) and
buffers every database write until the runner persists: `hooks()` hands them to the optimistic run
write as typed hooks (`runtime.hooks`) — the message rows and the contact changes as rows of its
MESSAGES and CONTACT phases (the same statement: written iff it wins), the buffered operations (pauses,
enrollments) to run after it in the persist's transaction, and what happens after commit (outbox
delivery, the contact-change announcement, resuming unparked runs, admin notices). Outbound messages
use a transactional outbox: the Message row (status `pending`) is written with the run, and delivery to
the account's provider happens after commit, keyed by the row, so a stale or crashed worker never sends
twice (an in-transaction provider such as the sandbox writes the row `sent` instead: the row is the
delivery). HTTP is the exception — it cannot be buffered — so the runner commits the run's state before
a node that calls out (see `calls_out` on the node modules).

`RecordingEffects` is the simulator's implementation: the same in-memory changes, a log of what would
have happened, no writes, no network.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from automations.channels.base import PRIVATE_REPLY_TO
from automations.channels.errors import ChannelError, DeliveryError, ErrorClass
from automations.channels.registry import PROVIDERS, get_provider
from automations.models import InboundKind
from automations.runtime import outbound_http
from automations.runtime.hooks import AfterCommit, AfterWrite, Hook, Rows, WritePhase, apply_alone
from automations.store.base import json_records
from automations.store.messages import INSERT_MESSAGES, MESSAGE_COLUMNS
from contacts.actions import ContactEdits
from contacts.models import DeliveryStatus, Message, MessageDirection
from relay.core.ids import new_id
from relay.observability import metrics

logger = logging.getLogger(__name__)
admin_logger = logging.getLogger("relay.notify_admin")

RESUMED = "resumed"  # pause_changes value: the scope's pause was lifted by this run
IDEMPOTENCY_HEADER = "Idempotency-Key"


class Effects:
    simulated = False

    def __init__(self, *, run, contact, automation):
        self.run = run
        self.contact = contact
        self.automation = automation
        self.pause_changes: dict[str | None, object] = {}  # scope -> paused_until (or None) / RESUMED
        self._ops: list[Hook] = []  # the buffered operations: AfterWrite / AfterCommit hooks
        self._messages: list[Message] = []
        self._sent_in_transaction = 0  # messages of the pending write its provider recorded as sent
        # False when the run was read with no tag/field entrypoint listening in its organization
        # (store.runs.read_run): passed on with the contact_changed signal, so the receiver need not ask.
        self.change_listeners: bool | None = None
        self.contact_edits = ContactEdits(contact)  # tag/field changes: written with the run, announced after
        self._callout: list | None = None  # [node key, steps so far, calls made] of the visit calling out

    # -- messages -------------------------------------------------------------------------------
    def send_message(self, *, node_key: str, parts: list[dict]) -> list[str]:
        """Queue one outbound Message per part (text/media/card…); return their ids.

        Raises DeliveryError when the run has nowhere to send (no social account or conversation) or
        the provider refuses the account."""
        account = self.run.social_account if self.run.social_account_id else None
        if account is None or not self.run.conversation_id:
            raise DeliveryError("no_conversation",
                                "the run has no social account/conversation to send through")
        provider = get_provider(account.provider)
        provider.check(account)
        comment_id = self._comment_to_answer(provider)
        ids = []
        for part in parts:
            payload = part
            if comment_id is not None:  # the first part only: one private reply per comment
                payload, comment_id = {**part, PRIVATE_REPLY_TO: comment_id}, None
            message = Message(
                id=new_id("msg"), organization_id=self.run.organization_id,
                conversation_id=self.run.conversation_id, direction=MessageDirection.OUTBOUND,
                text=part.get("text") or part.get("caption") or part.get("title") or "", payload=payload,
                status=DeliveryStatus.PENDING, run_id=self.run.pk, node_key=node_key,
            )
            message.idempotency_key = f"{self.run.pk}:{message.pk}"
            self._messages.append(message)
            ids.append(message.pk)
        return ids

    def _comment_to_answer(self, provider) -> str | None:
        """The comment a run started by `comment_created` answers with its first message, as a private
        reply (providers with `replies_to_comments`): the trigger's event id, which is the comment id.
        None for any later message of the run — and no query at all for other providers or runs."""
        if not getattr(provider, "replies_to_comments", False):
            return None
        trigger = (self.run.context or {}).get("trigger")
        if not isinstance(trigger, dict) or trigger.get("kind") != InboundKind.COMMENT_CREATED:
            return None
        comment_id = str(trigger.get("event_id") or "")
        if not comment_id or self._messages or Message.objects.filter(
                run_id=self.run.pk, direction=MessageDirection.OUTBOUND).exists():
            return None
        return comment_id

    @property
    def awaits_delivery(self) -> bool:
        """Does a message sent now go out after commit (a network provider), so the node waits for the
        platform's answer before it moves on? False for the sandbox, whose row is the delivery."""
        account = self.run.social_account if self.run.social_account_id else None
        provider = PROVIDERS.get(account.provider) if account is not None else None
        return provider is not None and not provider.records_in_transaction

    # -- http -----------------------------------------------------------------------------------
    def begin_callout(self, node_key: str, steps_so_far: int) -> None:
        """The runner committed the run before visiting `node_key` (which calls out); `steps_so_far` is
        the run's step-row count then, which names this visit across a crash and its retry."""
        self._callout = [node_key, steps_so_far, 0]

    def http(self, method: str, url: str, *, headers=None, body=None, timeout_ms=None):
        """One outgoing call. Delivery is at least once (a worker killed mid-call repeats it on recovery),
        so it carries an `Idempotency-Key` header that is the same for every retry of one node visit (and
        the n-th call of that visit) and differs for every other visit; a key set in the node's own
        headers is kept."""
        headers = dict(headers or {})
        if not any(str(name).lower() == IDEMPOTENCY_HEADER.lower() for name in headers):
            headers[IDEMPOTENCY_HEADER] = self._idempotency_key()
        return outbound_http.perform(method, url, headers=headers, body=body, timeout_ms=timeout_ms)

    def _idempotency_key(self) -> str:
        callout = self._callout or [None, None, 0]
        node_key, visit, calls = callout
        callout[2] = calls + 1
        if visit is None:  # not visited through the runner's callout path: still unique per call
            return f"relay-{new_id('call')}"
        digest = hashlib.sha256(f"{self.run.pk}\n{node_key}\n{visit}\n{calls}".encode()).hexdigest()
        return f"relay-{digest[:40]}"

    # -- contact writes (in memory now, in the database at apply) -------------------------------
    def tag_add(self, tag: str) -> bool:
        if not self.contact_edits.add_tag(tag):
            return False
        self._queue("tag_add", {"tag": tag})
        return True

    def tag_remove(self, tag: str) -> bool:
        if not self.contact_edits.remove_tag(tag):
            return False
        self._queue("tag_remove", {"tag": tag})
        return True

    def field_set(self, slug: str, value) -> None:
        self.contact_edits.set_field(slug, value)
        self._queue("field_set", {"field": slug, "value": value})

    def field_clear(self, slug: str) -> None:
        self.contact_edits.clear_field(slug)
        self._queue("field_clear", {"field": slug})

    def contact_field_set(self, name: str, value: str) -> None:
        if name not in ("name", "email", "phone"):
            raise ValueError(f"contact field must be name, email or phone, not {name!r}")
        setattr(self.contact, name, value)
        from contacts.models import Contact

        self._queue("contact_field_set", {"field": name, "value": value}, AfterWrite(lambda: Contact.objects.filter(
            pk=self.contact.pk).update(**{name: value, "updated_at": timezone.now()})))

    # -- pauses -----------------------------------------------------------------------------------
    def pause_automations(self, *, automation_id: str | None, minutes=None, reason: str = "") -> dict:
        paused_until = timezone.now() + timedelta(minutes=minutes) if minutes else None
        self.pause_changes[automation_id] = paused_until

        def op():
            from automations.runtime import controls

            controls.pause_contact(self._contact_row(), automation=self._automation_row(automation_id),
                                   pause_reason=reason, paused_until=paused_until)

        self._queue("pause_automations", {"automation_id": automation_id, "paused_until": paused_until},
                    AfterWrite(op))
        return {"automation_id": automation_id,
                "paused_until": paused_until.isoformat() if paused_until else None}

    def resume_automations(self, *, automation_id: str | None) -> dict:
        self.pause_changes[automation_id] = RESUMED
        rows = {}

        def read():
            rows.update(contact=self._contact_row(), automation=self._automation_row(automation_id))

        def resume():
            from automations.runtime import controls

            controls.resume_contact(rows["contact"], automation=rows["automation"])

        # resume_contact advances the runs it unparks, which commit on their own: after our commit.
        self._queue("resume_automations", {"automation_id": automation_id}, AfterWrite(read), AfterCommit(resume))
        return {"automation_id": automation_id}

    # -- other --------------------------------------------------------------------------------------
    def notify_admin(self, message: str) -> None:
        run_id, automation_id = self.run.pk, self.run.automation_id
        self._queue("notify_admin", {"message": message}, AfterCommit(lambda: admin_logger.warning(
            "automation %s run %s: %s", automation_id, run_id, message)))

    def start_automation(self, target, *, entrypoint=None, context=None) -> dict:
        """Enroll the contact into `target` when this step persists (fire-and-forget). The returned dict
        is the step payload; it is completed with the outcome (run id or blocked reason) at apply."""
        report = {"target_automation_id": target.pk, "entrypoint_id": getattr(entrypoint, "pk", None)}

        def op():
            from automations.runtime.enrollment import TRIGGER, enroll

            same_account = self.run.social_account if self.run.social_account_id else None
            result = enroll(target, self._contact_row(), entrypoint=entrypoint,
                            social_account=same_account,
                            conversation=self.run.conversation if self.run.conversation_id else None,
                            context=dict(context or {}), source=TRIGGER,
                            trigger_depth=(self.run.trigger_depth or 0) + 1)
            report["run_id"] = result.run.pk if result.run is not None and result.ok else None
            report["blocked"] = result.blocked

        self._queue("start_automation", report, AfterWrite(op))
        return report

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def has_operations(self) -> bool:
        """Buffered writes that are not plain rows (pauses, enrollments, contact fields…): they need a
        transaction around the run write."""
        return bool(self._ops)

    def apply(self) -> None:
        """Write everything buffered. Call inside the transaction that persisted the run."""
        apply_alone(self.hooks())

    def hooks(self) -> list[Hook]:
        """Everything buffered, as hooks of the run write (`runs.write_run(..., hooks=…)`): the message
        rows and contact changes ride on it; then the operations in the order the nodes asked for them,
        and, after commit, outbox delivery; then the contact-change announcement. Taken: a lost write
        discards them (`discard`)."""
        messages, self._messages = self._messages, []
        outbox = self._record_sent_in_transaction(messages) if messages else []
        sent, self._sent_in_transaction = self._sent_in_transaction, 0
        hooks: list[Hook] = []
        if messages:
            rows = [tuple(getattr(m, name) for name in MESSAGE_COLUMNS) for m in messages]
            hooks.append(Rows(WritePhase.MESSAGES, INSERT_MESSAGES,
                              {"rows": json_records(Message, MESSAGE_COLUMNS, rows)}))
        contact_update = self.contact_edits.pending_write()
        if contact_update is not None:
            hooks.append(contact_update)
        if sent:
            provider = self.run.social_account.provider
            hooks.append(AfterWrite(lambda: metrics.outbound_message(provider, "sent").inc(sent)))
        ops, self._ops = self._ops, []
        hooks += ops
        if outbox:
            ids = [m.pk for m in outbox]
            hooks.append(AfterCommit(lambda: deliver_messages(ids)))
        hooks.append(AfterWrite(self._announce_contact_changes))
        return hooks

    def discard(self) -> None:
        self._messages, self._ops, self._sent_in_transaction = [], [], 0
        self.contact_edits.discard()

    # -- helpers --------------------------------------------------------------------------------------
    def _queue(self, kind: str, details: dict, *hooks: Hook) -> None:
        self._ops += hooks

    def _record_sent_in_transaction(self, messages: list[Message]) -> list[Message]:
        """Mark `sent` the messages if the run's provider records them in the run's transaction and
        return none; else return them all (the outbox, delivered after commit)."""
        provider = PROVIDERS.get(self.run.social_account.provider)
        if not getattr(provider, "records_in_transaction", False):
            return messages
        for message in messages:
            _mark_sent(message, provider.deliver(message))
        self._sent_in_transaction = len(messages)
        return []

    def _announce_contact_changes(self) -> None:
        """Tag and field changes start tag_applied/tag_removed/field_changed entrypoints (after commit,
        one trigger level deeper than this run)."""
        if self.contact is None:
            return
        self.contact_edits.announce(trigger_depth=(self.run.trigger_depth or 0) + 1, listening=self.change_listeners)

    def _contact_row(self):
        from contacts.models import Contact

        return Contact.objects.get(pk=self.contact.pk)

    def _automation_row(self, automation_id):
        if automation_id is None:
            return None
        from automations.models import Automation

        return Automation.objects.get(pk=automation_id, organization_id=self.run.organization_id)


class RecordingEffects(Effects):
    """The simulator's effects: in-memory changes and a log; nothing written, nothing sent."""

    simulated = True
    awaits_delivery = False

    def __init__(self, *, run, contact, automation):
        super().__init__(run=run, contact=contact, automation=automation)
        self.log: list[dict] = []
        self._counter = 0

    def send_message(self, *, node_key: str, parts: list[dict]) -> list[str]:
        ids = []
        for _part in parts:
            self._counter += 1
            ids.append(f"msg_simulated_{self._counter}")
        self.log.append({"effect": "send_message", "node_key": node_key, "parts": parts})
        return ids

    def http(self, method: str, url: str, *, headers=None, body=None, timeout_ms=None):
        self.log.append({"effect": "http", "method": method, "url": url, "headers": headers, "body": body})
        return outbound_http.HttpResponse(status=200, headers={}, body=None, elapsed_ms=0)

    def start_automation(self, target, *, entrypoint=None, context=None) -> dict:
        report = {"target_automation_id": target.pk, "entrypoint_id": getattr(entrypoint, "pk", None),
                  "simulated": True}
        self.log.append({"effect": "start_automation", **report})
        return report

    def _queue(self, kind: str, details: dict, *hooks: Hook) -> None:
        self.log.append({"effect": kind, **details})

    def apply(self) -> None:
        raise RuntimeError("RecordingEffects never writes")


def _mark_sent(message: Message, provider_message_id: str) -> None:
    message.provider_message_id = provider_message_id
    message.status, message.sent_at = DeliveryStatus.SENT, timezone.now()


# After-commit delivery to a network provider (see deliver_messages).
INLINE_WAIT_SECONDS = 1.0  # a pacing slot at most this far away is waited for in the worker; later ones re-queue
MAX_TRANSIENT_ATTEMPTS = 5  # 5xx / connection failures: tries before the message fails
RATE_LIMIT_BACKOFF_SECONDS = 5.0  # a Graph "slow down" without a wait: 5 s, doubling, at most 5 min
IN_FLIGHT_FOR = timedelta(seconds=60)  # longer than any platform call (channels.http timeouts)


@dataclass
class _Outcome:
    """What one delivery attempt did: `sent`, `failed` (terminal: failed or unknown), or `later` (the
    message stays pending and the rest of the batch is handed back, `wait` seconds from now)."""

    kind: str
    message: Message | None = None
    wait: float = 0.0
    slot_taken: bool = False
    attempt: int = 0
    rate_limited: int = 0


def deliver_messages(message_ids, *, attempt: int = 0, rate_limited: int = 0, slot_taken: bool = False) -> int:
    """Hand pending outbound messages to their provider, once each, in the order given: the row lock
    and the `pending` status make a second delivery attempt (retry, duplicate worker) a no-op. A network
    send is claimed and committed before the platform is called, with no lock held across the call; a
    claim left without an answer (a worker died mid-call) turns the message `unknown`, never into a
    second send (`_deliver_one`). An error in our own code leaves only that message pending. Returns
    how many were sent.

    Network providers: each send takes a pacing slot first (channels.pacing). A platform's rate limit,
    a 5xx or a connection failure leaves the message pending and hands it and the rest of the batch
    back (`later`): a delivery task after the wait (`retry_after` when the platform gave one; transient
    failures count `attempt` up to MAX_TRANSIENT_ATTEMPTS; rate limits never count). A terminal failure
    marks the message `failed` (or `unknown` when the request may have gone out) and the rest of that
    node's parts `failed` / `not_sent`. The runs whose parts all settled then move on
    (runtime.delivery.settle)."""
    batch = (list(message_ids), {"attempt": attempt, "rate_limited": rate_limited, "slot_taken": slot_taken})
    queue = getattr(_delivering, "queue", None)
    if queue is not None:  # called from a settle further down this stack: the outer loop takes it
        queue.append(batch)
        return 0
    _delivering.queue = queue = deque([batch])
    sent = 0
    try:
        while queue:
            ids, options = queue.popleft()
            sent += _deliver_batch(ids, **options)
    finally:
        _delivering.queue = None
    return sent


# A settle moves the run on, which may send its next message and deliver it on commit — inside this
# call. Those deliveries are queued and run by the outermost call, so a long chain of messages does
# not grow the stack one delivery per message.
_delivering = threading.local()


def _deliver_batch(ids: list[str], *, attempt: int, rate_limited: int, slot_taken: bool) -> int:
    from automations.runtime import delivery

    sent = 0
    finished_nodes: dict[tuple[str, str], None] = {}
    failed_nodes: set[tuple[str, str]] = set()
    for index, message_id in enumerate(ids):
        try:
            outcome = _deliver_one(message_id, attempt=attempt, rate_limited=rate_limited,
                                   slot_taken=slot_taken and index == 0, failed_nodes=failed_nodes)
        except Exception:  # noqa: BLE001 - one bad message must not stop the others; it stays pending
            logger.exception("delivering message %s failed", message_id)
            metrics.outbound_message("unknown", "error").inc()
            continue
        if outcome.message is not None:  # the attempt's result: sent, failed, unknown, pending (retried later)
            metrics.outbound_message(outcome.message.conversation.social_account.provider, outcome.message.status).inc()
        if outcome.kind == "later":
            _deliver_later(ids[index:], outcome)
            break
        if outcome.message is None:
            continue
        node = (outcome.message.run_id, outcome.message.node_key)
        if outcome.message.run_id:
            finished_nodes[node] = None
        if outcome.kind == "sent":
            sent += 1
        elif outcome.kind == "failed":
            failed_nodes.add(node)
        attempt, rate_limited = 0, 0  # counted per message
    for run_id, node_key in finished_nodes:
        try:
            delivery.settle(run_id, node_key)
        except Exception:  # noqa: BLE001 - the sweep settles it later (delivery.stale_waits)
            logger.exception("settling run %s after delivery failed", run_id)
    return sent


def _deliver_one(message_id: str, *, attempt: int, rate_limited: int, slot_taken: bool,
                 failed_nodes: set) -> _Outcome:
    """One message. A network send is claimed first — `sent_at` set and committed while the row is
    still `pending` — then the platform is called with no transaction open, then the answer is written.
    A claim found without an answer means a worker died while the request may have been on its way:
    the message becomes `unknown` instead of being sent a second time."""
    from automations.channels import pacing
    from contacts.models import AccountStatus

    with transaction.atomic():
        message = (Message.objects.select_for_update(skip_locked=True, of=("self",))
                   .select_related("conversation__social_account")
                   .filter(pk=message_id, status=DeliveryStatus.PENDING).first())
        if message is None:
            return _Outcome("skipped")
        account = message.conversation.social_account
        try:
            provider = get_provider(account.provider)
            if getattr(provider, "records_in_transaction", False):
                _mark_sent(message, provider.deliver(message))
                message.save(update_fields=["provider_message_id", "status", "sent_at"])
                return _Outcome("sent", message)
            if message.sent_at is not None:  # claimed by an attempt that never wrote the answer
                if message.sent_at > timezone.now() - IN_FLIGHT_FOR:
                    return _Outcome("skipped")  # still under way in another worker
                raise DeliveryError("interrupted", "delivery was interrupted after the request may have gone "
                                                   "out; not sent again")
            if (message.run_id, message.node_key) in failed_nodes:
                raise DeliveryError("not_sent", "an earlier part of this message failed")
            if account.status == AccountStatus.NEEDS_REAUTH:
                raise DeliveryError(ErrorClass.NEEDS_REAUTH, account.last_error or "the account needs new credentials")
        except DeliveryError as exc:
            unknown = exc.code == "interrupted"
            message.status = DeliveryStatus.UNKNOWN if unknown else DeliveryStatus.FAILED
            message.error_code, message.error = str(exc.code)[:64], str(exc)[:1000]
            message.save(update_fields=["status", "error_code", "error"])
            return _Outcome("unknown" if unknown else "failed", message)
        if not slot_taken and (getattr(provider, "account_interval", 0) or getattr(provider, "chat_interval", 0)):
            wait = pacing.reserve(provider, account.pk, message.conversation_id)
            if wait > INLINE_WAIT_SECONDS:
                return _Outcome("later", message, wait, slot_taken=True, attempt=attempt, rate_limited=rate_limited)
            if wait > 0:
                time.sleep(wait)
        claimed_at = message.sent_at = timezone.now()
        message.save(update_fields=["sent_at"])
    claimed = Message.objects.filter(pk=message.pk, status=DeliveryStatus.PENDING, sent_at=claimed_at)
    try:
        provider_message_id = provider.deliver(message)
    except ChannelError as exc:
        return _record_failure(claimed, message, account, exc, attempt=attempt, rate_limited=rate_limited)
    except DeliveryError as exc:  # the provider refused the message itself: nothing went out
        message.status, message.error_code, message.error = DeliveryStatus.FAILED, str(exc.code)[:64], str(exc)[:1000]
        claimed.update(status=message.status, error_code=message.error_code, error=message.error, sent_at=None)
        return _Outcome("failed", message)
    except Exception:
        claimed.update(sent_at=None)  # our own error before the request: nothing went out
        raise
    _mark_sent(message, provider_message_id)
    claimed.update(status=message.status, provider_message_id=provider_message_id, sent_at=message.sent_at)
    return _Outcome("sent", message)


def _record_failure(claimed, message: Message, account, exc, *, attempt: int, rate_limited: int) -> _Outcome:
    """What a platform's refusal (or silence) means for the message: retry later, `failed`, `unknown`."""
    from automations.channels import pacing

    if exc.error_class == ErrorClass.RATE_LIMITED:
        wait = exc.retry_after or min(RATE_LIMIT_BACKOFF_SECONDS * 2 ** rate_limited, 300.0)
        pacing.hold_off(account.pk, wait)
        claimed.update(sent_at=None)
        return _Outcome("later", message, wait, attempt=attempt, rate_limited=rate_limited + 1)
    if exc.error_class == ErrorClass.TRANSIENT and attempt + 1 < MAX_TRANSIENT_ATTEMPTS:
        claimed.update(sent_at=None)
        return _Outcome("later", message, float(2 ** attempt), attempt=attempt + 1, rate_limited=rate_limited)
    ambiguous = exc.error_class == ErrorClass.AMBIGUOUS  # may have gone out: never resent
    message.status = DeliveryStatus.UNKNOWN if ambiguous else DeliveryStatus.FAILED
    message.error_code, message.error = exc.message_code[:64], str(exc)[:1000]
    if not ambiguous:
        message.sent_at = None
    claimed.update(status=message.status, error_code=message.error_code, error=message.error,
                   sent_at=message.sent_at)
    if exc.error_class == ErrorClass.NEEDS_REAUTH:
        _needs_reauth(account, str(exc))
    return _Outcome("unknown" if ambiguous else "failed", message)


def _needs_reauth(account, reason: str) -> None:
    """The platform refused the account's token: runs on it fail fast until it is verified again."""
    from contacts.models import AccountStatus, SocialAccount

    now = timezone.now()
    SocialAccount.objects.filter(pk=account.pk).update(status=AccountStatus.NEEDS_REAUTH, last_error=reason[:1000],
                                                       last_error_at=now, updated_at=now)


def _deliver_later(ids: list[str], outcome: _Outcome) -> None:
    """Hand the rest of a batch to a delivery task `outcome.wait` seconds from now."""
    from automations import tasks

    tasks.deliver_messages.apply_async(
        (ids,), {"attempt": outcome.attempt, "rate_limited": outcome.rate_limited, "slot_taken": outcome.slot_taken},
        countdown=max(outcome.wait, 0.0))


def stale_outbox_ids(older_than_seconds: int = 60, limit: int = 200) -> list[str]:
    """Outbox rows left pending (a worker died between commit and delivery), oldest first."""
    from django.db.models import Exists, OuterRef, Value
    from django.db.models.functions import Concat, Now

    from automations.models import SendSlot

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    # An account whose pacing slots are booked into the future has deliveries queued for them: its
    # pending messages are waiting their turn, not lost.
    paced = SendSlot.objects.filter(key=Concat(Value("a:"), OuterRef("conversation__social_account_id")),
                                    next_at__gt=Now())
    stale = (Message.objects.filter(direction=MessageDirection.OUTBOUND, status=DeliveryStatus.PENDING,
                                    created_at__lt=cutoff).exclude(Exists(paced)).order_by("created_at"))
    return list(stale.values_list("pk", flat=True)[:limit])


def deliver_pending(older_than_seconds: int = 60, limit: int = 200) -> int:
    """Sweep outbox rows left pending, in this process."""
    return deliver_messages(stale_outbox_ids(older_than_seconds, limit))
