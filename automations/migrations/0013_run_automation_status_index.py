"""An automation's runs filtered by status, newest first, read from an index instead of walking all its runs.
Built CONCURRENTLY, so it does not block run writes while it is built."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automations", "0012_webhook_deliveries"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="automationrun",
            index=models.Index(fields=["automation", "status", "-started_at", "-id"], name="run_automation_status"),
        ),
    ]
