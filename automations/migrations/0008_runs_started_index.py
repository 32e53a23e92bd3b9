"""The admin's run list is newest first: an index for it, built CONCURRENTLY (no write lock on a large table)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automations", "0007_run_org_started"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="automationrun",
            index=models.Index(fields=["-started_at", "-id"], name="run_started"),
        ),
    ]
