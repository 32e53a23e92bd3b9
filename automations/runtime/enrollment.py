"""Enrollment: put a contact into an automation (`enroll`), or record why not.

Rules, in order (SPEC §4): the automation must be `active`; a pause row that applies skips a
trigger-path enrollment (recorded as an `exited` / `contact_paused` run row) while a manual enrollment
creates the run parked `waiting` / `external_event` without executing it; re-entry — a live run blocks,
`allow_reentry=false` blocks after any prior run, otherwise a `completed` run whose `completed_at` is
within `reentry_cooldown_min` blocks (trigger path: recorded as an `exited` / `reentry_cooldown` row;
manual: just refused). The partial unique index (one live run per contact × automation) is the last line
of defence against two enrollments racing past these checks. A new active run is executed after commit by
the Celery task `advance_run`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from automations.models import (
    LIVE_RUN_STATUSES,
    Automation,
    AutomationRun,
    AutomationStatus,
    ExitReason,
    RunStatus,
    WaitingFor,
)
from automations.runtime.pauses import active_pause
from automations.runtime.runs import count_enrolled, count_finish
from contacts.models import ContactIdentity, Conversation

logger = logging.getLogger(__name__)

MANUAL = "manual"
TRIGGER = "trigger"

CONTACT_PAUSED = "contact_paused"
REENTRY_BLOCKED = "reentry_blocked"
AUTOMATION_NOT_ACTIVE = "automation_not_active"
TRIGGER_DEPTH_EXCEEDED = "trigger_depth_exceeded"

MAX_TRIGGER_DEPTH = 10  # automations starting automations: a loop guard
DEFAULT_ALLOW_REENTRY = True
DEFAULT_REENTRY_COOLDOWN_MIN = 60
LIVE_RUN_CONSTRAINT = "one_live_run_per_contact_automation"
# Rows that record a skipped enrollment: never a "prior run" for re-entry purposes.
SKIP_REASONS = (ExitReason.REENTRY_COOLDOWN, ExitReason.CONTACT_PAUSED)


@dataclass
class EnrollResult:
    run: AutomationRun | None = None  # the new run; for a recorded trigger-path skip, the skip row
    blocked: str | None = None  # contact_paused | reentry_blocked | automation_not_active | …

    @property
    def ok(self) -> bool:
        return self.blocked is None


def reentry_rules(entrypoint=None, binding=None) -> tuple[bool, int]:
    if entrypoint is not None:
        return entrypoint.allow_reentry, entrypoint.reentry_cooldown_min
    config = (binding.config or {}) if binding is not None else {}
    allow = config.get("allow_reentry", DEFAULT_ALLOW_REENTRY)
    cooldown = config.get("reentry_cooldown_min", DEFAULT_REENTRY_COOLDOWN_MIN)
    return bool(allow), int(cooldown) if isinstance(cooldown, int) and cooldown >= 0 else DEFAULT_REENTRY_COOLDOWN_MIN


def reentry_blocked(automation_id: str, contact_id: str, *, entrypoint=None, binding=None,
                    now: datetime | None = None) -> bool:
    now = now or timezone.now()
    prior = (AutomationRun.objects.filter(automation_id=automation_id, contact_id=contact_id)
             .exclude(Q(status=RunStatus.EXITED) & Q(exit_reason__in=SKIP_REASONS)))
    if prior.filter(status__in=LIVE_RUN_STATUSES).exists():
        return True
    allow, cooldown_min = reentry_rules(entrypoint, binding)
    if not allow:
        return prior.exists()
    if cooldown_min <= 0:
        return False
    return prior.filter(status=RunStatus.COMPLETED, completed_at__gt=now - timedelta(minutes=cooldown_min)).exists()


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


def _is_live_run_clash(exc: IntegrityError) -> bool:
    diag = getattr(getattr(exc, "__cause__", None), "diag", None)
    return getattr(diag, "constraint_name", None) == LIVE_RUN_CONSTRAINT or LIVE_RUN_CONSTRAINT in str(exc)


def _new_run(automation, contact, *, entrypoint, binding, social_account, conversation, context,
             trigger_depth, now, **fields) -> AutomationRun:
    return AutomationRun(
        organization_id=automation.organization_id, automation_id=automation.pk,
        entrypoint=entrypoint, binding=binding, contact_id=contact.pk, social_account=social_account,
        conversation=conversation, context=dict(context or {}), trigger_depth=trigger_depth,
        started_at=now, updated_at=now, **fields,
    )


def _record_skip(automation, contact, reason: str, blocked: str, now, **links) -> EnrollResult:
    """Trigger path: keep a row saying this contact was not enrolled, and why (the debugging trail).

    The row is an `exited` run (the seed's exited includes the reentry skip), so it counts in total_exited
    and the counter matches the exited rows the runs API lists; it is not an enrollment."""
    run = _new_run(automation, contact, now=now, status=RunStatus.EXITED, exit_reason=reason,
                   completed_at=now, current_node_key=None, **links)
    run.save(force_insert=True)
    count_finish(automation.pk, RunStatus.EXITED)
    return EnrollResult(run=run, blocked=blocked)


def _serialize_enrollments(automation_id: str, contact_id: str) -> None:
    """One enrollment decision at a time per (automation, contact), until the deciding transaction ends.

    The partial unique index stops two *live* runs, but not check-then-insert across a run's end: event A
    enrolls and its run completes before event B inserts; B's re-entry check ran before A committed, and
    A's run is no longer live when B inserts. Under this lock B's check sees A's committed run (live, or
    completed within the cooldown)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       [f"enroll:{automation_id}:{contact_id}"])


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
    # Read status and root fresh: graph edits and pauses are live the moment they commit.
    current = Automation.objects.filter(pk=automation.pk).values_list("status", "graph__root_node_key").first()
    status, root_node_key = current if current else (None, None)
    if status != AutomationStatus.ACTIVE:
        return EnrollResult(blocked=AUTOMATION_NOT_ACTIVE)
    if trigger_depth > MAX_TRIGGER_DEPTH:
        return EnrollResult(blocked=TRIGGER_DEPTH_EXCEEDED)

    with transaction.atomic():
        _serialize_enrollments(automation.pk, contact.pk)
        social_account, conversation = _channel_of(automation, contact, entrypoint=entrypoint, binding=binding,
                                                   conversation=conversation, social_account=social_account)
        links = {"entrypoint": entrypoint, "binding": binding, "social_account": social_account,
                 "conversation": conversation, "context": context, "trigger_depth": trigger_depth}
        pause = active_pause(contact.pk, automation.pk, now)
        if pause is not None and source == TRIGGER:
            return _record_skip(automation, contact, ExitReason.CONTACT_PAUSED, CONTACT_PAUSED, now, **links)
        if reentry_blocked(automation.pk, contact.pk, entrypoint=entrypoint, binding=binding, now=now):
            if source == TRIGGER:
                return _record_skip(automation, contact, ExitReason.REENTRY_COOLDOWN, REENTRY_BLOCKED, now, **links)
            return EnrollResult(blocked=REENTRY_BLOCKED)

        if pause is not None:  # manual enrollment of a paused contact: parked at the root, not executed
            state = {"status": RunStatus.WAITING, "waiting_for": WaitingFor.EXTERNAL_EVENT,
                     "waiting_until": pause.paused_until}
        else:
            state = {"status": RunStatus.ACTIVE}
        run = _new_run(automation, contact, now=now, current_node_key=root_node_key, **links, **state)
        try:
            with transaction.atomic():
                run.save(force_insert=True)
        except IntegrityError as exc:
            if not _is_live_run_clash(exc):
                raise
            if source == TRIGGER:
                return _record_skip(automation, contact, ExitReason.REENTRY_COOLDOWN, REENTRY_BLOCKED, now, **links)
            return EnrollResult(blocked=REENTRY_BLOCKED)
        count_enrolled(automation.pk)
        if run.status == RunStatus.ACTIVE:
            transaction.on_commit(lambda: enqueue_advance(run.pk))
    return EnrollResult(run=run)
