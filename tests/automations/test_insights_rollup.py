"""The insights rollup: closed hours read from automation_node_rollups give the same figures as the step
rows (checked against counts computed here), whatever the window's edges; rebuilding, two beats at once,
retried advances, stops and late commits never double count."""

import random
import statistics
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from automations.insights import queries, rollup
from automations.insights.queries import Scope, ScopeKind, Window
from automations.models import AutomationRun, NodeRollup, RollupWatermark, RunRollup, StepRun
from automations.partitions import add_months, ensure_partitions, month_start, partition_name
from automations.store import insights as insights_store
from tests import factories
from tests.automations import test_insights_api as live_tests

pytestmark = pytest.mark.django_db

world = live_tests.world  # the runs answered, stopped, retried and raced there
NODES = [("ask", "message"), ("wait", "delay"), ("score", "condition"), ("done", "end")]
PORTS = {"ask": ["button.a", "button.b"], "wait": ["next"], "score": ["true", "false"], "done": []}


def close_all(now=None):
    """Roll up every hour that is closed at `now` (default: two hours from now, so this hour too)."""
    now = now or timezone.now() + timedelta(hours=2)
    while rollup.advance_rollup(now, max_hours=1000):
        pass
    return rollup.rolled_up_until()


def expected_nodes(steps, start, end):
    """Per node key from the rows in Python: distinct runs, outcomes, ports and the durations."""
    nodes = {}
    for step in steps:
        if start <= step.executed_at < end:
            entry = nodes.setdefault(step.node_key, {"runs": set(), "outcomes": Counter(), "ports": Counter(),
                                                     "durations": []})
            entry["runs"].add(step.run_id)
            entry["outcomes"][step.outcome] += 1
            if step.exited_via_port_key:
                entry["ports"][step.exited_via_port_key] += 1
            entry["durations"].append(step.duration_ms)
    return nodes


