from django.core.management.base import BaseCommand

from automations.runtime.scheduler import ensure_beat_schedule


class Command(BaseCommand):
    help = "Create or update the celery-beat PeriodicTask that runs the scheduler tick (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=int, default=None,
                            help="Seconds between ticks (default: settings.RELAY_SCHEDULER_INTERVAL_SECONDS).")

    def handle(self, *args, interval, **options):
        task, changed = ensure_beat_schedule(interval)
        state = "updated" if changed else "unchanged"
        self.stdout.write(f"{task.name}: {task.task} every {task.interval.every}s ({state})")
