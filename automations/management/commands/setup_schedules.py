"""`manage.py setup_schedules`: the celery-beat entries (django-celery-beat PeriodicTasks, kept in the
database) — the scheduler tick and the insights rollup. Idempotent; `release` runs it on every deploy."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from automations.insights import rollup

BEAT_TASK_NAME = "relay: scheduler tick"
BEAT_TASK = "automations.tasks.scheduler_tick"


def ensure_beat_schedule(interval_seconds: int | None = None):
    """Create or update the django-celery-beat PeriodicTask that fires the tick; idempotent.

    Returns (periodic_task, changed). Stale ticks expire instead of piling up while workers are down."""
    every = int(interval_seconds or settings.RELAY_SCHEDULER_INTERVAL_SECONDS)
    return ensure_periodic_task(BEAT_TASK_NAME, BEAT_TASK, every,
                                "Claims due automation_scheduled_jobs (automations.runtime.scheduler.tick).")


def ensure_rollup_schedule(interval_seconds: int = rollup.BEAT_INTERVAL_SECONDS):
    """Create or update the beat entry that advances the insights rollup; idempotent. (task, changed)."""
    return ensure_periodic_task(rollup.BEAT_TASK_NAME, rollup.BEAT_TASK, interval_seconds,
                                "Closes hours of step runs into automation_node_rollups (insights).")


def ensure_periodic_task(name: str, task_name: str, every: int, description: str):
    """Create or update one interval PeriodicTask by name (expiring after two intervals); (task, changed)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if every < 1:
        raise ValueError("the scheduler interval must be at least one second")
    with transaction.atomic():
        schedule = (IntervalSchedule.objects.filter(every=every, period=IntervalSchedule.SECONDS).order_by("id").first()
                    or IntervalSchedule.objects.create(every=every, period=IntervalSchedule.SECONDS))
        wanted = {"task": task_name, "interval": schedule, "enabled": True, "expire_seconds": max(2 * every, 30),
                  "description": description}
        task = PeriodicTask.objects.select_for_update().filter(name=name).first()
        if task is None:
            return PeriodicTask.objects.create(name=name, **wanted), True
        changed = any(getattr(task, field) != value for field, value in wanted.items())
        if changed:
            for field, value in wanted.items():
                setattr(task, field, value)
            task.save()
        return task, changed


class Command(BaseCommand):
    help = "Create or update the celery-beat PeriodicTasks: the scheduler tick and the insights rollup (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=int, default=None,
                            help="Seconds between ticks (default: settings.RELAY_SCHEDULER_INTERVAL_SECONDS).")

    def handle(self, *args, interval, **options):
        for task, changed in (ensure_beat_schedule(interval), ensure_rollup_schedule()):
            state = "updated" if changed else "unchanged"
            self.stdout.write(f"{task.name}: {task.task} every {task.interval.every}s ({state})")