def check_nodes(nodes, steps, start, end):
    want = expected_nodes(steps, start, end)
    got = {n["node_key"]: n for n in nodes if sum(n["outcomes"].values())}
    assert set(got) == set(want), (start, end)
    for key, entry in want.items():
        node = got[key]
        assert node["visits"] == len(entry["runs"]), (key, start, end)
        assert node["outcomes"] == {o: entry["outcomes"].get(o, 0) for o in ("success", "failed", "skipped",
                                                                             "waiting")}
        assert node["exits_by_port"] == dict(entry["ports"])
        exact = statistics.median(entry["durations"])
        ordered = sorted(entry["durations"])
        if ordered[len(ordered) // 2] < 100:  # both middle values below 100 ms: exact
            assert node["median_duration_ms"] == round(exact), (key, start, end)
        else:
            assert abs(node["median_duration_ms"] - exact) <= 0.01 * exact + 1, (key, start, end)


@pytest.fixture
def spread(org, account):
    """Forty runs over the last ten days (one automation, some through an entrypoint or a binding) whose
    steps cross hour and day boundaries, come back to a node after minutes, hours or days, and take from
    0 ms to a minute."""
    ensure_partitions(timezone.now(), months_back=2)
    graph = factories.flow([(key, kind, {}) for key, kind in NODES])
    automation = factories.automation(org, graph, status="active")
    entrypoint = factories.entrypoint(automation)
    binding = factories.binding(automation, account)
    rng = random.Random(18)
    now = timezone.now()
    steps = []
    for index in range(40):
        started = now - timedelta(minutes=rng.randint(60, 10 * 24 * 60))
        run = AutomationRun.objects.create(
            organization=org, automation=automation, contact=factories.contact(org), status="completed",
            entrypoint=entrypoint if index % 3 == 0 else None, binding=binding if index % 3 == 1 else None,
            started_at=started, exit_reason="completed")
        at = started
        for _ in range(rng.randint(1, 7)):
            key, kind = rng.choice(NODES)
            at += timedelta(seconds=rng.choice([0, 1, 40, 600, 3000, 4000, 20000, 90000, 200000]))
            if at >= now - timedelta(minutes=1):
                break
            duration = rng.choice([0, 3, 12, 99, 100, 250, 998, 1234, 56789, rng.randint(0, 70000)])
            port = rng.choice(PORTS[key]) if PORTS[key] and rng.random() < 0.8 else None
            steps.append(StepRun.objects.create(
                run_id=run.pk, automation_id=automation.pk, node_key=key, node_kind=kind,
                outcome=rng.choice(["success", "success", "waiting", "failed", "skipped"]),
                exited_via_port_key=port, duration_ms=duration, executed_at=at))
    return {"automation": automation, "entrypoint": entrypoint, "binding": binding, "steps": steps,
            "runs": {r.pk: r for r in AutomationRun.objects.filter(automation=automation)}}


def windows(now, rng):
    """Windows starting inside an hour and on one, short and long, ending now and in the past."""
    result = [(now - timedelta(days=days), now) for days in (1, 3, 7, 11)]
    for _ in range(25):
        start = now - timedelta(minutes=rng.randint(0, 11 * 24 * 60), seconds=rng.randint(0, 59))
        if rng.random() < 0.3:
            start = rollup.floor_hour(start)
        result.append((start, min(now, start + timedelta(minutes=rng.randint(30, 8 * 24 * 60)))))
    return result


def test_rollup_gives_the_rows_figures_for_any_window(spread):
    automation, steps = spread["automation"], spread["steps"]
    watermark = close_all(timezone.now())
    assert watermark is not None and NodeRollup.objects.filter(bucket="day").exists()
    rng = random.Random(5)
    mixed = 0
    for start, end in windows(timezone.now(), rng):
        window = Window("custom", start, end)
        mixed += queries.rolled_up_span(window, watermark) is not None
        for kind, target, keep in [
            (ScopeKind.AUTOMATION, automation.pk, lambda s: True),
            (ScopeKind.ENTRYPOINT, spread["entrypoint"].pk,
             lambda s: spread["runs"][s.run_id].entrypoint_id == spread["entrypoint"].pk),
            (ScopeKind.BINDING, spread["binding"].pk,
             lambda s: spread["runs"][s.run_id].binding_id == spread["binding"].pk),
            (ScopeKind.ORGANIZATION, automation.organization_id, lambda s: True),
        ]:
            scope = Scope(kind, target, None if kind == ScopeKind.ORGANIZATION else automation.pk)
            check_nodes(queries.node_insights(scope, window), [s for s in steps if keep(s)], start, end)
    assert mixed >= 20  # most windows did read the rollup


def test_a_partial_day_reads_its_whole_six_hour_blocks_instead_of_their_hours():
    day = datetime(2026, 3, 10, tzinfo=UTC)
    hours = timedelta(hours=1)
    watermark = day + 3 * rollup.DAY + 15 * hours
    # starting at 03:00 and ending at 20:00 two days later: 03-06 in hours, 06-24 in blocks, a day,
    # 00-18 in blocks, 18-20 in hours
    assert queries._node_days(day + 3 * hours, day + 2 * rollup.DAY + 20 * hours, watermark) == {
        "node_first_six": day + 6 * hours, "node_first_day": day + rollup.DAY,
        "node_days_until": day + 2 * rollup.DAY, "node_last_day": day + 2 * rollup.DAY,
        "node_last_six": day + 2 * rollup.DAY + 18 * hours, "node_hours_until": day + 2 * rollup.DAY + 20 * hours}
    # within one day: 01-06 in hours, 06-12 a block, 12-13 an hour
    within = queries._node_days(day + 1 * hours, day + 13 * hours, watermark)
    assert (within["node_first_six"], within["node_first_day"], within["node_hours_until"]) == (
        day + 6 * hours, day + 12 * hours, day + 13 * hours)
    assert within["node_days_until"] == within["node_last_day"] == within["node_last_six"] == day + 12 * hours
    # no whole block inside: hours only
    short = queries._node_days(day + 7 * hours, day + 11 * hours, watermark)
    assert short["node_first_six"] == day + 11 * hours and short["node_hours_until"] == day + 11 * hours
    # ending at the watermark: today's day row, and blocks only at the start
    today = queries._node_days(day + 20 * hours, watermark, watermark)
    assert (today["node_first_six"], today["node_first_day"], today["node_days_until"]) == (
        day + rollup.DAY, day + rollup.DAY, day + 4 * rollup.DAY)


def test_the_six_hour_blocks_are_what_a_partial_day_reads(spread):
    """A figure planted in a block shows in a window whose partial first day holds that whole block, and
    not in one reading that block's hours (the windows' honest figures are checked in the test above)."""
    automation = spread["automation"]
    watermark = close_all(timezone.now())
    block = rollup.floor_six(watermark) - rollup.DAY - 3 * rollup.SIX_HOURS  # a whole block of a closed day
    assert block.hour in (0, 6, 12, 18) and rollup.floor_day(block) < rollup.floor_day(watermark)
    scope = Scope(ScopeKind.AUTOMATION, automation.pk, automation.pk)
    inside = Window("custom", block - timedelta(minutes=30), watermark)
    hours_only = Window("custom", block + timedelta(minutes=30), watermark)
    before = {n["node_key"]: n["outcomes"]["success"] for n in queries.node_insights(scope, inside)}
    before_hours = {n["node_key"]: n["outcomes"]["success"] for n in queries.node_insights(scope, hours_only)}
    NodeRollup.objects.bulk_create([NodeRollup(
        automation_id=automation.pk, bucket="six", bucket_start=block, node_key="planted", node_kind="message",
        success=1000, returns={}, exits_by_port={}, duration_bins=[], duration_counts=[])])
    after = {n["node_key"]: n["outcomes"]["success"] for n in queries.node_insights(scope, inside)}
    assert after == {**before, "planted": 1000}
    assert {n["node_key"]: n["outcomes"]["success"] for n in queries.node_insights(scope, hours_only)} == before_hours


def test_a_run_back_at_a_node_counts_once_wherever_the_window_starts(org):
    """The cases at the window's first hour: a visit before `from` in the same hour then one in the
    rolled-up span (a new run for the window), a visit inside that partial hour then one later (one run)."""
    graph = factories.flow([("ask", "message", {})])
    automation = factories.automation(org, graph)
    hour = rollup.floor_hour(timezone.now()) - timedelta(days=2)
    plan = {"before-then-span": [10, 130], "partial-then-span": [40, 100, 200], "before-then-partial": [5, 50],
            "span-only": [70, 75], "before-only": [20], "yesterday-then-span": [-1500, 90]}
    steps = []
    for name, minutes in plan.items():
        for minute in minutes:
            steps.append(StepRun.objects.create(
                run_id=f"arun_{name}", automation_id=automation.pk, node_key="ask", node_kind="message",
                outcome="waiting", executed_at=hour + timedelta(minutes=minute)))
    close_all(timezone.now())
    window = Window("custom", hour + timedelta(minutes=30), hour + timedelta(hours=5))
    assert queries.rolled_up_span(window, rollup.rolled_up_until()) == (hour + timedelta(hours=1),
                                                                        hour + timedelta(hours=5))
    node = queries.node_insights(Scope(ScopeKind.AUTOMATION, automation.pk, automation.pk), window)[0]
    assert node["visits"] == 5  # all but "before-only"
    check_nodes([node], steps, window.start, window.end)


def test_retries_and_stops_agree_through_the_rollup(api, world):
    """The world of the live tests, rolled up (this hour included), read over windows that end after it."""
    automation = world["automation"]
    close_all()
    runs = list(AutomationRun.objects.filter(automation=automation))
    steps = list(StepRun.objects.filter(automation_id=automation.pk))
    end = rollup.floor_hour(timezone.now()) + timedelta(hours=1)
    for days in (7, 30):
        params = {"period": "custom", "from": queries.iso(end - timedelta(days=days, minutes=17)),
                  "to": queries.iso(end)}
        body = api.get(f"/v1/automations/{automation.pk}/insights", params).json()
        window = Window("custom", end - timedelta(days=days, minutes=17), end)
        assert queries.rolled_up_span(window, rollup.rolled_up_until()) is not None
        live_tests.check(body, runs, steps)
        assert body["nodes"][0]["visits"] == 10 and body["nodes"][0]["outcomes"]["waiting"] == (10 if days == 7
                                                                                               else 11)
    # more retries after the rollup: nothing new is written, nothing changes
    before = _snapshot()
    assert rollup.advance_rollup(timezone.now() + timedelta(hours=2)) == 0
    for hour in NodeRollup.objects.filter(bucket="hour").values_list("bucket_start", flat=True).distinct():
        rollup.recompute_hour(hour)
    assert _snapshot() == before


def _snapshot():
    return sorted(
        (r.bucket, r.bucket_start, r.automation_id, r.entrypoint_id or "", r.binding_id or "", r.node_key,
         r.success, r.failed, r.skipped, r.waiting, r.first_arrivals, sorted(r.returns.items()),
         sorted(r.exits_by_port.items()), r.duration_bins, r.duration_counts)
        for r in NodeRollup.objects.all())


def test_rebuilding_a_bucket_twice_writes_the_same_rows(spread):
    close_all(timezone.now())
    before = _snapshot()
    assert before
    hours = sorted(set(NodeRollup.objects.filter(bucket="hour").values_list("bucket_start", flat=True)))
    for hour in hours:
        rollup.recompute_hour(hour)
        rollup.recompute_hour(hour)
    for day in sorted(set(NodeRollup.objects.filter(bucket="day").values_list("bucket_start", flat=True))):
        rollup.recompute_day(day)
    for six in sorted(set(NodeRollup.objects.filter(bucket="six").values_list("bucket_start", flat=True))):
        rollup.recompute_six_hours(six)
    assert _snapshot() == before


def test_advance_is_bounded_and_catches_up(spread):
    now = timezone.now()
    assert rollup.advance_rollup(now, max_hours=5) == 5
    first = rollup.rolled_up_until()
    assert first.minute == 0 and rollup.advance_rollup(now, max_hours=5) == 5
    assert rollup.rolled_up_until() == first + timedelta(hours=5)
    # half caught up: the figures are still right (the rest is read from the rows)
    window = Window("custom", now - timedelta(days=11), now)
    scope = Scope(ScopeKind.AUTOMATION, spread["automation"].pk, spread["automation"].pk)
    check_nodes(queries.node_insights(scope, window), spread["steps"], window.start, window.end)
    total = close_all(now)
    assert total == rollup.floor_hour(now - rollup.GRACE)
    assert rollup.advance_rollup(now) == 0  # nothing more until the next hour closes
    check_nodes(queries.node_insights(scope, window), spread["steps"], window.start, window.end)


def test_an_hour_closes_only_after_the_grace_period(org):
    """A step stamped at 10:59 whose transaction commits at 11:02 is in the 10:00 rollup: the hour is
    closed at 11:05 at the earliest."""
    automation = factories.automation(org, factories.flow([("ask", "message", {})]))
    hour = rollup.floor_hour(timezone.now()) - timedelta(hours=3)
    StepRun.objects.create(run_id="arun_early", automation_id=automation.pk, node_key="ask", node_kind="message",
                           outcome="success", executed_at=hour + timedelta(minutes=10))
    RollupWatermark.objects.create(rolled_up_until=hour)
    assert rollup.advance_rollup(hour + timedelta(hours=1, minutes=2)) == 0
    late = StepRun.objects.create(run_id="arun_late", automation_id=automation.pk, node_key="ask",
                                  node_kind="message", outcome="success", executed_at=hour + timedelta(minutes=59))
    assert rollup.advance_rollup(hour + timedelta(hours=1, minutes=4, seconds=59)) == 0
    assert rollup.advance_rollup(hour + timedelta(hours=1, minutes=5)) == 1
    row = NodeRollup.objects.get(bucket="hour", bucket_start=hour)
    assert (row.success, row.first_arrivals) == (2, 2)
    assert str(row).endswith(f"ask, hour from {hour.isoformat()}")
    assert str(RollupWatermark.objects.get()) == f"insights rolled up until {(hour + timedelta(hours=1)).isoformat()}"
    window = Window("custom", hour, hour + timedelta(hours=1))
    assert queries.rolled_up_span(window, rollup.rolled_up_until()) == (window.start, window.end)
    node = queries.node_insights(Scope(ScopeKind.AUTOMATION, automation.pk, automation.pk), window)[0]
    assert node["visits"] == 2 and late.run_id == "arun_late"


def test_median_of_bins_is_percentile_cont():
    assert queries.median_of_bins({}) is None
    assert queries.median_of_bins({5: 1}) == 5
    assert queries.median_of_bins({1: 1, 3: 1}) == 2
    assert queries.median_of_bins({1: 2, 10: 1, 20: 1}) == 5.5
    values = [random.Random(3).randint(0, 900) for _ in range(101)]
    assert queries.median_of_bins(Counter(values)) == statistics.median(values)


def test_the_celery_task_advances_the_rollup(spread):
    from automations.tasks import advance_insights_rollup
    from relay.celery import app

    app.loader.import_default_modules()
    assert "automations.tasks.advance_insights_rollup" in app.tasks
    assert advance_insights_rollup.apply().get() == rollup.MAX_HOURS_PER_CALL
    assert rollup.rolled_up_until() is not None


@pytest.mark.parametrize("scope_kind", [ScopeKind.AUTOMATION, ScopeKind.ORGANIZATION])
def test_the_live_edges_touch_only_their_partitions(org, scope_kind):
    now = timezone.now()
    ensure_partitions(now, months_back=6, months_ahead=2)
    all_months = {partition_name(add_months(month_start(now), offset)) for offset in range(-6, 3)}
    first_of_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    window = Window("custom", first_of_month + timedelta(days=2, minutes=30), first_of_month + timedelta(days=9))
    params = {**queries.step_params(Scope(scope_kind, "x_target", "auto_x"), window),
              "first": window.start + timedelta(minutes=30), "last": window.end - timedelta(hours=1),
              "start_hour": rollup.floor_hour(window.start), "head": 1}
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + insights_store.LIVE_EDGES_SQL[scope_kind], params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert {name for name in all_months if name in plan} == {partition_name(window.start.date())}, plan


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_build_every_hour_once(org):
    """Two processes advancing together take turns on the watermark row: every hour is built once and the
    rows equal a single advance's."""
    automation = factories.automation(org, factories.flow([("ask", "message", {})]))
    now = timezone.now()
    # Every row in an hour that is closed at `now` (within the grace after an hour, that hour is still open).
    start = rollup.floor_hour(now - rollup.GRACE) - timedelta(hours=30)
    for minute in range(0, 30 * 60, 37):
        StepRun.objects.create(run_id=f"arun_{minute % 7}", automation_id=automation.pk, node_key="ask",
                               node_kind="message", outcome="success", executed_at=start + timedelta(minutes=minute))
    closed, errors = [], []

    def beat():
        try:
            closed.append(rollup.advance_rollup(now, max_hours=100))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and sum(closed) == (rollup.floor_hour(now - rollup.GRACE) - rollup.floor_day(start)) // timedelta(
        hours=1)
    together = _snapshot()
    for hour in sorted(set(NodeRollup.objects.filter(bucket="hour").values_list("bucket_start", flat=True))):
        rollup.recompute_hour(hour)
    assert _snapshot() == together
    rows = NodeRollup.objects.filter(bucket="hour")
    assert sum(r.success for r in rows) == StepRun.objects.filter(automation_id=automation.pk).count()


