"""Thin Celery tasks: parse the arguments, call one runtime function."""

from celery import shared_task


@shared_task(name="automations.advance_run", ignore_result=True)
def advance_run(run_id: str) -> None:
    """Execute an active run (enqueued on commit by enrollment and by anything that reactivates a run)."""
    from automations.runtime.runner import advance

    advance(run_id)


@shared_task(name="automations.deliver_messages", ignore_result=True)
def deliver_messages(message_ids: list[str], attempt: int = 0, rate_limited: int = 0, slot_taken: bool = False) -> int:
    """Send outbox messages (the tick hands over those a dead worker left pending; a delivery that must
    wait — pacing, a rate limit, a retry — hands the rest of its batch to a later one)."""
    from automations.runtime.effects import deliver_messages as deliver

    return deliver(message_ids, attempt=attempt, rate_limited=rate_limited, slot_taken=slot_taken)


@shared_task(name="automations.settle_deliveries", ignore_result=True)
def settle_deliveries(run_ids: list[str]) -> None:
    """Move on runs whose message parts all settled but were not moved on (a worker died in between)."""
    from automations.runtime.delivery import settle_waiting

    for run_id in run_ids:
        settle_waiting(run_id)


@shared_task(name="automations.tasks.scheduler_tick", ignore_result=True)
def scheduler_tick() -> dict:
    """celery-beat's tick (PeriodicTask from `manage.py setup_schedules`): claim due jobs and hand them to
    the workers in batches (RELAY_SCHEDULER_JOBS_PER_TASK; 0 processes them inside this task)."""
    from django.conf import settings

    from automations.runtime.scheduler import tick

    return tick(hand_over=settings.RELAY_SCHEDULER_JOBS_PER_TASK).as_dict()


@shared_task(name="automations.process_jobs", ignore_result=True)
def process_jobs(claims: list[dict]) -> dict:
    """A batch of jobs a tick claimed (with their leases): process them here."""
    from automations.runtime.scheduler import process_handed_over

    return process_handed_over(claims).as_dict()


@shared_task(name="automations.process_platform_delivery", ignore_result=True)
def process_platform_delivery(delivery_id: str, lease: str) -> None:
    """Process one stored platform webhook delivery; `lease` is the claim token it was handed out with."""
    from datetime import datetime

    from automations.channels.inbound.deliveries import process

    process(delivery_id, datetime.fromisoformat(lease))


@shared_task(name="automations.complete_inbound_events", ignore_result=True)
def complete_inbound_events(row_ids: list[str]) -> int:
    """Inbound events the tick found unfinished (their attempt died after the record committed)."""
    from automations.runtime.inbound import complete_unfinished

    return complete_unfinished(row_ids)


@shared_task(name="automations.tasks.advance_insights_rollup", ignore_result=True)
def advance_insights_rollup() -> int:
    """celery-beat (`manage.py setup_schedules`): close the next hours of step runs into the insights rollup."""
    from automations.insights.rollup import advance_rollup

    return advance_rollup()
