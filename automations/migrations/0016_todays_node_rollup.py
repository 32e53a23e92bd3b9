from django.db import migrations


def build_today(apps, schema_editor):
    """Today's step rollup row now stands for the day up to the watermark (rebuilt after every hour closed)
    and a period ending now reads it instead of today's hour rows: build it once for a rollup already
    under way, so the figures are the same right after the upgrade."""
    from automations.insights import rollup

    watermark = rollup.rolled_up_until()
    if watermark is not None and watermark > rollup.floor_day(watermark):
        rollup.recompute_node_day(watermark)


class Migration(migrations.Migration):

    dependencies = [
        ('automations', '0015_run_rollups'),
    ]

    operations = [
        migrations.RunPython(build_today, migrations.RunPython.noop),
    ]
