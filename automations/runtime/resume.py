"""Moving a waiting run on: `resume_waiting` (a reply, an event or a timeout chose the port) and
`resume_parked` (the contact pause that parked the run is gone).

Both check graph-change safety first — the waiting node gone or the port gone → `exited` /
`graph_changed` — then write the resumed node's step row and continue the walk in the same first
transaction, so a stale copy of the run (zero rows) changes nothing and sends nothing."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from automations.models import Automation, AutomationRun, ExitReason, RunStatus, StepOutcome, StepRun, WaitingFor
from automations.runtime.engine import GraphView, Position, Step
from automations.runtime.runner import execute, graph_of, load_run
from automations.runtime.runs import exit_run
from automations.store.enrollment import active_pause
from automations.store.jobs import Claim
from automations.store.runs import LoadedRun


def exit_graph_changed(run: AutomationRun, now: datetime, port_key: str | None = None, *,
                       finishing_job: Claim | None = None) -> bool:
    """End a live run `exited` / `graph_changed` (`runs.exit_run`: one statement with its jobs and
    counter). False: another worker moved the run first."""
    return exit_run(run, ExitReason.GRAPH_CHANGED, now, finishing_job=finishing_job, current_port_key=port_key)


def resume_waiting(run: str | AutomationRun | LoadedRun, port_key: str, *, context_updates: dict | None = None,
                   payload: dict | None = None, step_outcome: str = StepOutcome.SUCCESS, now: datetime | None = None,
                   finishing_job: Claim | None = None, error: dict | None = None) -> bool:
    """Leave the node a `waiting` run waits at through `port_key` and keep advancing.

    Writes the waiting node's step row (`exited_via_port_key` = port_key, `payload`, `step_outcome`),
    merges `context_updates` into the run context, cancels the wait's pending timeout jobs (`error`: the
    step row's error, for a wait that ended in a handled failure). Runs parked
    by a contact pause are not touched (use resume_parked). `finishing_job` (the scheduler's claimed
    timeout job) is marked done in the same transaction, so True also means it was (if still held).
    Returns True iff this call moved the run (False: not waiting, or another worker moved it first).
    `run`: its id, or the run as read (a LoadedRun walks on what was read with it; see `runner.load_run`)."""
    loaded = load_run(run)
    if loaded is None:
        return False
    run = loaded.run
    if run.status != RunStatus.WAITING or run.waiting_for == WaitingFor.EXTERNAL_EVENT:
        return False
    now_value = now or timezone.now()
    graph = GraphView(graph_of(loaded))
    node = graph.node(run.current_node_key)
    if node is None or port_key not in graph.ports(node):
        return exit_graph_changed(run, now_value, port_key, finishing_job=finishing_job)
    step = Step(node["key"], node.get("kind", ""), waiting_entry_port(loaded), port_key, step_outcome,
                payload=payload or {}, error=error)
    driver = execute(loaded, Position(node["key"], port_key=port_key), gone_reason=ExitReason.GRAPH_CHANGED,
                     now=now, prelude=[step], context_updates=context_updates, cancel_wait_jobs=True,
                     finishing_job=finishing_job)
    return driver.persists > 0


def resume_parked(run: str | AutomationRun | LoadedRun, now: datetime | None = None) -> bool:
    """Continue a run parked by a contact pause (`waiting` / `external_event`) exactly where it parked:
    the node it was about to visit is visited now. Refuses (False) while a pause still applies."""
    loaded = load_run(run)
    if loaded is None:
        return False
    run = loaded.run
    if run.status != RunStatus.WAITING or run.waiting_for != WaitingFor.EXTERNAL_EVENT:
        return False
    now_value = now or timezone.now()
    if active_pause(run.contact_id, run.automation_id, now_value) is not None:
        return False
    node = GraphView(graph_of(loaded)).node(run.current_node_key)
    if node is None:
        return exit_graph_changed(run, now_value)
    driver = execute(loaded, Position(node["key"], entered_via=_parked_entry_port(run)),
                     gone_reason=ExitReason.GRAPH_CHANGED, now=now)
    return driver.persists > 0


def retire_runs_off_graph(automation_id: str, *, now: datetime | None = None, attempts: int = 3) -> list[str]:
    """Exit `graph_changed` every waiting run of the automation whose node the current graph no longer has.

    Called after a graph save commits: a wait with no timeout job (input, wait_event, a waiting message)
    would otherwise stay `waiting` forever and block the contact's re-entry. A run another worker moves
    meanwhile is re-read and checked again. Returns the ids it exited."""
    now = now or timezone.now()
    graph = GraphView(Automation.objects.filter(pk=automation_id).values_list("graph", flat=True).first())
    orphans = (AutomationRun.objects.filter(automation_id=automation_id, status=RunStatus.WAITING)
               .exclude(current_node_key__in=list(graph.nodes)))
    exited = []
    for run in orphans:
        for _ in range(attempts):
            if exit_graph_changed(run, now):
                exited.append(run.pk)
                break
            run.refresh_from_db()
            if run.status != RunStatus.WAITING or graph.node(run.current_node_key) is not None:
                break
    return exited


def waiting_entry_port(loaded: LoadedRun) -> str | None:
    """The port the run entered the node it waits at (its latest `waiting` row there), so the resume row
    and a re-prompt row read like the visit that started the wait. `read_run` reads it with the run;
    that answer holds while the LoadedRun is fresh."""
    if loaded.fresh:
        return loaded.entry_port
    run = loaded.run
    return (StepRun.objects.filter(run_id=run.pk, node_key=run.current_node_key, outcome=StepOutcome.WAITING)
            .order_by("-executed_at", "-id").values_list("entered_via_port_key", flat=True).first())


def _parked_entry_port(run: AutomationRun) -> str | None:
    """The port the run came through before it parked (recorded on the parking step)."""
    last = (StepRun.objects.filter(run_id=run.pk).order_by("-executed_at", "-id")
            .values("node_key", "entered_via_port_key", "payload").first())
    if last and last["node_key"] == run.current_node_key and (last["payload"] or {}).get("parked"):
        return last["entered_via_port_key"]
    return None
