"""The runner: `advance(run)` executes an active run until it waits, parks, ends or fails.

One execution iteration = one call, and in the common case two statements: `store.runs.read_run` reads
the run with its automation, contact, account, conversation and the hints the walk needs (a LoadedRun,
passed explicitly to whatever walks or resumes it); the persist writes
the run (optimistically, through `write_run`) together with every step row of the iteration, the
buffered effects (outbox messages, contact changes), the wait's job updates and the automation's
counter — typed hooks in a declared phase order (`runtime.hooks`: run, jobs, messages, contact, steps,
counter), written by one statement iff the run write wins, and one commit. Buffered operations
(enrollments, pauses, contact fields) or a job to schedule put the same hooks in a transaction: the
operations run after the run write, then the steps, the new job and the counter. If the run write finds
zero rows, another worker moved the run: nothing of this iteration is written or sent. A node that
calls out (http_request, webhook actions) makes the runner persist first, so the call happens with the
run's state committed and no transaction open.
"""

from __future__ import annotations

import copy
import logging
from contextlib import nullcontext
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automations.models import (
    Automation,
    AutomationRun,
    ExitReason,
    RunStatus,
    StepRun,
    WaitingFor,
)
from automations.runtime import jobs
from automations.runtime.effects import RESUMED, Effects
from automations.runtime.engine import GraphView, PauseInfo, Position, Step, Stop, Walker
from automations.runtime.hooks import AfterWrite, WritePhase
from automations.runtime.runs import counted_finish, finished, steps_written, write_run
from automations.store.enrollment import applying_pauses
from automations.store.jobs import Claim
from automations.store.runs import LoadedRun, read_run
from automations.store.steps import STEP_COLUMNS
from contacts.models import Contact
from relay.observability import logs, metrics

logger = logging.getLogger(__name__)

STEP_KIND_INDEX, STEP_OUTCOME_INDEX = STEP_COLUMNS.index("node_kind"), STEP_COLUMNS.index("outcome")


def load_run(run: str | AutomationRun | LoadedRun) -> LoadedRun | None:
    """What an advance or a resume walks on: a run id is read with its relations and hints in one
    statement (`store.runs.read_run`); a run object read elsewhere is wrapped unread (its relations are
    read again by `execute`); a LoadedRun is passed on as is."""
    if isinstance(run, LoadedRun):
        return run
    if isinstance(run, AutomationRun):
        return LoadedRun.unread(run)
    return read_run(run)


def graph_of(loaded: LoadedRun) -> dict:
    """The run's automation graph as it is now: the copy read with the run while fresh, else read it."""
    if loaded.fresh:
        return loaded.run.automation.graph
    return Automation.objects.only("graph").get(pk=loaded.run.automation_id).graph


def _take_fresh_relations(loaded: LoadedRun) -> tuple[Automation | None, Contact | None, bool | None, bool | None]:
    """The automation and contact to walk with, plus the pause-rows and change-listener hints. Those
    read with the run are used once (`LoadedRun.take`: a LoadedRun kept around never walks on old data);
    otherwise they are read now."""
    run = loaded.run
    if loaded.take():
        return run.automation, run.contact, loaded.has_pause_rows, loaded.has_change_listeners
    return (Automation.objects.filter(pk=run.automation_id).first(),
            Contact.objects.filter(pk=run.contact_id).first(), None, None)


