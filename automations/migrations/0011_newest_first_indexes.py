"""Newest-first admin lists without sorting whole tables: runs by (started_at DESC, id DESC), step runs by
(executed_at, id). Neither blocks writes while it is built: the runs' index is built CONCURRENTLY; the step
runs' partitioned index is created on the parent only (invalid until every partition has its own), then
CONCURRENTLY on each partition and attached. Partitions created later get it from the parent."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

STEP_INDEX = "automation_step_runs_executed_idx"


def create_step_index(apps, schema_editor):
    from automations.partitions import PARENT_TABLE, existing_partitions

    conn = schema_editor.connection
    with conn.cursor() as cursor:
        cursor.execute(f'CREATE INDEX "{STEP_INDEX}" ON ONLY "{PARENT_TABLE}" ("executed_at", "id")')
        for name in existing_partitions(conn):
            child = f"{name}_executed_idx"
            cursor.execute(f'CREATE INDEX CONCURRENTLY "{child}" ON "{name}" ("executed_at", "id")')
            cursor.execute(f'ALTER INDEX "{STEP_INDEX}" ATTACH PARTITION "{child}"')


def drop_step_index(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX IF EXISTS "{STEP_INDEX}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automations", "0010_node_rollups"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="automationrun",
            index=models.Index(fields=["-started_at", "-id"], name="run_started"),
        ),
        migrations.RunPython(create_step_index, drop_step_index),
    ]
