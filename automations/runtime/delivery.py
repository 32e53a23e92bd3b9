"""After delivery: a message node on a network provider waits (`waiting_for` = delivery) until the
platform answered for every part it sent, then `settle` moves the run on as the node would have —
`next`, or on to wait for the reply its buttons ask for — or through `error` when a part failed
(`failed` / handler_failure when `error` is not wired, as the walk does for a failure at send time).

Every write goes through the optimistic run write (`runs.write_run`, also under `resume_waiting`):
a run that moved meanwhile (stopped, graph changed, settled by a duplicate task) loses the write and
nothing happens. The step row written here carries what the platform said (provider message ids,
delivery status, error)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from automations.models import AutomationRun, ExitReason, RunStatus, StepOutcome, StepRun, WaitingFor
from automations.nodes import message as message_node
from automations.runtime import jobs
from automations.runtime.engine import GraphView
from automations.runtime.resume import exit_graph_changed, resume_waiting, waiting_entry_port
from automations.runtime.runner import graph_of, load_run
from automations.runtime.runs import counted_finish, finished, steps_written, write_run
from automations.store.runs import LoadedRun
from contacts.models import DeliveryStatus, Message

STALE_AFTER = timedelta(seconds=60)


def settle(run_or_id: str | AutomationRun | LoadedRun, node_key: str | None = None, *,
           now: datetime | None = None) -> bool:
    """Move on a run waiting for the delivery of `node_key`'s parts once none is pending. Returns True
    iff this call moved the run."""
    loaded = load_run(run_or_id)
    if loaded is None:
        return False
    run = loaded.run
    if run.status != RunStatus.WAITING or run.waiting_for != WaitingFor.DELIVERY:
        return False
    if node_key is not None and run.current_node_key != node_key:
        return False
    node_key = run.current_node_key
    now = now or timezone.now()
    waiting = (StepRun.objects.filter(run_id=run.pk, node_key=node_key, outcome=StepOutcome.WAITING)
               .order_by("-executed_at", "-id").values_list("payload", flat=True).first()) or {}
    ids = [i for i in waiting.get("message_ids") or [] if isinstance(i, str)]
    rows = {row["id"]: row for row in Message.objects.filter(pk__in=ids).values(
        "id", "status", "provider_message_id", "error_code", "error")}
    if any(rows.get(i, {}).get("status", DeliveryStatus.PENDING) == DeliveryStatus.PENDING for i in ids):
        return False
    report = {"delivery": [{"message_id": i, "status": rows[i]["status"],
                            "provider_message_id": rows[i]["provider_message_id"] or None,
                            **({"error_code": rows[i]["error_code"], "error": rows[i]["error"]}
                               if rows[i]["status"] in (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN) else {})}
                           for i in ids]}
    graph = GraphView(graph_of(loaded))
    node = graph.node(node_key)
    if node is None:
        return exit_graph_changed(run, now)
    failed = next((rows[i] for i in ids if rows[i]["status"] == DeliveryStatus.FAILED), None)
    if failed is not None:
        error = {"code": failed["error_code"] or "delivery_failed", "message": failed["error"][:1000]}
        if graph.target(node_key, "error") is not None:
            return resume_waiting(loaded, "error", payload=report, step_outcome=StepOutcome.FAILED, error=error,
                                  now=now)
        return _handler_failure(loaded, node, report, error, now)
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    if message_node.waits(config):
        return _wait_for_reply(loaded, node, config, report, now)
    return resume_waiting(loaded, "next", payload=report, now=now)


def settle_waiting(run_id: str) -> bool:
    """`settle` for a run found waiting for delivery by the sweep (whatever node it waits at)."""
    return settle(run_id)


def stale_waits(limit: int = 200) -> list[str]:
    """Runs still waiting for delivery a minute after their last write (a worker died between the
    delivery and the settle, or a delivery task was lost): the tick hands them to `settle_deliveries`."""
    cutoff = timezone.now() - STALE_AFTER
    return list(AutomationRun.objects.filter(status=RunStatus.WAITING, updated_at__lt=cutoff,
                                             waiting_for=WaitingFor.DELIVERY)
                .order_by("updated_at").values_list("pk", flat=True)[:limit])


def _step_row(loaded: LoadedRun, node: dict, outcome: str, payload: dict, error: dict | None,
              now: datetime) -> tuple:
    run = loaded.run
    return (run.pk, run.automation_id, node["key"], node.get("kind", ""), waiting_entry_port(loaded), None, outcome,
            0, payload, error, now)


def _wait_for_reply(loaded: LoadedRun, node: dict, config: dict, report: dict, now: datetime) -> bool:
    """Delivered: now wait for the reply the buttons/quick replies ask for (`no_response` job if set)."""
    wait = message_node.reply_wait(config, now)
    job = wait.scheduled_job(node["key"])
    step = _step_row(loaded, node, StepOutcome.WAITING, report, None, now)
    run = loaded.run
    with transaction.atomic():
        if not write_run(run, hooks=[steps_written([step])], waiting_for=wait.waiting_for, waiting_until=wait.until):
            return False
        if job is not None:
            jobs.schedule(run, *job)
    return True


def _handler_failure(loaded: LoadedRun, node: dict, report: dict, error: dict, now: datetime) -> bool:
    step = _step_row(loaded, node, StepOutcome.FAILED, report, error, now)
    run = loaded.run
    return write_run(run, hooks=[steps_written([step]), counted_finish(run.automation_id, RunStatus.FAILED)],
                     **finished(RunStatus.FAILED, ExitReason.HANDLER_FAILURE, now, current_node_key=node["key"]))
