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
from functools import lru_cache

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from automations.models import (
    LIVE_RUN_STATUSES,
    Automation,
    AutomationRun,
    AutomationStatus,
    EnrollBlocked,
    InboundOutcome,
    RunStatus,
    WaitingFor,
)
from automations.runtime.runs import COUNTER_FIELDS
from automations.store import base as sql
from contacts.models import ContactAutomationControl, ContactIdentity, Conversation
from relay.observability import metrics

logger = logging.getLogger(__name__)

MANUAL = "manual"
TRIGGER = "trigger"

MAX_TRIGGER_DEPTH = 10  # automations starting automations: a loop guard
DEFAULT_ALLOW_REENTRY = True
DEFAULT_REENTRY_COOLDOWN_MIN = 60
# Rows that record a skipped enrollment: never a "prior run" for re-entry purposes.
SKIP_REASONS = tuple(blocked.skip_reason for blocked in EnrollBlocked if blocked.skip_reason)


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


def reentry_blocked(automation_id: str, contact_id: str, *, entrypoint=None, binding=None,
                    now: datetime | None = None, prior: PriorRuns | None = None) -> bool:
    """Do the re-entry rules keep this contact out? `prior`: the contact's earlier runs as `enroll` read
    them (under its lock, with the cooldown of these rules); read now if not given."""
    now = now or timezone.now()
    allow, cooldown_min = reentry_rules(entrypoint, binding)
    if prior is None:
        runs = (AutomationRun.objects.filter(automation_id=automation_id, contact_id=contact_id)
                .exclude(Q(status=RunStatus.EXITED) & Q(exit_reason__in=SKIP_REASONS)))
        if runs.filter(status__in=LIVE_RUN_STATUSES).exists():
            return True
        if not allow:
            return runs.exists()
        if cooldown_min <= 0:
            return False
        return runs.filter(status=RunStatus.COMPLETED,
                           completed_at__gt=now - timedelta(minutes=cooldown_min)).exists()
    if prior.live:
        return True
    if not allow:
        return prior.any
    return cooldown_min > 0 and prior.recently_completed


@dataclass(frozen=True)
class PriorRuns:
    """A contact's earlier runs of one automation (skip rows aside), as far as re-entry cares."""

    live: bool  # created / active / waiting
    any: bool
    recently_completed: bool  # completed within the cooldown `enroll` asked about


@dataclass(frozen=True)
class _Standing:
    """What `enroll` reads in one statement under its lock."""

    status: str | None  # the automation's, None if it is gone
    root_node_key: str | None
    pause_id: str | None  # the pause row that applies (global first), if any
    pause_global: bool  # that row pauses every automation
    paused_until: datetime | None
    prior: PriorRuns


@lru_cache(maxsize=1)
def _standing_text() -> str:
    runs, controls = AutomationRun._meta.db_table, ContactAutomationControl._meta.db_table
    live = ", ".join(f"'{s}'" for s in LIVE_RUN_STATUSES)
    skips = ", ".join(f"'{r}'" for r in SKIP_REASONS)
    prior = (f'SELECT 1 FROM "{runs}" r WHERE r."automation_id" = a."id" AND r."contact_id" = %(contact)s '
             f"AND NOT (r.\"status\" = '{RunStatus.EXITED}' AND COALESCE(r.\"exit_reason\", '') IN ({skips}))")
    return (
        f"SELECT a.\"status\", a.\"graph\" ->> 'root_node_key', p.\"id\", p.\"automation_id\" IS NULL, "
        f'p."paused_until", '
        f'EXISTS ({prior} AND r."status" IN ({live})), EXISTS ({prior}), '
        f"EXISTS ({prior} AND r.\"status\" = '{RunStatus.COMPLETED}' AND r.\"completed_at\" > %(since)s) "
        f'FROM "{Automation._meta.db_table}" a LEFT JOIN LATERAL (SELECT c."id", c."automation_id", c."paused_until" '
        f'FROM "{controls}" c '
        f'WHERE c."contact_id" = %(contact)s AND (c."automation_id" IS NULL OR c."automation_id" = a."id") '
        f'AND (c."paused_until" IS NULL OR c."paused_until" > %(now)s) '
        f'ORDER BY c."automation_id" ASC NULLS FIRST, c."created_at" ASC LIMIT 1) p ON TRUE '
        f'WHERE a."id" = %(automation)s'
    )