# ------------------------------------------------------------------------------------- runs' figures

def expected_runs(runs, start, end, bucket):
    """totals, exit_reasons and the non-empty series buckets from the run rows in Python."""
    totals, reasons, series = Counter(), Counter(), {}
    for run in runs:
        if start <= run.started_at < end:
            totals[run.status] += 1
            if run.status in ("completed", "exited", "failed") and run.exit_reason:
                reasons[run.exit_reason] += 1
            row = series.setdefault(queries.iso(queries.truncate(run.started_at, bucket)), Counter())
            row["started"] += 1
            if run.status in queries.SERIES_STATUSES:
                row[run.status] += 1
    return dict(totals), dict(reasons), series


def check_runs(body, runs, start, end, bucket):
    totals, reasons, series = expected_runs(runs, start, end, bucket)
    assert {status: count for status, count in body["totals"].items() if count} == totals, (start, end)
    assert body["exit_reasons"] == reasons, (start, end)
    got = {row["bucket_start"]: {k: v for k, v in row.items() if k != "bucket_start" and v}
           for row in body["series"] if row["started"]}
    assert got == {key: dict(counts) for key, counts in series.items()}, (start, end)


@pytest.fixture
def run_spread(org, account):
    """Sixty runs over the last ten days in two automations (some through an entrypoint or a binding): live
    ones, and finished ones — completed, exited (stopped) or failed, with several reasons — finishing from
    seconds to days after they started, some in the last minutes (after any closed hour)."""
    automations = [factories.automation(org, factories.flow([("ask", "message", {})]), status="active")
                   for _ in range(2)]
    entrypoint = factories.entrypoint(automations[0])
    binding = factories.binding(automations[0], account)
    rng = random.Random(19)
    now = timezone.now()
    for index in range(60):
        started = now - timedelta(minutes=rng.randint(1, 10 * 24 * 60), seconds=rng.randint(0, 59))
        status = rng.choice(["completed", "completed", "exited", "failed", "waiting", "active", "created"])
        finished = started + timedelta(seconds=rng.choice([1, 50, 1800, 4000, 30000, 100000, 300000]))
        if status in ("completed", "exited", "failed") and finished >= now:
            finished = now - timedelta(seconds=rng.randint(1, 120))
            finished = max(finished, started)
        live = status in ("waiting", "active", "created")
        AutomationRun.objects.create(
            organization=org, automation=automations[index % 2], contact=factories.contact(org), status=status,
            entrypoint=entrypoint if index % 3 == 0 and index % 2 == 0 else None,
            binding=binding if index % 3 == 1 and index % 2 == 0 else None, started_at=started,
            exit_reason=None if live else rng.choice(["completed", "admin_stopped", "declined", "error"]),
            completed_at=None if live else finished, updated_at=max(started, finished) if not live else started)
    return {"automations": automations, "entrypoint": entrypoint, "binding": binding}


