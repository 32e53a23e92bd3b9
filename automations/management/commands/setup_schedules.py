from django.core.management.base import BaseCommand

from automations.insights.rollup import ensure_rollup_schedule
from automations.runtime.scheduler import ensure_beat_schedule


class Command(BaseCommand):
    help = "Create or update the celery-beat PeriodicTasks: the scheduler tick and the insights rollup (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=int, default=None,
                            help="Seconds between ticks (default: settings.RELAY_SCHEDULER_INTERVAL_SECONDS).")

    def handle(self, *args, interval, **options):
        for task, changed in (ensure_beat_schedule(interval), ensure_rollup_schedule()):
            state = "updated" if changed else "unchanged"
            self.stdout.write(f"{task.name}: {task.task} every {task.interval.every}s ({state})")
