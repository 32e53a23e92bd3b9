"""The edges of a period read from the rollup: the open hour's `part` rows (to its last five minutes closed),
today's day row (the day up to the watermark) and returns from the window's partial first hour give the
figures of the step rows for every window that reads them, are rebuilt only as they move, go when their
hour closes, and the set-based rebuild writes them as the beat does."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.insights import queries, rollup
from automations.insights.queries import Scope, ScopeKind, Window
from automations.models import NodeRollup, RollupWatermark, StepRun
from automations.partitions import ensure_partitions
from automations.store import insights as insights_store
from tests import factories
from tests.automations.test_insights_rollup import NODES, PORTS, _snapshot, check_nodes

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_hour(org):
    """Steps of thirty runs over the two days before `hour` + 40 minutes (the beat's `now` here), coming back
    to a node after seconds, minutes or hours — across the watermark, inside the open hour and its part."""
    now = timezone.now()
    ensure_partitions(now, months_back=2)
    automation = factories.automation(org, factories.flow([(key, kind, {}) for key, kind in NODES]), status="active")
    hour = rollup.floor_hour(now) - timedelta(hours=5)
    beat = hour + timedelta(minutes=40)
    rng = random.Random(21)
    steps = []
    for index in range(30):
        at = hour - timedelta(minutes=rng.randint(0, 2 * 24 * 60)) if index < 24 else hour
        for _ in range(rng.randint(1, 8)):
            key, kind = rng.choice(NODES)
            at += timedelta(seconds=rng.choice([0, 30, 300, 900, 2000, 3600, 7200, 40000]))
            if at >= beat:
                break
            steps.append(StepRun.objects.create(
                run_id=f"arun_open_{index}", automation_id=automation.pk, node_key=key, node_kind=kind,
                outcome=rng.choice(["success", "waiting", "failed"]),
                exited_via_port_key=rng.choice(PORTS[key]) if PORTS[key] else None,
                duration_ms=rng.choice([0, 7, 150, 2000]), executed_at=at))
    assert any(hour <= s.executed_at < hour + timedelta(minutes=35) for s in steps)
    assert any(s.executed_at >= hour + timedelta(minutes=35) for s in steps)
    return {"automation": automation, "hour": hour, "beat": beat, "steps": steps}


def _advance(now):
    while rollup.advance_rollup(now, max_hours=1000):
        pass


def _check_windows(open_hour, ends):
    automation, hour = open_hour["automation"], open_hour["hour"]
    scope = Scope(ScopeKind.AUTOMATION, automation.pk, automation.pk)
    rng = random.Random(4)
    starts = [hour - timedelta(days=1, minutes=rng.randint(0, 600), seconds=rng.randint(0, 59)) for _ in range(6)]
    starts += [hour - timedelta(days=1), hour - timedelta(hours=3), hour - timedelta(minutes=50)]
    for end in ends:
        for start in starts:
            check_nodes(queries.node_insights(scope, Window("custom", start, end)), open_hour["steps"], start, end)


def test_the_open_hours_part_rows_give_the_rows_figures(open_hour, monkeypatch):
    hour, beat = open_hour["hour"], open_hour["beat"]
    _advance(beat)
    watermark = RollupWatermark.objects.get()
    assert (watermark.rolled_up_until, watermark.part_until) == (hour, hour + timedelta(minutes=35))
    part = NodeRollup.objects.filter(bucket="part")
    assert part.exists() and {row.bucket_start for row in part} == {hour}
    assert sum(row.success + row.waiting + row.failed for row in part) == sum(
        1 for s in open_hour["steps"] if hour <= s.executed_at < hour + timedelta(minutes=35))
    # windows ending at or after the part read it (and the step rows from its end), others the step rows
    reads = []
    fetch = insights_store.fetch
    monkeypatch.setattr(insights_store, "fetch", lambda sql, params: reads.append(params) or fetch(sql, params))
    _check_windows(open_hour, [hour + timedelta(minutes=35), hour + timedelta(minutes=38, seconds=7), beat])
    assert {params.get("part_start") for params in reads if "part_start" in params} == {hour}
    reads.clear()
    _check_windows(open_hour, [hour + timedelta(minutes=20)])
    assert {params.get("part_start") for params in reads if "part_start" in params} == {None}


def test_the_part_is_rebuilt_as_it_moves_and_goes_when_its_hour_closes(open_hour):
    hour, beat = open_hour["hour"], open_hour["beat"]
    _advance(beat)
    first = {row.pk for row in NodeRollup.objects.filter(bucket="part")}
    assert rollup.advance_rollup(beat + timedelta(minutes=4)) == 0  # the same five minutes: nothing rebuilt
    assert {row.pk for row in NodeRollup.objects.filter(bucket="part")} == first
    assert rollup.advance_rollup(beat + timedelta(minutes=5)) == 0
    assert RollupWatermark.objects.get().part_until == hour + timedelta(minutes=40)
    assert not first & {row.pk for row in NodeRollup.objects.filter(bucket="part")}
    _check_windows(open_hour, [beat + timedelta(minutes=5)])
    assert rollup.advance_rollup(hour + timedelta(hours=1, minutes=5)) == 1  # the hour closes: no part yet
    watermark = RollupWatermark.objects.get()
    assert (watermark.rolled_up_until, watermark.part_until) == (hour + timedelta(hours=1), None)
    assert not NodeRollup.objects.filter(bucket="part").exists()
    _check_windows(open_hour, [hour + timedelta(hours=1, minutes=5)])


def test_todays_day_row_stands_for_the_day_up_to_the_watermark(open_hour):
    hour, beat = open_hour["hour"], open_hour["beat"]
    _advance(beat)
    day = rollup.floor_day(hour)
    hours = NodeRollup.objects.filter(bucket="hour", bucket_start__gte=day, bucket_start__lt=hour)
    today = NodeRollup.objects.filter(bucket="day", bucket_start=day)
    assert sum(r.success for r in today) == sum(r.success for r in hours)
    assert sum(r.first_arrivals for r in today) == sum(r.first_arrivals for r in hours)
    # windows over whole days then today read it; so do those starting today (hours) and yesterday
    _check_windows(open_hour, [beat])


def test_the_set_based_rebuild_writes_the_part_and_todays_row_as_the_beat(open_hour):
    beat = open_hour["beat"]
    _advance(beat)
    expected = _snapshot()
    assert any(row[0] == "part" for row in expected)
    NodeRollup.objects.all().delete()
    RollupWatermark.objects.all().delete()
    rollup.backfill_rollup(beat)
    assert _snapshot() == expected
    assert RollupWatermark.objects.get().part_until == open_hour["hour"] + timedelta(minutes=35)


def test_a_return_to_a_node_from_the_windows_first_hour_counts_once(org):
    """A window starting on an hour: a return from that hour within the span is no new run. A window
    starting inside it: a run there before or after `from` and back in the span is one run."""
    automation = factories.automation(org, factories.flow([("ask", "message", {})]))
    hour = rollup.floor_hour(timezone.now()) - timedelta(days=1)
    plan = {"in-hour-then-span": [10, 70, 130], "span-then-span": [65, 190], "before-hour-then-span": [-30, 80],
            "in-hour-only": [15], "late-in-hour-then-span": [45, 61]}
    steps = [StepRun.objects.create(run_id=f"arun_{name}", automation_id=automation.pk, node_key="ask",
                                    node_kind="message", outcome="success", executed_at=hour + timedelta(minutes=m))
             for name, minutes in plan.items() for m in minutes]
    _advance(timezone.now())
    scope = Scope(ScopeKind.AUTOMATION, automation.pk, automation.pk)
    for start, visits in [(hour, 5), (hour + timedelta(minutes=20), 4), (hour + timedelta(minutes=47), 4)]:
        window = Window("custom", start, hour + timedelta(hours=4))
        assert queries.rolled_up_span(window, rollup.rolled_up_until()) is not None
        node = queries.node_insights(scope, window)[0]
        assert node["visits"] == visits, start
        check_nodes([node], steps, window.start, window.end)


def test_a_window_starting_early_in_an_hour_takes_that_hours_rows_before_it_off(org, monkeypatch):
    """The first hour read whole from the rollup, less its rows before `from`: a node (and a port) seen only
    there is not in the organization's list, and the other figures are the rows'."""
    automation = factories.automation(org, factories.flow([("ask", "message", {}), ("done", "end", {})]))
    hour = rollup.floor_hour(timezone.now()) - timedelta(days=1)
    steps = [StepRun.objects.create(run_id=f"arun_early_{index}", automation_id=automation.pk, node_key=key,
                                    node_kind=kind, outcome="success", exited_via_port_key=port, duration_ms=ms,
                                    executed_at=hour + timedelta(minutes=minute))
             for index, (key, kind, port, ms, minute) in enumerate([
                 ("done", "end", "gone", 5, 3), ("ask", "message", "button.a", 120, 4),
                 ("ask", "message", "button.b", 7, 25), ("ask", "message", "button.b", 9, 200)])]
    _advance(timezone.now())
    window = Window("custom", hour + timedelta(minutes=10), hour + timedelta(hours=5))
    reads = []
    fetch = insights_store.fetch
    monkeypatch.setattr(insights_store, "fetch", lambda sql, params: reads.append(params) or fetch(sql, params))
    nodes = queries.node_insights(Scope(ScopeKind.ORGANIZATION, org.pk), window)
    assert any(params.get("head") == -1 and params["start"] == hour for params in reads)
    assert [(n["node_key"], n["visits"], n["exits_by_port"], n["median_duration_ms"]) for n in nodes] == [
        ("ask", 2, {"button.b": 2}, 8)]
    check_nodes(nodes, steps, window.start, window.end)