def _run_scopes(run_spread):
    first = run_spread["automations"][0]
    return [
        (Scope(ScopeKind.AUTOMATION, first.pk, first.pk), lambda r: r.automation_id == first.pk),
        (Scope(ScopeKind.ENTRYPOINT, run_spread["entrypoint"].pk, first.pk),
         lambda r: r.entrypoint_id == run_spread["entrypoint"].pk),
        (Scope(ScopeKind.BINDING, run_spread["binding"].pk, first.pk),
         lambda r: r.binding_id == run_spread["binding"].pk),
        (Scope(ScopeKind.ORGANIZATION, first.organization_id), lambda r: True),
    ]


def check_run_windows(run_spread, seed=7, count=None):
    runs = list(AutomationRun.objects.all())
    now = timezone.now()
    mixed = 0
    cases = [Window("custom", start, end) for start, end in windows(now, random.Random(seed))]
    cases += [Window("24h", now - timedelta(hours=24), now), Window("7d", now - timedelta(days=7), now)]
    for window in cases[:count]:
        mixed += queries.rolled_up_span(window, rollup.rolled_up_until()) is not None
        for scope, keep in _run_scopes(run_spread):
            body = queries.insights(scope, window)
            check_runs(body, [r for r in runs if keep(r)], window.start, window.end, window.bucket)
    return mixed