def _standing(automation_id: str, contact_id: str, now: datetime, cooldown_min: int) -> _Standing:
    """The automation's status and root, the pause that applies and the prior runs, read at one instant
    (the same rules as `active_pause` and `reentry_blocked`, which read them one query each)."""
    rows = sql.execute(_standing_text(), {"automation": automation_id, "contact": contact_id, "now": now,
                                          "since": now - timedelta(minutes=max(cooldown_min, 0))})
    if not rows:
        return _Standing(None, None, None, False, None, PriorRuns(False, False, False))
    status, root, pause_id, pause_global, paused_until, live, any_prior, recent = rows[0]
    return _Standing(status, root, pause_id, bool(pause_id and pause_global), paused_until,
                     PriorRuns(live, any_prior, recent))


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
    if _insert_run(run, COUNTER_FIELDS[RunStatus.EXITED]):
        metrics.run_finished(RunStatus.EXITED, reason).inc()  # counted where total_exited counts it
    return EnrollResult(run=run, blocked=blocked, pause_global=pause_global)


@lru_cache(maxsize=2)
def _insert_run_text(counter: str) -> str:
    fields = sql.insert_fields(AutomationRun)
    columns = ", ".join(f'"{field.column}"' for field in fields)
    values = ", ".join(["%s"] * len(fields))
    live = ", ".join(f"'{s}'" for s in LIVE_RUN_STATUSES)
    table = Automation._meta.db_table
    # The conflict target is the live-run index (its columns and predicate): any other unique violation
    # still raises.
    return (f'WITH run AS (INSERT INTO "{AutomationRun._meta.db_table}" ({columns}) VALUES ({values}) '
            f'ON CONFLICT ("contact_id", "automation_id") WHERE "status" IN ({live}) DO NOTHING RETURNING 1), '
            f'counted AS (UPDATE "{table}" SET "{counter}" = "{counter}" + 1 WHERE "id" = %s '
            f"AND EXISTS (SELECT 1 FROM run)) SELECT EXISTS (SELECT 1 FROM run)")


def _insert_run(run: AutomationRun, counter: str) -> bool:
    """Insert `run` and bump the automation's `counter` in one statement; False (nothing written) when the
    contact already has a live run of the automation (the partial unique index)."""
    inserted = sql.execute(_insert_run_text(counter), [*sql.insert_values(run), run.automation_id])[0][0]
    if inserted:
        run._state.adding = False
        run._state.db = connection.alias
    return inserted


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
    with transaction.atomic():
        _serialize_enrollments(automation.pk, contact.pk)
        # Status and root read fresh, under the lock: graph edits and pauses are live the moment they
        # commit. The pause rows and the prior runs come with them, at the same instant.
        standing = _standing(automation.pk, contact.pk, now, reentry_rules(entrypoint, binding)[1])
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
        if reentry_blocked(automation.pk, contact.pk, entrypoint=entrypoint, binding=binding, now=now,
                           prior=standing.prior):
            if source == TRIGGER:
                return _record_skip(automation, contact, EnrollBlocked.REENTRY_BLOCKED, now, **links)
            return EnrollResult(blocked=EnrollBlocked.REENTRY_BLOCKED)

        if paused:  # manual enrollment of a paused contact: parked at the root, not executed
            state = {"status": RunStatus.WAITING, "waiting_for": WaitingFor.EXTERNAL_EVENT,
                     "waiting_until": standing.paused_until}
        else:
            state = {"status": RunStatus.ACTIVE}
        run = _new_run(automation, contact, now=now, current_node_key=standing.root_node_key, **links, **state)
        if not _insert_run(run, "total_enrolled"):  # a live run the checks could not see (another path)
            if source == TRIGGER:
                return _record_skip(automation, contact, EnrollBlocked.REENTRY_BLOCKED, now, **links)
            return EnrollResult(blocked=EnrollBlocked.REENTRY_BLOCKED)
        if run.status == RunStatus.ACTIVE:
            transaction.on_commit(lambda: enqueue_advance(run.pk))
    metrics.run_started(run.status).inc()
    return EnrollResult(run=run)
