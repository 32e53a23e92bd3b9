"""Automation lifecycle: create, save a graph (validate + auto-pause), activate, pause, archive, delete.

Views call these; they raise relay.core.errors.ApiError for refusals (422 graph_invalid/invalid_state)."""

from django.db import transaction

from automations import graph_tasks
from automations.graph.validator import validate_graph
from automations.models import Automation, AutomationStatus, empty_graph
from relay.core.errors import ApiError

# Which status each action may start from.
ACTIVATE_FROM = (AutomationStatus.DRAFT, AutomationStatus.PAUSED)
PAUSE_FROM = (AutomationStatus.ACTIVE,)
ARCHIVE_FROM = (AutomationStatus.DRAFT, AutomationStatus.ACTIVE, AutomationStatus.PAUSED)


def _store_validation(automation: Automation, graph) -> list[dict]:
    normalized, errors, warnings = validate_graph(graph, automation=automation)
    automation.graph = normalized
    automation.graph_errors = errors
    automation.graph_warnings = warnings
    return errors


def _locked(automation: Automation) -> Automation:
    """Re-read the row under a lock so a concurrent activate/save cannot interleave, and work on what
    it holds now (a caller's copy may carry an older graph or status)."""
    automation.refresh_from_db(from_queryset=Automation.objects.select_for_update())
    return automation


@transaction.atomic
def create_automation(organization, *, name: str, channel: str, graph=None) -> Automation:
    automation = Automation(organization=organization, name=name, channel=channel, status=AutomationStatus.DRAFT)
    _store_validation(automation, graph if graph is not None else empty_graph())
    automation.save()
    return automation


@transaction.atomic
def save_graph(automation: Automation, graph) -> bool:
    """Validate and store `graph` with its errors and warnings (an invalid graph is stored too).
    An `active` automation whose new graph has errors becomes `paused`; returns True when that happened.
    Once committed, a Celery task exits `graph_changed` the waiting runs whose node the new graph dropped
    (edits are live; the request does not wait for that, nor fail with it)."""
    _locked(automation)
    if automation.status == AutomationStatus.ARCHIVED:
        raise ApiError("invalid_state", "An archived automation's graph cannot be changed.", status=422,
                       details={"status": automation.status})
    errors = _store_validation(automation, graph)
    auto_paused = bool(errors) and automation.status == AutomationStatus.ACTIVE
    if auto_paused:
        automation.status = AutomationStatus.PAUSED
    automation.save(update_fields=["graph", "graph_errors", "graph_warnings", "status", "updated_at"])
    automation_id = automation.pk
    transaction.on_commit(lambda: graph_tasks.enqueue_retire_runs_off_graph(automation_id))
    return auto_paused


def _refuse_transition(automation: Automation, action: str):
    raise ApiError("invalid_state", f"Cannot {action} an automation that is {automation.status}.", status=422,
                   details={"status": automation.status})


@transaction.atomic
def activate(automation: Automation) -> Automation:
    """draft|paused → active, only with a valid graph (re-validated now: targets may have changed)."""
    _locked(automation)
    if automation.status not in ACTIVATE_FROM:
        _refuse_transition(automation, "activate")
    errors = _store_validation(automation, automation.graph)
    if errors:  # nothing is written: the 422 carries the current errors
        raise ApiError("graph_invalid", "The graph has errors; fix them before activating.", status=422,
                       details={"graph_errors": errors})
    automation.status = AutomationStatus.ACTIVE
    automation.save(update_fields=["graph", "graph_errors", "graph_warnings", "status", "updated_at"])
    return automation


@transaction.atomic
def pause(automation: Automation) -> Automation:
    _locked(automation)
    if automation.status not in PAUSE_FROM:
        _refuse_transition(automation, "pause")
    automation.status = AutomationStatus.PAUSED
    automation.save(update_fields=["status", "updated_at"])
    return automation


@transaction.atomic
def archive(automation: Automation) -> Automation:
    _locked(automation)
    if automation.status not in ARCHIVE_FROM:
        _refuse_transition(automation, "archive")
    automation.status = AutomationStatus.ARCHIVED
    automation.save(update_fields=["status", "updated_at"])
    return automation


@transaction.atomic
def delete_automation(automation: Automation):
    """Active automations must be paused or archived first, so a live flow never vanishes by accident."""
    _locked(automation)
    if automation.status == AutomationStatus.ACTIVE:
        raise ApiError("invalid_state", "Pause or archive an active automation before deleting it.", status=422,
                       details={"status": automation.status})
    automation.delete()