class LiveDriver:
    """Persistence for a real run: buffered step rows, one transaction per persist."""

    def __init__(self, run: AutomationRun, effects: Effects, *, cancel_wait_jobs: bool = False,
                 finishing_job: Claim | None = None):
        self.run = run
        self.effects = effects
        self.steps: list[tuple] = []  # step rows in STEP_COLUMNS order
        self.cancel_wait_jobs = cancel_wait_jobs  # a resume cancels the timeout jobs of the wait it ends
        self.finishing_job = finishing_job  # …and marks done the one that resumed it (scheduler)
        self.persists = 0
        self._pauses: dict | None = None

    def no_pause_rows(self) -> None:
        """The contact had no pause rows when the run was read: skip reading them for the first persist."""
        self._pauses = {}

    # -- walker hooks ---------------------------------------------------------------------------
    def record(self, step: Step) -> None:
        self.steps.append((self.run.pk, self.run.automation_id, step.node_key, step.node_kind,
                           step.entered_via_port_key, step.exited_via_port_key, step.outcome, step.duration_ms,
                           step.payload, step.error, step.executed_at))

    def choice(self, node_key: str) -> str | None:
        return None

    def paused(self, now: datetime) -> PauseInfo | None:
        """The pause that applies now: rows read once per persist, overlaid with this run's own
        pause/resume actions that are not written yet."""
        if self._pauses is None:
            self._pauses = {row.automation_id: row for row in
                            applying_pauses(self.run.contact_id, self.run.automation_id, now)}
        for scope in (None, self.run.automation_id):
            if scope in self.effects.pause_changes:
                change = self.effects.pause_changes[scope]
                if change != RESUMED and (change is None or change > now):
                    return PauseInfo("automation_action", change, None, scope)
                continue
            row = self._pauses.get(scope)
            if row is not None and (row.paused_until is None or row.paused_until > now):
                return PauseInfo(row.pause_reason, row.paused_until, row.id, scope)
        return None

    def before_callout(self, node_key: str, context: dict) -> bool:
        ok = self.persist({"status": RunStatus.ACTIVE, "current_node_key": node_key, "current_port_key": None,
                           "waiting_for": None, "waiting_until": None, "context": copy.deepcopy(context)})
        self._pauses = None  # time passes during the call: read pauses again afterwards
        if ok:
            # The run's step rows so far: the same when a crashed visit is retried (its own row is written
            # after the call), one more for every later visit — what the Idempotency-Key is made of.
            self.effects.begin_callout(node_key, StepRun.objects.filter(run_id=self.run.pk).count())
        return ok

    # -- persistence ----------------------------------------------------------------------------
    def persist(self, changes: dict, *, job: tuple | None = None, finished_status: str | None = None) -> bool:
        """Write the run and everything this iteration buffered, as hooks of `write_run` in their phase
        order (run, jobs, messages, contact, steps, counter: `runtime.hooks`). The common case — steps,
        messages, contact changes, counters, the wait's jobs — is ONE statement, so it commits once with
        no BEGIN/COMMIT round trips. Buffered operations or a job to schedule need a transaction: the
        run write carries the phases before STEPS, the operations follow, then the steps (start_automation
        completes its step payload with the run it enrolled), the new job, and the counter last."""
        transactional = job is not None or self.effects.has_operations
        hooks = [jobs.cancel_run_jobs(self.run, jobs.WAIT_JOB_KINDS, finishing=self.finishing_job)
                 if self.cancel_wait_jobs else None,
                 *self.effects.hooks(),
                 steps_written(self.steps),
                 AfterWrite(lambda: jobs.schedule(self.run, *job), WritePhase.STEPS) if job is not None else None,
                 counted_finish(self.run.automation_id, finished_status) if finished_status else None]
        with transaction.atomic() if transactional else nullcontext():
            if not write_run(self.run, hooks=hooks, apart_from=WritePhase.STEPS if transactional else None,
                             **changes):
                self.steps = []
                self.effects.discard()
                return False
        if self.steps:
            metrics.count_steps(self.steps, STEP_KIND_INDEX, STEP_OUTCOME_INDEX)
        if finished_status:
            metrics.run_finished(finished_status, changes.get("exit_reason") or "").inc()
        # The "nobody listens for contact changes" hint was read with the run: it holds for this first
        # write only (a call-out may take long; an entrypoint created meanwhile must see later changes).
        self.effects.change_listeners = None
        self.cancel_wait_jobs = False
        self.steps = []
        self.persists += 1
        return True

    def persist_stop(self, stop: Stop, context: dict, now: datetime) -> bool:
        context = copy.deepcopy(context)
        if stop.kind == "wait":
            wait = stop.wait
            return self.persist({"status": RunStatus.WAITING, "waiting_for": wait.waiting_for,
                                 "waiting_until": wait.until, "current_node_key": stop.node_key,
                                 "current_port_key": None, "context": context},
                                job=wait.scheduled_job(stop.node_key))
        if stop.kind == "park":
            return self.persist({"status": RunStatus.WAITING, "waiting_for": WaitingFor.EXTERNAL_EVENT,
                                 "waiting_until": stop.pause.paused_until, "current_node_key": stop.node_key,
                                 "current_port_key": None, "context": context})
        return self.persist(finished(stop.status, stop.exit_reason, now, current_node_key=stop.node_key,
                                     current_port_key=stop.port_key, context=context),
                            finished_status=stop.status)


def execute(loaded: LoadedRun, start: Position, *, gone_reason: str, now: datetime | None = None,
            prelude: list[Step] | None = None, context_updates: dict | None = None,
            cancel_wait_jobs: bool = False, finishing_job: Claim | None = None) -> LiveDriver:
    """Walk the run from `start` and persist what happened. `prelude` steps (a resume's step row) and
    `context_updates` are persisted with the first write. Returns the driver (`persists` > 0 iff the
    first write won)."""
    run = loaded.run
    automation, contact, has_pause_rows, has_change_listeners = _take_fresh_relations(loaded)
    effects = Effects(run=run, contact=contact, automation=automation)
    effects.change_listeners = has_change_listeners
    driver = LiveDriver(run, effects, cancel_wait_jobs=cancel_wait_jobs, finishing_job=finishing_job)
    if has_pause_rows is False:
        driver.no_pause_rows()
    if automation is None or contact is None:  # deleted meanwhile: the run row goes with them (cascade)
        return driver
    for step in prelude or []:
        driver.record(step)
    context = copy.deepcopy(run.context or {})
    context.update(context_updates or {})
    walker = Walker(graph=GraphView(automation.graph), run=run, context=context, contact=contact,
                    automation=automation, effects=effects, driver=driver, now=now,
                    max_visits=getattr(settings, "RELAY_MAX_VISITS_PER_ITERATION", 200))
    with logs.bound(run_id=run.pk, organization_id=run.organization_id):  # on every line logged meanwhile
        stop = walker.walk(start, gone_reason=gone_reason)
        if stop is not None and not driver.persist_stop(stop, context, now or timezone.now()):
            logger.info("run %s moved under us; stopped quietly", run.pk)
    return driver


def advance(run_or_id: str | AutomationRun | LoadedRun, *, now: datetime | None = None) -> AutomationRun | None:
    """Execute an `active` run from where it stands. Returns the run if this call moved it, else None
    (not found, not active, or another worker moved it first)."""
    loaded = load_run(run_or_id)
    if loaded is None or loaded.run.status != RunStatus.ACTIVE:
        return None
    run = loaded.run
    if run.current_port_key:
        start = Position(run.current_node_key, port_key=run.current_port_key)
    else:
        start = Position(run.current_node_key)
    driver = execute(loaded, start, gone_reason=ExitReason.NODE_REMOVED, now=now)
    return run if driver.persists else None
