import time

from django.core.management.base import BaseCommand

from automations.insights.rollup import backfill_rollup


class Command(BaseCommand):
    help = ("Rebuild the insights rollup of every closed hour, six-hour block and day from the step rows in a "
            "few set-based statements (after an upgrade or a bulk load); the beat then carries on from there.")

    def handle(self, *args, **options):
        started = time.perf_counter()
        result = backfill_rollup()
        self.stdout.write(f"rolled up until {result['rolled_up_until'].isoformat()}: {result['hour_rows']} hour rows, "
                          f"{result['six_rows']} six-hour rows, {result['day_rows']} day rows "
                          f"in {time.perf_counter() - started:.1f} s")
