"""What keeps step runs cheap as months pile up: a query bounded by executed_at reads only its months'
partitions (the plan says so), and retention drops a month as metadata — DETACH + DROP, no row deleted,
no other partition scanned — so its cost does not grow with the rows it held (the bench times it)."""

import json
from datetime import UTC, datetime

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
from tests.helpers import captured_statements

CURRENT = month_start(datetime.now(UTC))
OFFSETS = range(-4, 4)  # four months back to three ahead, as a production database would hold them


def month(offset: int) -> datetime:
    day = add_months(CURRENT, offset)
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def name(offset: int) -> str:
    return partition_name(add_months(CURRENT, offset))


def months_of_steps():
    """20 steps on the 10th of each month in OFFSETS, partitions created as the tick keeps them."""
    ensure_partitions(months_back=4, months_ahead=3)
    assert set(existing_partitions()) == {name(offset) for offset in OFFSETS}
    StepRun.objects.bulk_create([
        StepRun(run_id=f"arun_{offset}_{i}", automation_id="auto_x", node_key="n", node_kind="end", outcome="success",
                executed_at=month(offset).replace(day=10)) for offset in OFFSETS for i in range(20)])


def scanned_tables(queryset) -> set[str]:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found = set()

    def walk(node):
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def table_reads(tables: list[str]) -> dict:
    """This transaction's own statistics per table: scans and deleted rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, seq_scan, coalesce(idx_scan, 0), n_tup_del FROM pg_stat_xact_user_tables "
                       "WHERE relname = ANY(%s)", [tables])
        reads = {row[0]: row[1:] for row in cursor.fetchall()}
    assert set(reads) == set(tables)
    return reads


def test_an_executed_at_bounded_query_reads_only_its_months_partitions(db):
    months_of_steps()
    last_month = StepRun.objects.filter(executed_at__gte=month(-1), executed_at__lt=month(0))
    assert scanned_tables(last_month) == {name(-1)}
    assert last_month.count() == 20
    of_a_run = StepRun.objects.filter(run_id="arun_-2_3", executed_at__gte=month(-2)).order_by("executed_at", "id")
    assert scanned_tables(of_a_run) == {name(offset) for offset in range(-2, 4)}
    assert [step.run_id for step in of_a_run] == ["arun_-2_3"]
    # Unbounded, every partition is read: that is what the bound buys.
    assert scanned_tables(StepRun.objects.filter(run_id="arun_-2_3")) == {name(offset) for offset in OFFSETS}


def test_dropping_a_month_is_metadata_only(db):
    months_of_steps()
    others = [name(offset) for offset in OFFSETS[1:]]
    before = table_reads(others)
    with captured_statements() as statements:
        dropped = drop_partitions_older_than(3)
    after = table_reads(others)
    assert dropped == [name(-4)]
    changes = [sql for sql in statements if not sql.lstrip().upper().startswith(("SELECT", "SAVEPOINT", "RELEASE"))]
    assert changes == [f'ALTER TABLE "automation_step_runs" DETACH PARTITION "{name(-4)}"',
                       f'DROP TABLE "{name(-4)}"']
    assert after == before  # no other month was scanned or had a row deleted
    assert StepRun.objects.filter(executed_at__lt=month(-3)).count() == 0
    assert StepRun.objects.filter(executed_at__gte=month(-3)).count() == 7 * 20
