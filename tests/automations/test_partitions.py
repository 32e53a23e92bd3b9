"""Monthly partitions of automation_step_runs: created ahead idempotently, retention drops whole months."""

from datetime import UTC, date, datetime

from django.core.management import call_command
from django.db import connection

from automations.models import StepRun
from automations.partitions import (
    add_months,
    drop_partitions_older_than,
    ensure_partitions,
    existing_partitions,
    month_start,
    partition_name,
)


def test_migrations_created_the_current_and_next_months(db):
    names = existing_partitions()
    current = month_start(datetime.now(UTC))
    for offset in (-1, 0, 1, 2, 3):
        assert partition_name(add_months(current, offset)) in names


def test_ensure_partitions_is_idempotent(db):
    later = datetime(2031, 6, 15, tzinfo=UTC)
    created = ensure_partitions(now=later)
    assert created == [partition_name(date(2031, m, 1)) for m in (5, 6, 7, 8, 9)]
    assert ensure_partitions(now=later) == []
    assert ensure_partitions() == []


def test_ensure_partitions_command_is_idempotent(db, capsys):
    call_command("ensure_partitions", "--months-ahead", "5")
    first = capsys.readouterr().out
    call_command("ensure_partitions", "--months-ahead", "5")
    assert "created: none" in capsys.readouterr().out and "created:" in first


def test_a_step_lands_in_its_month(db):
    ensure_partitions(now=datetime(2031, 6, 15, tzinfo=UTC))
    step = StepRun.objects.create(run_id="arun_x", automation_id="auto_x", node_key="n", node_kind="end",
                                  outcome="success", executed_at=datetime(2031, 6, 30, 23, 59, tzinfo=UTC))
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM automation_step_runs WHERE id = %s", [step.pk])
        assert cursor.fetchone()[0] == "automation_step_runs_y2031m06"


def test_retention_drops_whole_old_months_only(db, capsys):
    ensure_partitions(now=datetime(2020, 3, 1, tzinfo=UTC), months_back=0, months_ahead=1)
    StepRun.objects.create(run_id="arun_old", automation_id="auto_x", node_key="n", node_kind="end",
                           outcome="success", executed_at=datetime(2020, 3, 5, tzinfo=UTC))
    current = partition_name(month_start(datetime.now(UTC)))
    call_command("drop_step_run_partitions", "--older-than-months", "3")
    output = capsys.readouterr().out
    assert "automation_step_runs_y2020m03" in output and "automation_step_runs_y2020m04" in output
    names = existing_partitions()
    assert "automation_step_runs_y2020m03" not in names and current in names
    assert not StepRun.objects.filter(run_id="arun_old").exists()
    assert drop_partitions_older_than(3) == []