def test_run_counts_from_the_rollup_equal_the_runs_for_any_window(run_spread):
    assert check_run_windows(run_spread) == 0  # nothing rolled up: all live
    close_all(timezone.now())
    assert RunRollup.objects.filter(bucket="day").exists() and RunRollup.objects.filter(bucket="hour").exists()
    assert check_run_windows(run_spread) >= 20  # most windows did read the rollup


def test_runs_that_finish_after_their_hour_closed_are_counted_where_they_started(run_spread):
    """Live runs that finish after the rollup closed the hours they started in (stopped, completed, failed
    now) are read from their rows until their own hour of finishing closes, then from the rollup."""
    close_all(timezone.now())
    live = list(AutomationRun.objects.filter(status__in=["waiting", "active", "created"]))
    assert len(live) >= 10
    now = timezone.now()
    for index, run in enumerate(live):
        status = ["completed", "exited", "failed"][index % 3]
        AutomationRun.objects.filter(pk=run.pk).update(status=status, exit_reason=f"late_{status}",
                                                       completed_at=now, updated_at=now)
    check_run_windows(run_spread, seed=8, count=12)
    close_all(now + timedelta(days=1, hours=2))  # their hour and day closed
    assert RunRollup.objects.filter(exit_reason__startswith="late_", bucket="day").exists()
    check_run_windows(run_spread, seed=8, count=12)


