from django.core.management.base import BaseCommand

from automations.partitions import MONTHS_AHEAD, ensure_partitions, existing_partitions


class Command(BaseCommand):
    help = "Create the missing monthly partitions of automation_step_runs (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--months-ahead", type=int, default=MONTHS_AHEAD)

    def handle(self, *args, months_ahead, **options):
        created = ensure_partitions(months_ahead=months_ahead)
        self.stdout.write(f"created: {', '.join(created) or 'none'}")
        self.stdout.write(f"partitions: {', '.join(existing_partitions())}")
