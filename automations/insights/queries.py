"""Run insights for one automation, entrypoint, binding or a whole organization over a period.

Every statement is bounded in time so PostgreSQL touches only what the period needs:

- runs started in [from, to) grouped by (bucket, status, exit_reason) → `totals`, `exit_reasons` and
  `series` (a cohort view: `started` in a bucket and how many of those runs have completed, exited or
  failed by now, so the series adds up to the totals);
- per node → `nodes`: the rollup (automation_node_rollups, see `rollup`) for the closed hours and days
  inside the period, the step rows with `executed_at` in the rest — the partial first hour and the tail
  not rolled up yet, an hour or two. So the cost follows the number of buckets and nodes, not of step
  rows. The bound on the partition key lets the planner prune `automation_step_runs` to the months the
  rows read overlap.

`visits` counts distinct runs that reached a node (a wait writes two rows, a re-prompt more; a funnel
asks how many people got there); `outcomes` and `exits_by_port` count step rows. Retries cannot double
count: a stale run write writes no step rows, and a run row exists once whatever resumes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from automations.insights import rollup
from automations.models import FINISHED_RUN_STATUSES, LIVE_RUN_STATUSES, RunStatus, StepOutcome
from automations.store import insights as store
from relay.core.errors import ApiError

PRESET_PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
                  "90d": timedelta(days=90)}
CUSTOM = "custom"
PERIODS = [*PRESET_PERIODS, CUSTOM]
DEFAULT_PERIOD = "7d"
MAX_CUSTOM_SPAN = timedelta(days=366)
SERIES_STATUSES = ("completed", "exited", "failed")


class ScopeKind:
    AUTOMATION = "automation"
    ENTRYPOINT = "entrypoint"
    BINDING = "binding"
    ORGANIZATION = "organization"


@dataclass(frozen=True)
class Scope:
    """What the figures are about. `automation_id` is set for every kind but the organization's roll-up
    (an entrypoint or binding belongs to one automation; its steps are that automation's)."""

    kind: str
    target_id: str
    automation_id: str | None = None


@dataclass(frozen=True)
class Window:
    period: str
    start: datetime
    end: datetime

    @property
    def bucket(self) -> str:
        return "hour" if self.period == "24h" else "day"

    def bucket_starts(self) -> list[datetime]:
        step = timedelta(hours=1) if self.bucket == "hour" else timedelta(days=1)
        current = truncate(self.start, self.bucket)
        starts = []
        while current < self.end:
            starts.append(current)
            current += step
        return starts


def truncate(value: datetime, unit: str) -> datetime:
    value = value.astimezone(UTC)
    if unit == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _timestamp(params, name: str) -> datetime | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    value = parse_datetime(raw.replace(" ", "+")) if len(raw) <= 64 else None
    if value is None:
        raise ApiError("invalid_timestamp", f"{name} must be an ISO-8601 timestamp.",
                       details={name: ["must be an ISO-8601 timestamp, e.g. 2026-01-31T00:00:00Z"]})
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def parse_window(params, now: datetime | None = None) -> Window:
    """`period` (24h | 7d | 30d | 90d | custom, default 7d); custom takes `from` and `to` (ISO 8601).
    Bad input is a 400 with a stable code: invalid_period, invalid_timestamp, invalid_range."""
    period = params.get("period") or DEFAULT_PERIOD
    if period not in PERIODS:
        raise ApiError("invalid_period", "Unknown period.",
                       details={"period": [f"must be one of {', '.join(PERIODS)}"]})
    start, end = _timestamp(params, "from"), _timestamp(params, "to")
    if period != CUSTOM:
        if start or end:
            raise ApiError("invalid_range", "from and to are only accepted with period=custom.",
                           details={"period": ["must be custom when from/to are given"]})
        end = now or timezone.now()
        if end.microsecond:  # whole seconds, rounded up so nothing started up to now is left out
            end = end.replace(microsecond=0) + timedelta(seconds=1)
        return Window(period, end - PRESET_PERIODS[period], end)
    missing = [name for name, value in (("from", start), ("to", end)) if value is None]
    if missing:
        raise ApiError("invalid_range", "period=custom needs both from and to.",
                       details={name: ["required with period=custom"] for name in missing})
    if start >= end:
        raise ApiError("invalid_range", "from must be before to.", details={"from": ["must be before to"]})
    if end - start > MAX_CUSTOM_SPAN:
        raise ApiError("invalid_range", f"A custom period spans at most {MAX_CUSTOM_SPAN.days} days.",
                       details={"to": [f"at most {MAX_CUSTOM_SPAN.days} days after from"]})
    return Window(period, start, end)


# ------------------------------------------------------------------------------------------------ SQL

def step_params(scope: Scope, window: Window) -> dict:
    return {"automation": scope.automation_id, "target": scope.target_id, "start": window.start,
            "end": window.end, "bucket": window.bucket}


# --------------------------------------------------------------------------------------------- compute

def insights(scope: Scope, window: Window, graph: dict | None = None) -> dict:
    """The API's response body. `graph` (an automation's) orders the nodes and lists unvisited ones."""
    totals = dict.fromkeys(RunStatus.values, 0)
    exit_reasons: dict[str, int] = {}
    series = {start: {"started": 0, **dict.fromkeys(SERIES_STATUSES, 0)} for start in window.bucket_starts()}
    watermark = rollup.rolled_up_until()
    middle = rolled_up_span(window, watermark)
    for row in _mixed_runs(scope, window, *middle, watermark) if middle else _live_runs(scope, window):
        status, exit_reason, count = row["status"], row["exit_reason"], int(row["runs"])
        totals[status] = totals.get(status, 0) + count
        if exit_reason and status in FINISHED_RUN_STATUSES:
            exit_reasons[exit_reason] = exit_reasons.get(exit_reason, 0) + count
        counts = series.setdefault(row["bucket_start"].replace(tzinfo=UTC),
                                   {"started": 0, **dict.fromkeys(SERIES_STATUSES, 0)})
        counts["started"] += count
        if status in SERIES_STATUSES:
            counts[status] += count
    return {
        "period": window.period,
        "from": iso(window.start),
        "to": iso(window.end),
        "totals": totals,
        "exit_reasons": dict(sorted(exit_reasons.items(), key=lambda item: (-item[1], item[0]))),
        "series": [{"bucket_start": iso(start), **counts} for start, counts in sorted(series.items())],
        "nodes": node_insights(scope, window, graph, watermark),
    }


def _live_runs(scope: Scope, window: Window) -> list[dict]:
    """Runs started in the window by (bucket, status, exit_reason), all from the runs."""
    return store.fetch(store.RUNS_SQL[scope.kind], step_params(scope, window))


def _mixed_runs(scope: Scope, window: Window, first: datetime, last: datetime, watermark: datetime) -> list[dict]:
    """The same rows (a bucket, status and reason may come twice): finished runs started in [first, last)
    from the run rollup as far as the watermark, the rest from the runs."""
    params = {**_span_params(scope, window, first, last, watermark), "live": list(LIVE_RUN_STATUSES),
              "finished": list(FINISHED_RUN_STATUSES)}
    return store.fetch(store.MIXED_RUNS_SQL[scope.kind], params)


def _span_params(scope: Scope, window: Window, first: datetime, last: datetime, watermark: datetime) -> dict:
    """The statements' parameters for a window whose [first, last) is rolled up: its whole days inside
    (none for hour buckets: the series needs the hours), the watermark and its day."""
    days = (rollup.floor_day(first) + (rollup.DAY if rollup.floor_day(first) < first else timedelta()),
            rollup.floor_day(last))
    if days[0] >= days[1] or window.bucket == "hour":
        days = (last, last)
    return {**step_params(scope, window), "first": first, "last": last,
            "first_day": days[0], "last_day": days[1], **_node_days(first, last, watermark),
            "returns_before": rollup.epoch(first),
            "watermark": watermark, "watermark_day": rollup.floor_day(watermark)}


def _node_days(first: datetime, last: datetime, watermark: datetime) -> dict:
    """How the step rollup covers [first, last): hour rows up to the first six-hour block boundary
    (`node_first_six`), blocks to the first midnight (`node_first_day`), day rows to `node_days_until`, blocks
    from `node_last_day` to `node_last_six` and hour rows from there to `node_hours_until` — at most five
    hour rows and three blocks per node for each partial day instead of up to 23 hour rows. A span ending at
    the watermark reads today's day row, which stands for the day up to the watermark, instead of its hours."""
    first_day = rollup.floor_day(first) + (rollup.DAY if rollup.floor_day(first) < first else timedelta())
    last_day = rollup.floor_day(last)
    first_six = min(rollup.ceil_six(first), last)
    if first_day > last_day:  # within one day, after its midnight: hours, and the blocks between
        first_day = last_day = last_six = max(first_six, rollup.floor_six(last))
        days_until, hours_until = first_day, last
    elif last == watermark and last_day < last:  # today's day row, no hours after it
        days_until, last_six, hours_until = last_day + rollup.DAY, last_day, last_day
    else:
        days_until, last_six, hours_until = last_day, rollup.floor_six(last), last
    return {"node_first_six": first_six, "node_first_day": first_day, "node_days_until": days_until,
            "node_last_day": last_day, "node_last_six": last_six, "node_hours_until": hours_until}


def node_insights(scope: Scope, window: Window, graph: dict | None = None,
                  watermark: datetime | None | bool = True) -> list[dict]:
    """Per node figures: from the rollup for the closed hours inside the window and from the step rows
    for the rest (the partial first hour and the open tail), or all from the rows when no closed hour
    fits. Both give the same numbers; with the rollup the median is exact below 100 ms and within 1 %
    above (see `rollup`)."""
    if watermark is True:  # not given: as the rollup stands now
        watermark = rollup.rolled_up_until()
    middle = rolled_up_span(window, watermark)
    groups = _mixed_groups(scope, window, *middle, watermark) if middle else _live_groups(scope, window)
    nodes: dict[tuple[str, str], dict] = {}
    for (automation_id, node_key, node_kind), group in groups.items():
        if not any(group["outcomes"].values()):  # only steps before `from` in the rollup's first hour
            continue
        entry = nodes.setdefault((automation_id, node_key), _empty_node(automation_id, node_key, node_kind))
        entry["visits"] += group["visits"]
        for outcome, count in group["outcomes"].items():
            entry["outcomes"][outcome] += count
        for port, count in group["ports"].items():
            if count:
                entry["exits_by_port"][port] = entry["exits_by_port"].get(port, 0) + count
        median = group["median"] if "median" in group else median_of_bins(group["durations"])
        if median is not None:
            entry["median_duration_ms"] = round(median)
    if graph is None or scope.automation_id is None:
        return sorted(nodes.values(), key=lambda n: (n["automation_id"], -n["visits"], n["node_key"]))
    ordered = []
    for node in graph.get("nodes") or []:
        if isinstance(node, dict) and isinstance(node.get("key"), str):
            ordered.append(nodes.pop((scope.automation_id, node["key"]), None)
                           or _empty_node(scope.automation_id, node["key"], node.get("kind") or ""))
    return ordered + sorted(nodes.values(), key=lambda n: n["node_key"])  # nodes since removed from the graph


def _group() -> dict:
    return {"visits": 0, "outcomes": {}, "ports": {}, "durations": {}}


def _live_groups(scope: Scope, window: Window) -> dict[tuple, dict]:
    """All from the step rows: exact median from PostgreSQL."""
    params = step_params(scope, window)
    groups: dict[tuple, dict] = {}
    by_node: dict[tuple, dict] = {}  # ports are per node key; a key has one kind (but after graph edits)
    for row in store.fetch(store.NODES_SQL[scope.kind], params):
        group = groups.setdefault((row["automation_id"], row["node_key"], row["node_kind"]), _group())
        group["visits"] += row["visits"]
        group["outcomes"] = {outcome: row[outcome] for outcome in StepOutcome.values}
        group["median"] = row["median"]
        by_node.setdefault((row["automation_id"], row["node_key"]), group)
    for row in store.fetch(store.PORTS_SQL[scope.kind], params):
        group = (by_node.get((row["automation_id"], row["node_key"]))
                 or groups.setdefault((row["automation_id"], row["node_key"], ""), _group()))
        group["ports"][row["port"]] = group["ports"].get(row["port"], 0) + row["count"]
    return groups


def rolled_up_span(window: Window, watermark: datetime | None) -> tuple[datetime, datetime] | None:
    """The whole closed hours of the window the rollup covers, [first, last), or None."""
    if watermark is None:
        return None
    first = rollup.floor_hour(window.start)
    if first < window.start:
        first += rollup.HOUR
    last = min(rollup.floor_hour(window.end), watermark)
    return (first, last) if first < last else None


def _mixed_groups(scope: Scope, window: Window, first: datetime, last: datetime,
                  watermark: datetime) -> dict[tuple, dict]:
    """Rollup rows for [first, last), step rows for [start, first) and [last, end) — or, when the span
    ends at the watermark and the `part` rows reach into the window, rollup rows to `part_until` and step
    rows from there: minutes, not up to an hour and five.

    A run counts once, at its first step in the window. A run at the node in the rolled-up span counts
    there: its first step in the span is a first arrival or a return from before the span's first hour
    (from the window's partial first hour too, whether that visit was before `from` or after: either way
    it is the run's first step in the window or its first one is in that partial hour and not counted
    from the rows). A run not in the span counts in the rows, at its first step in the live ranges.

    A window starting in the first half of an hour reads that hour from the rollup and takes off its
    rows before `from` (see `_live_edges_sql`): at most half an hour of rows at either edge."""
    params = _span_params(scope, window, first, last, watermark)
    part_until = rollup.part_until(watermark) if last == watermark else None
    if part_until is not None and watermark < part_until <= window.end:  # the open hour's `part` rows too
        params["part_start"], edges = watermark, {**params, "last": part_until, "head": 1}
    else:
        params["part_start"], edges = None, {**params, "head": 1}
    start_hour = rollup.floor_hour(window.start)
    if start_hour < window.start and window.start - start_hour < first - window.start:
        # the window starts early in its first hour: that hour whole from the rollup, less its rows before `from`
        params.update(first=start_hour, returns_before=rollup.epoch(start_hour),
                      **_node_days(start_hour, last, watermark))
        edges.update(start=start_hour, first=window.start, head=-1)
    groups: dict[tuple, dict] = {}
    rows = store.fetch(store.LIVE_EDGES_SQL[scope.kind], edges) + store.fetch(store.ROLLED_SQL[scope.kind], params)
    for row in rows:
        group = groups.setdefault((row["automation_id"], row["node_key"], row["node_kind"]), _group())
        tag, label, count = row["tag"], row["label"], int(row["count"])
        if tag == "v":
            group["visits"] += count
        elif tag == "c":  # a node's outcome counts and first arrivals in the rollup, at once
            rolled = json.loads(label)
            group["visits"] += int(rolled.pop("first_arrivals"))
            for outcome, rolled_count in rolled.items():
                group["outcomes"][outcome] = group["outcomes"].get(outcome, 0) + int(rolled_count)
        else:
            counts = group[{"o": "outcomes", "p": "ports", "d": "durations"}[tag]]
            label = int(label) if tag == "d" else label
            counts[label] = counts.get(label, 0) + count
    return groups


def median_of_bins(bins: dict[int, int]) -> float | None:
    """percentile_cont(0.5) over a {value: count} histogram."""
    total = sum(bins.values())
    if not total:
        return None
    wanted = {(total - 1) // 2, total // 2}
    found, seen = {}, 0
    for value, count in sorted(bins.items()):
        for index in sorted(wanted - set(found)):
            if index < seen + count:
                found[index] = value
        seen += count
        if len(found) == len(wanted):
            break
    return (found[(total - 1) // 2] + found[total // 2]) / 2


def _empty_node(automation_id: str, node_key: str, node_kind: str) -> dict:
    return {"automation_id": automation_id, "node_key": node_key, "node_kind": node_kind, "visits": 0,
            "outcomes": dict.fromkeys(StepOutcome.values, 0), "exits_by_port": {}, "median_duration_ms": None}


def dropoff_by_node(automation_id: str, window: Window) -> dict[str, int]:
    rows = store.fetch(store.DROPOFF_SQL, {"automation": automation_id, "start": window.start, "end": window.end,
                                           "ended": [RunStatus.EXITED, RunStatus.FAILED]})
    return {row["node_key"]: row["runs"] for row in rows}