def _run_snapshot():
    return sorted((r.bucket, r.finished_start, r.started_start, r.automation_id, r.entrypoint_id or "",
                   r.binding_id or "", r.status, r.exit_reason or "", r.runs) for r in RunRollup.objects.all())


def test_deleting_a_contact_or_an_automation_keeps_the_run_counts_exact(run_spread, api):
    close_all(timezone.now() - timedelta(hours=1))
    finished = list(AutomationRun.objects.filter(status__in=["completed", "exited", "failed"])
                    .exclude(completed_at__gte=rollup.rolled_up_until()).order_by("completed_at"))
    for run in finished[:3] + finished[-2:]:
        assert api.delete(f"/v1/contacts/{run.contact_id}").status_code == 204
    check_run_windows(run_spread, seed=9, count=10)
    kept = _run_snapshot()
    rollup.backfill_rollup(timezone.now() - timedelta(hours=1))
    assert _run_snapshot() == kept  # the same rows a rebuild from the remaining runs writes
    run_spread["automations"][1].delete()
    check_run_windows(run_spread, seed=9, count=10)


def test_rebuilding_run_hours_and_days_writes_the_same_rows(run_spread):
    close_all(timezone.now())
    before = _run_snapshot()
    for hour in sorted(set(RunRollup.objects.filter(bucket="hour").values_list("finished_start", flat=True))):
        rollup.recompute_hour(hour)
    for day in sorted(set(RunRollup.objects.filter(bucket="day").values_list("finished_start", flat=True))):
        rollup.recompute_day(day)
    assert _run_snapshot() == before
    RunRollup.objects.all().delete()
    RollupWatermark.objects.all().delete()
    rollup.backfill_rollup(timezone.now())
    assert _run_snapshot() == before
