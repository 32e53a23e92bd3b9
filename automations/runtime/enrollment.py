"""Enrollment: put a contact into an automation (`enroll`), or record why not.

Rules, in order (SPEC §4): the automation must be `active`; a pause row that applies skips a
trigger-path enrollment (recorded as an `exited` / `contact_paused` run row) while a manual enrollment
creates the run parked `waiting` / `external_event` without executing it; re-entry — a live run blocks,
`allow_reentry=false` blocks after any prior run, otherwise a `completed` run whose `completed_at` is
within `reentry_cooldown_min` blocks (trigger path: recorded as an `exited` / `reentry_cooldown` row;
manual: just refused). The partial unique index (one live run per contact × automation) is the last line
of defence against two enrollments racing past these checks. A new active run is executed after commit by
the Celery task `advance_run`. Its three statements (lock, standing, insert) are `store.enrollment`'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from automations.models import (
    Automation,
    AutomationRun,
    AutomationStatus,
    EnrollBlocked,
    InboundOutcome,
    RunStatus,
    WaitingFor,
)
from automations.runtime.runs import COUNTER_FIELDS
from automations.store import enrollment as store
from automations.store.enrollment import PriorRuns
from contacts.models import ContactIdentity, Conversation
from relay.observability import metrics

logger = logging.getLogger(__name__)

MANUAL = "manual"
TRIGGER = "trigger"

MAX_TRIGGER_DEPTH = 10  # automations starting automations: a loop guard
DEFAULT_ALLOW_REENTRY = True
DEFAULT_REENTRY_COOLDOWN_MIN = 60


@dataclass
class EnrollResult:
    run: AutomationRun | None = None  # the new run; for a recorded trigger-path skip, the skip row
    blocked: EnrollBlocked | None = None
    pause_global: bool = False  # contact_paused by a pause for all automations (not only this one)

    @property
    def ok(self) -> bool:
        return self.blocked is None

    @property
    def inbound_outcome(self) -> str:
        """What an inbound event this enrollment answered comes to."""
        return InboundOutcome.ENROLLED if self.ok else self.blocked.inbound_outcome


def reentry_rules(entrypoint=None, binding=None) -> tuple[bool, int]:
    if entrypoint is not None:
        return entrypoint.allow_reentry, entrypoint.reentry_cooldown_min
    config = (binding.config or {}) if binding is not None else {}
    allow = config.get("allow_reentry", DEFAULT_ALLOW_REENTRY)
    cooldown = config.get("reentry_cooldown_min", DEFAULT_REENTRY_COOLDOWN_MIN)
    return bool(allow), int(cooldown) if isinstance(cooldown, int) and cooldown >= 0 else DEFAULT_REENTRY_COOLDOWN_MIN


def reentry_blocked(prior: PriorRuns, *, entrypoint=None, binding=None) -> bool:
    """Do the re-entry rules keep this contact out, given its earlier runs as `enroll` read them (under
    its lock, with the cooldown of these rules)? A live run blocks; `allow_reentry=false` blocks after any
    run; otherwise a run completed within the cooldown blocks."""
    allow, cooldown_min = reentry_rules(entrypoint, binding)
    if prior.live:
        return True
    if not allow:
        return prior.any
    return cooldown_min > 0 and prior.recently_completed


def _channel_of(automation, contact, *, entrypoint, binding, conversation, social_account):
    """The account and conversation the run talks through (created if the contact has none yet)."""
    if social_account is None and conversation is not None:
        social_account = conversation.social_account
    for source in (entrypoint, binding):
        if social_account is None and source is not None and source.social_account_id:
            social_account = source.social_account
    if social_account is None:
        identity = (ContactIdentity.objects.select_related("social_account")
                    .filter(contact_id=contact.pk, social_account__channel=automation.channel)
                    .order_by("created_at", "id").first())
        social_account = identity.social_account if identity else None
    if conversation is None and social_account is not None:
        conversation, _ = Conversation.objects.get_or_create(
            contact_id=contact.pk, social_account=social_account,
            defaults={"organization_id": contact.organization_id})
    return social_account, conversation


def _new_run(automation, contact, *, entrypoint, binding, social_account, conversation, context,
             trigger_depth, now, **fields) -> AutomationRun:
    return AutomationRun(
        organization_id=automation.organization_id, automation_id=automation.pk,
        entrypoint=entrypoint, binding=binding, contact_id=contact.pk, social_account=social_account,
        conversation=conversation, context=dict(context or {}), trigger_depth=trigger_depth,
        started_at=now, updated_at=now, **fields,
    )


def _record_skip(automation, contact, blocked: EnrollBlocked, now, *, pause_global: bool = False,
                 **links) -> EnrollResult:
    """Trigger path: keep a row saying this contact was not enrolled, and why (the debugging trail).

    The row is an `exited` run (the seed's exited includes the reentry skip), so it counts in total_exited
    and the counter matches the exited rows the runs API lists; it is not an enrollment."""
    reason = blocked.skip_reason
    run = _new_run(automation, contact, now=now, status=RunStatus.EXITED, exit_reason=reason,
                   completed_at=now, current_node_key=None, **links)
    if store.insert_run(run, COUNTER_FIELDS[RunStatus.EXITED]):
        metrics.run_finished(RunStatus.EXITED, reason).inc()  # counted where total_exited counts it
    return EnrollResult(run=run, blocked=blocked, pause_global=pause_global)


def enqueue_advance(run_id: str) -> None:
    """Hand the run to a Celery worker (called on commit)."""
    from automations import tasks

    try:
        tasks.advance_run.delay(run_id)
    except Exception:  # noqa: BLE001 - the broker is down: the run stays active; log loudly
        logger.exception("could not enqueue advance_run for %s", run_id)


def enroll(automation: Automation, contact, *, entrypoint=None, binding=None, conversation=None,
           social_account=None, context: dict | None = None, source: str = MANUAL, trigger_depth: int = 0,
           now: datetime | None = None) -> EnrollResult:
    """Enroll `contact` into `automation`, or say why not. See the module docstring for the rules."""
    now = now or timezone.now()
    with transaction.atomic():
        # One decision at a time per (automation, contact), until this transaction ends. The partial unique
        # index stops two *live* runs, but not check-then-insert across a run's end: event A enrolls and its
        # run completes before event B inserts; B's re-entry check ran before A committed, and A's run is no
        # longer live when B inserts. Under this lock B's check sees A's committed run.
        store.lock_enrollment(automation.pk, contact.pk)
        # Status and root read fresh, under the lock: graph edits and pauses are live the moment they
        # commit. The pause that applies and the prior runs come with them, at the same instant.
        cooldown = timedelta(minutes=max(reentry_rules(entrypoint, binding)[1], 0))
        standing = store.standing(automation.pk, contact.pk, now, since=now - cooldown)
        if standing.status != AutomationStatus.ACTIVE:
            return EnrollResult(blocked=EnrollBlocked.AUTOMATION_NOT_ACTIVE)
        if trigger_depth > MAX_TRIGGER_DEPTH:
            return EnrollResult(blocked=EnrollBlocked.TRIGGER_DEPTH_EXCEEDED)
        social_account, conversation = _channel_of(automation, contact, entrypoint=entrypoint, binding=binding,
                                                   conversation=conversation, social_account=social_account)
        links = {"entrypoint": entrypoint, "binding": binding, "social_account": social_account,
                 "conversation": conversation, "context": context, "trigger_depth": trigger_depth}
        paused = standing.pause_id is not None
        if paused and source == TRIGGER:
            return _record_skip(automation, contact, EnrollBlocked.CONTACT_PAUSED, now,
                                pause_global=standing.pause_global, **links)
        if reentry_blocked(standing.prior, entrypoint=entrypoint, binding=binding):
            if source == TRIGGER:
                return _record_skip(automation, contact, EnrollBlocked.REENTRY_BLOCKED, now, **links)
            return EnrollResult(blocked=EnrollBlocked.REENTRY_BLOCKED)

        if paused:  # manual enrollment of a paused contact: parked at the root, not executed
            state = {"status": RunStatus.WAITING, "waiting_for": WaitingFor.EXTERNAL_EVENT,
                     "waiting_until": standing.paused_until}
        else:
            state = {"status": RunStatus.ACTIVE}
        run = _new_run(automation, contact, now=now, current_node_key=standing.root_node_key, **links, **state)
        if not store.insert_run(run, "total_enrolled"):  # a live run the checks could not see (another path)
            if source == TRIGGER:
                return _record_skip(automation, contact, EnrollBlocked.REENTRY_BLOCKED, now, **links)
            return EnrollResult(blocked=EnrollBlocked.REENTRY_BLOCKED)
        if run.status == RunStatus.ACTIVE:
            transaction.on_commit(lambda: enqueue_advance(run.pk))
    metrics.run_started(run.status).inc()
    return EnrollResult(run=run)
