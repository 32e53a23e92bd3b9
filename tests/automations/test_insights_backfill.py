"""The set-based rebuild of the insights rollup writes exactly the rows the hour-by-hour path writes —
outcomes, first arrivals and returns (the distinct-run columns), exits by port, the duration histogram, for
hours, six-hour blocks and days — moves the watermark the same way, replaces whatever was there and leaves
nothing for the beat to redo."""

import importlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from automations.insights import queries, rollup
from automations.insights.queries import Scope, ScopeKind, Window
from automations.models import NodeRollup, RollupWatermark
from tests.automations.test_insights_rollup import _snapshot, check_nodes, close_all, spread  # noqa: F401

pytestmark = pytest.mark.django_db


def _clear():
    NodeRollup.objects.all().delete()
    RollupWatermark.objects.all().delete()


def test_the_backfill_writes_the_rows_of_the_hour_by_hour_path(spread):  # noqa: F811
    now = timezone.now()
    hour_by_hour = close_all(now)
    expected = _snapshot()
    hours = [row for row in expected if row[0] == "hour"]
    days = [row for row in expected if row[0] == "day"]
    sixes = [row for row in expected if row[0] == "six"]
    # the seeded data exercises every column: both buckets, runs through an entrypoint and a binding,
    # first arrivals and returns, ports, histograms of several bins
    assert len(hours) > 20 and len(days) > 5 and len(sixes) > 5
    assert any(row[3] for row in expected) and any(row[4] for row in expected)
    assert any(row[10] for row in hours) and any(row[11] for row in hours) and any(row[11] for row in days)
    assert any(row[12] for row in expected) and any(len(row[13]) > 2 for row in days)
    _clear()
    result = rollup.backfill_rollup(now)
    assert _snapshot() == expected
    assert result == {"rolled_up_until": hour_by_hour, "hour_rows": len(hours), "day_rows": len(days),
                      "six_rows": len(sixes)}
    assert rollup.rolled_up_until() == hour_by_hour
    assert rollup.advance_rollup(now) == 0  # nothing left for the beat until the next hour closes


def test_the_backfill_replaces_what_is_there_and_the_figures_match_the_rows(spread):  # noqa: F811
    now = timezone.now()
    rollup.advance_rollup(now, max_hours=30)  # a partial rollup, then a stale figure in it
    NodeRollup.objects.filter(bucket="hour").update(success=999, returns={"1": 5})
    rollup.backfill_rollup(now)
    rebuilt = _snapshot()
    rollup.backfill_rollup(now)
    assert _snapshot() == rebuilt and not any(row[5] == 999 for row in rebuilt)
    _clear()
    close_all(now)
    assert _snapshot() == rebuilt
    window = Window("custom", now - timedelta(days=11), now)
    scope = Scope(ScopeKind.AUTOMATION, spread["automation"].pk, spread["automation"].pk)
    assert queries.rolled_up_span(window, rollup.rolled_up_until()) is not None
    check_nodes(queries.node_insights(scope, window), spread["steps"], window.start, window.end)


def test_the_operator_command_backfills(spread, capsys):  # noqa: F811
    before = rollup.floor_hour(timezone.now() - rollup.GRACE)
    call_command("rebuild_insights_rollup")
    out = capsys.readouterr().out
    assert rollup.rolled_up_until() in {before, rollup.floor_hour(timezone.now() - rollup.GRACE)}
    assert f"{NodeRollup.objects.filter(bucket='hour').count()} hour rows" in out
    assert f"{NodeRollup.objects.filter(bucket='day').count()} day rows" in out
    assert f"{NodeRollup.objects.filter(bucket='six').count()} six-hour rows" in out


def test_the_upgrade_builds_the_six_hour_blocks_of_a_rollup_under_way(spread):  # noqa: F811
    close_all(timezone.now())
    expected = _snapshot()
    assert any(row[0] == "six" for row in expected)
    NodeRollup.objects.filter(bucket="six").delete()  # a rollup built before the blocks existed
    importlib.import_module("automations.migrations.0017_rollup_six_hours").build_six_hours(None, None)
    assert _snapshot() == expected
