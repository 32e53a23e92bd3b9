"""Celery tasks for graph edits (thin: the work lives in automations.runtime). Imported from
AutomationsConfig.ready(), since Celery autodiscovers only `<app>.tasks` modules."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="automations.retire_runs_off_graph", ignore_result=True)
def retire_runs_off_graph(automation_id: str) -> list[str]:
    """After a graph save commits: exit `graph_changed` the waiting runs whose node the new graph dropped."""
    from automations.runtime.resume import retire_runs_off_graph as retire

    return retire(automation_id)


def enqueue_retire_runs_off_graph(automation_id: str) -> None:
    """Hand the retirement to a worker (called on commit); the saved graph stands even if the broker is down."""
    try:
        retire_runs_off_graph.delay(automation_id)
    except Exception:  # noqa: BLE001 - the broker is down: the orphaned runs stay waiting; log loudly
        logger.exception("could not enqueue retire_runs_off_graph for %s", automation_id)
