import json

from django.core.management.base import BaseCommand

from automations.runtime.scheduler import tick


class Command(BaseCommand):
    help = "Run one scheduler tick now (claim and process due jobs, plan schedules, reconcile) and print the report."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=None, help="At most this many jobs (default: settings).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, batch, as_json, **options):
        report = tick(batch=batch)
        self.stdout.write(json.dumps(report.as_dict(), indent=2, sort_keys=True) if as_json else str(report))
