"""Hand-written: automation_step_runs is a declaratively partitioned table (monthly on executed_at).

Django's state gets an ordinary model (id as its key); the database gets PRIMARY KEY (id, executed_at),
which PostgreSQL requires on a partitioned table, a bigint sequence for ids, no foreign keys in either
direction, and a trigger that refuses UPDATE and DELETE (rows are append-only; retention drops whole
partitions, which no row trigger sees).
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

CREATE_SQL = """
CREATE SEQUENCE automation_step_runs_id_seq AS bigint;
CREATE TABLE automation_step_runs (
    id bigint NOT NULL DEFAULT nextval('automation_step_runs_id_seq'),
    run_id varchar(40) NOT NULL,
    automation_id varchar(40) NOT NULL,
    node_key varchar(100) NOT NULL,
    node_kind varchar(30) NOT NULL,
    entered_via_port_key varchar(150) NULL,
    exited_via_port_key varchar(150) NULL,
    outcome varchar(10) NOT NULL,
    duration_ms integer NOT NULL CHECK (duration_ms >= 0),
    payload jsonb NOT NULL,
    error jsonb NULL,
    executed_at timestamptz NOT NULL,
    PRIMARY KEY (id, executed_at)
) PARTITION BY RANGE (executed_at);
ALTER SEQUENCE automation_step_runs_id_seq OWNED BY automation_step_runs.id;
CREATE INDEX automation_step_runs_run_idx ON automation_step_runs (run_id, executed_at, id);
CREATE INDEX automation_step_runs_automation_idx ON automation_step_runs (automation_id, executed_at);

CREATE FUNCTION automation_step_runs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'automation_step_runs is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER automation_step_runs_append_only
    BEFORE UPDATE OR DELETE ON automation_step_runs
    FOR EACH ROW EXECUTE FUNCTION automation_step_runs_append_only();
"""

DROP_SQL = """
DROP TABLE automation_step_runs CASCADE;
DROP FUNCTION automation_step_runs_append_only();
"""


def create_partitions(apps, schema_editor):
    from automations.partitions import ensure_partitions

    ensure_partitions(using=schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0002_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(CREATE_SQL, DROP_SQL),
                migrations.RunPython(create_partitions, migrations.RunPython.noop),
            ],
            state_operations=[
                migrations.CreateModel(
                    name="StepRun",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("node_key", models.CharField(max_length=100)),
                        ("node_kind", models.CharField(max_length=30)),
                        ("entered_via_port_key", models.CharField(blank=True, max_length=150, null=True)),
                        ("exited_via_port_key", models.CharField(blank=True, max_length=150, null=True)),
                        ("outcome", models.CharField(
                            choices=[("success", "Success"), ("failed", "Failed"), ("skipped", "Skipped"),
                                     ("waiting", "Waiting")], max_length=10)),
                        ("duration_ms", models.PositiveIntegerField(default=0)),
                        ("payload", models.JSONField(blank=True, default=dict)),
                        ("error", models.JSONField(blank=True, null=True)),
                        ("executed_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("automation", models.ForeignKey(
                            db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING,
                            related_name="+", to="automations.automation")),
                        ("run", models.ForeignKey(
                            db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING,
                            related_name="steps", to="automations.automationrun")),
                    ],
                    options={"db_table": "automation_step_runs"},
                ),
            ],
        ),
    ]
