from django.core.management.base import BaseCommand, CommandError

from automations.partitions import drop_partitions_older_than


class Command(BaseCommand):
    help = "Retention: detach and drop whole monthly step-run partitions older than N months (no row deletes)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-months", type=int, required=True)

    def handle(self, *args, older_than_months, **options):
        try:
            dropped = drop_partitions_older_than(older_than_months)
        except ValueError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"dropped: {', '.join(dropped) or 'none'}")
