"""The step-run rollup the insights read for closed hours and days (automation_node_rollups).

Why rebuild instead of counting as runs go: the runtime writes each step row exactly once, in its own
transaction, and runs of one automation must not queue on a shared counter row. So nothing here is on the
runtime's path. A beat task (`advance_rollup`) closes one hour at a time once the hour has ended and a
grace period for late commits has passed: it replaces that hour's rows with figures computed from the step
rows (and the runs, for their entrypoint and binding) in one transaction that also moves the watermark.
After the last hour of a day it builds the day's rows from its 24 hour rows. Re-running a bucket, two beats
at once or a retried task give the same rows: nothing is ever added to what is there.

Figures per (automation, entrypoint, binding, node, bucket):
- outcome counts, exits by port, and duration bins (exact below 100 ms; from 100 ms rounded to the nearest
  power of 1.02, at most 1 % off), which add across buckets;
- distinct runs do not add, so each step records when the same run was last at the same node: never
  (`first_arrivals`), within the bucket (nothing kept), or before it (`returns`, by that visit's hour).
  A run counts once in a period [from, to) at its first step there, the one whose previous visit is
  before `from` — see `queries.node_insights`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from automations.models import (
    AutomationRun,
    NodeRollup,
    RollupBucket,
    RollupWatermark,
    StepOutcome,
    StepRun,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# A step row carries executed_at from before its transaction commits; an hour is closed only after this
# much more time, so a row committing late still lands in its own hour's rollup.
GRACE = timedelta(minutes=5)
MAX_HOURS_PER_CALL = 48  # bounded work per beat; after downtime successive beats catch up
BEAT_TASK = "automations.tasks.advance_insights_rollup"
BEAT_TASK_NAME = "insights rollup"
BEAT_INTERVAL_SECONDS = 60

STEPS = StepRun._meta.db_table
RUNS = AutomationRun._meta.db_table
ROLLUPS = NodeRollup._meta.db_table
WATERMARK = RollupWatermark._meta.db_table

# Duration bin of s."duration_ms": exact below 100 ms, else rounded to the nearest power of 1.02 (at most
# 1 % off; about 116 bins a decade, so a day's row stays small whatever the spread of durations).
DURATION_BIN_SQL = ('CASE WHEN s."duration_ms" < 100 THEN s."duration_ms"::bigint '
                    'ELSE round(exp(round(ln(s."duration_ms") / ln(1.02)) * ln(1.02)))::bigint END')

# One hour of step rows with, for each, when the same run was last at the same node: `earlier` within the
# hour, `before` (looked up only for a run's first step at the node in the hour) before it.
HOUR_SQL = f"""
WITH w AS MATERIALIZED (
    SELECT s."run_id", s."automation_id", r."entrypoint_id", r."binding_id", s."node_key", s."node_kind",
           s."outcome", s."exited_via_port_key", {DURATION_BIN_SQL} AS "bin",
           lag(s."executed_at") OVER (PARTITION BY s."run_id", s."node_key", s."node_kind"
                                      ORDER BY s."executed_at", s."id") AS "earlier"
    FROM "{STEPS}" s LEFT JOIN "{RUNS}" r ON r."id" = s."run_id"
    WHERE s."executed_at" >= %(start)s AND s."executed_at" < %(end)s
), v AS MATERIALIZED (
    SELECT w.*, CASE WHEN w."earlier" IS NULL THEN (
        SELECT max(p."executed_at") FROM "{STEPS}" p WHERE p."run_id" = w."run_id" AND p."node_key" = w."node_key"
        AND p."node_kind" = w."node_kind" AND p."executed_at" < %(start)s) END AS "before"
    FROM w
)
SELECT 'o', "automation_id", "entrypoint_id", "binding_id", "node_key", "node_kind", "outcome", count(*)
FROM v GROUP BY 2, 3, 4, 5, 6, 7
UNION ALL
SELECT 'f', "automation_id", "entrypoint_id", "binding_id", "node_key", "node_kind", '', count(*)
FROM v WHERE "earlier" IS NULL AND "before" IS NULL GROUP BY 2, 3, 4, 5, 6
UNION ALL
SELECT 'r', "automation_id", "entrypoint_id", "binding_id", "node_key", "node_kind",
       extract(epoch FROM date_trunc('hour', "before" AT TIME ZONE 'UTC'))::bigint::text, count(*)
FROM v WHERE "before" IS NOT NULL GROUP BY 2, 3, 4, 5, 6, 7
UNION ALL
SELECT 'p', "automation_id", "entrypoint_id", "binding_id", "node_key", "node_kind", "exited_via_port_key", count(*)
FROM v WHERE "exited_via_port_key" IS NOT NULL GROUP BY 2, 3, 4, 5, 6, 7
UNION ALL
SELECT 'd', "automation_id", "entrypoint_id", "binding_id", "node_key", "node_kind", "bin"::text, count(*)
FROM v GROUP BY 2, 3, 4, 5, 6, 7
"""

_FIELDS_BY_TAG = {"r": "returns", "p": "exits_by_port"}


def floor_hour(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(value: datetime) -> datetime:
    return floor_hour(value).replace(hour=0)


def epoch(value: datetime) -> int:
    return int(value.timestamp())


def _add(counts: dict, key: str, count: int) -> None:
    counts[key] = counts.get(key, 0) + count


def recompute_hour(hour_start: datetime) -> int:
    """Replace the hour's rollup rows with figures from its step rows; returns the number of rows written.
    Idempotent; the caller holds the watermark lock when it runs inside `advance_rollup`."""
    hour_start = floor_hour(hour_start)
    rows: dict[tuple, NodeRollup] = {}
    durations: dict[tuple, dict[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(HOUR_SQL, {"start": hour_start, "end": hour_start + HOUR})
        fetched = cursor.fetchall()
    for tag, automation_id, entrypoint_id, binding_id, node_key, node_kind, label, count in fetched:
        key = (automation_id, entrypoint_id, binding_id, node_key, node_kind)
        row = rows.get(key)
        if row is None:
            row = rows[key] = NodeRollup(
                automation_id=automation_id, entrypoint_id=entrypoint_id, binding_id=binding_id,
                bucket=RollupBucket.HOUR, bucket_start=hour_start, node_key=node_key, node_kind=node_kind,
                returns={}, exits_by_port={})
            durations[key] = {}
        if tag == "o":
            setattr(row, label, getattr(row, label) + count)
        elif tag == "f":
            row.first_arrivals += count
        elif tag == "d":
            _add(durations[key], int(label), count)
        else:
            _add(getattr(row, _FIELDS_BY_TAG[tag]), label, count)
    return _replace(RollupBucket.HOUR, hour_start, rows, durations)


def recompute_day(day_start: datetime) -> int:
    """Replace the day's rows with the sum of its 24 hour rows (a return from within the day is not one
    for the day). Idempotent."""
    day_start = floor_day(day_start)
    day_epoch = epoch(day_start)
    rows: dict[tuple, NodeRollup] = {}
    durations: dict[tuple, dict[int, int]] = {}
    hours = NodeRollup.objects.filter(bucket=RollupBucket.HOUR, bucket_start__gte=day_start,
                                      bucket_start__lt=day_start + DAY)
    for hour in hours:
        key = (hour.automation_id, hour.entrypoint_id, hour.binding_id, hour.node_key, hour.node_kind)
        row = rows.get(key)
        if row is None:
            row = rows[key] = NodeRollup(
                automation_id=hour.automation_id, entrypoint_id=hour.entrypoint_id, binding_id=hour.binding_id,
                bucket=RollupBucket.DAY, bucket_start=day_start, node_key=hour.node_key,
                node_kind=hour.node_kind, returns={}, exits_by_port={})
            durations[key] = {}
        for outcome in StepOutcome.values:
            setattr(row, outcome, getattr(row, outcome) + getattr(hour, outcome))
        row.first_arrivals += hour.first_arrivals
        for label, count in hour.returns.items():
            if int(label) < day_epoch:
                _add(row.returns, label, count)
        for label, count in hour.exits_by_port.items():
            _add(row.exits_by_port, label, count)
        for value, count in zip(hour.duration_bins, hour.duration_counts, strict=True):
            _add(durations[key], value, count)
    return _replace(RollupBucket.DAY, day_start, rows, durations)


def _replace(bucket: str, bucket_start: datetime, rows: dict[tuple, NodeRollup],
             durations: dict[tuple, dict[int, int]]) -> int:
    for key, row in rows.items():
        row.duration_bins = sorted(durations[key])
        row.duration_counts = [durations[key][value] for value in row.duration_bins]
    rows = list(rows.values())
    with transaction.atomic():
        NodeRollup.objects.filter(bucket=bucket, bucket_start=bucket_start).delete()
        NodeRollup.objects.bulk_create(rows)
    return len(rows)


def rolled_up_until() -> datetime | None:
    """Step rows executed before this instant are in the rollup (None: nothing rolled up yet)."""
    return RollupWatermark.objects.filter(pk=1).values_list("rolled_up_until", flat=True).first()


def _first_hour(closed_until: datetime) -> datetime:
    """Where a fresh rollup starts: the day of the oldest step row (one scan, once), else today."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT min("executed_at") FROM "{STEPS}"')
        (oldest,) = cursor.fetchone()
    return floor_day(min(oldest, closed_until) if oldest else closed_until)


def _ensure_watermark(now: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'INSERT INTO "{WATERMARK}" ("id", "rolled_up_until", "updated_at") '
                       f"VALUES (1, NULL, %s) ON CONFLICT (\"id\") DO NOTHING", [now])


def advance_rollup(now: datetime | None = None, max_hours: int = MAX_HOURS_PER_CALL) -> int:
    """Roll up the next closed hours (at most `max_hours`), one transaction each holding the watermark row
    locked, so concurrent callers take turns and never build the same hour twice. Returns hours closed."""
    now = now or timezone.now()
    closed_until = floor_hour(now - GRACE)  # hours ending at or before this are closed
    _ensure_watermark(now)
    closed = 0
    while closed < max_hours:
        with transaction.atomic():
            watermark = RollupWatermark.objects.select_for_update().get(pk=1)
            hour_start = watermark.rolled_up_until or _first_hour(closed_until)
            if hour_start + HOUR > closed_until:
                if watermark.rolled_up_until is None:
                    watermark.rolled_up_until = hour_start
                    watermark.save(update_fields=["rolled_up_until"])
                break
            recompute_hour(hour_start)
            if (hour_start + HOUR).hour == 0:
                recompute_day(hour_start)
            watermark.rolled_up_until = hour_start + HOUR
            watermark.updated_at = timezone.now()
            watermark.save(update_fields=["rolled_up_until", "updated_at"])
        closed += 1
    return closed


# The set-based rebuild (`backfill_rollup`): every step row before `until` once, with the previous visit of
# its run to its node over the whole history (`lag`), which is what the hour path finds in two steps: within
# the hour (`earlier`) or the latest before it (`before`). Entrypoint and binding are '' for none, so the
# per-figure aggregates join on plain equality; they are turned back to NULL when the rows are written.
_KEY = '"automation_id", "entrypoint_id", "binding_id", "node_key", "node_kind"'
_BACKFILL_STEPS_SQL = f"""
CREATE TEMPORARY TABLE "rollup_backfill_steps" ON COMMIT DROP AS
SELECT {_KEY}, "bucket_start", "outcome", "port", "bin", "previous" IS NULL AS "first",
       CASE WHEN "previous" < "bucket_start"
            THEN extract(epoch FROM date_trunc('hour', "previous" AT TIME ZONE 'UTC'))::bigint::text END AS "returned"
FROM (
    SELECT s."automation_id", coalesce(r."entrypoint_id", '') AS "entrypoint_id",
           coalesce(r."binding_id", '') AS "binding_id", s."node_key", s."node_kind", s."outcome",
           s."exited_via_port_key" AS "port", {DURATION_BIN_SQL} AS "bin",
           date_trunc('hour', s."executed_at", 'UTC') AS "bucket_start",
           lag(s."executed_at") OVER (PARTITION BY s."run_id", s."node_key", s."node_kind"
                                      ORDER BY s."executed_at", s."id") AS "previous"
    FROM "{STEPS}" s LEFT JOIN "{RUNS}" r ON r."id" = s."run_id"
    WHERE s."executed_at" < %(until)s
) steps
"""
_OUTCOMES = ", ".join(f'"{o}"' for o in StepOutcome.values)
_OUTCOME_COUNTS = ", ".join(f"count(*) FILTER (WHERE \"outcome\" = '{o}') AS \"{o}\"" for o in StepOutcome.values)
_OUTCOME_SUMS = ", ".join(f'sum("{o}")::int AS "{o}"' for o in StepOutcome.values)
_INSERT_COLUMNS = (f'"automation_id", "entrypoint_id", "binding_id", "bucket", "bucket_start", "node_key", '
                   f'"node_kind", {_OUTCOMES}, "first_arrivals", "returns", "exits_by_port", "duration_bins", '
                   f'"duration_counts"')
_INSERT_SELECT = f"""
INSERT INTO "{ROLLUPS}" ({_INSERT_COLUMNS})
SELECT n."automation_id", nullif(n."entrypoint_id", ''), nullif(n."binding_id", ''), %(bucket)s, n."bucket_start",
       n."node_key", n."node_kind", {", ".join(f'n."{o}"' for o in StepOutcome.values)}, n."first_arrivals",
       coalesce(r."figures", '{{}}'::jsonb), coalesce(p."figures", '{{}}'::jsonb), n."bins", n."counts"
FROM nodes n LEFT JOIN returns r USING ({_KEY}, "bucket_start") LEFT JOIN ports p USING ({_KEY}, "bucket_start")
"""


def _labelled(source: str) -> str:
    """{label: count} per key and bucket from (key, bucket_start, label, count) rows."""
    return (f'SELECT {_KEY}, "bucket_start", jsonb_object_agg("label", "count") AS "figures" '
            f'FROM ({source}) labelled GROUP BY {_KEY}, "bucket_start"')


_BACKFILL_HOURS_SQL = f"""
WITH bins AS (
    SELECT {_KEY}, "bucket_start", "bin", count(*)::int AS "count",
           {_OUTCOME_COUNTS},
           count(*) FILTER (WHERE "first") AS "first_arrivals"
    FROM "rollup_backfill_steps" GROUP BY {_KEY}, "bucket_start", "bin"
), nodes AS (
    SELECT {_KEY}, "bucket_start", {_OUTCOME_SUMS}, sum("first_arrivals")::int AS "first_arrivals",
           array_agg("bin"::int ORDER BY "bin") AS "bins", array_agg("count" ORDER BY "bin") AS "counts"
    FROM bins GROUP BY {_KEY}, "bucket_start"
), returns AS (
    {_labelled(f'SELECT {_KEY}, "bucket_start", "returned" AS "label", count(*)::int AS "count" '
               f'FROM "rollup_backfill_steps" WHERE "returned" IS NOT NULL '
               f'GROUP BY {_KEY}, "bucket_start", "returned"')}
), ports AS (
    {_labelled(f'SELECT {_KEY}, "bucket_start", "port" AS "label", count(*)::int AS "count" '
               f'FROM "rollup_backfill_steps" WHERE "port" IS NOT NULL GROUP BY {_KEY}, "bucket_start", "port"')}
)
{_INSERT_SELECT}
"""

# Days from their hour rows, as `recompute_day` adds them (a return from within the day is not one for it).
_BACKFILL_DAYS_SQL = f"""
WITH hours AS MATERIALIZED (
    SELECT "automation_id", coalesce("entrypoint_id", '') AS "entrypoint_id",
           coalesce("binding_id", '') AS "binding_id", "node_key", "node_kind",
           date_trunc('day', "bucket_start", 'UTC') AS "bucket_start",
           {_OUTCOMES}, "first_arrivals", "returns", "exits_by_port",
           "duration_bins", "duration_counts"
    FROM "{ROLLUPS}" WHERE "bucket" = %(hour)s AND "bucket_start" < %(until)s
), bins AS (
    SELECT {_KEY}, "bucket_start", d."bin", sum(d."count")::int AS "count"
    FROM hours, unnest("duration_bins", "duration_counts") AS d("bin", "count")
    GROUP BY {_KEY}, "bucket_start", d."bin"
), nodes AS (
    SELECT s.*, b."bins", b."counts" FROM (
        SELECT {_KEY}, "bucket_start", {_OUTCOME_SUMS}, sum("first_arrivals")::int AS "first_arrivals"
        FROM hours GROUP BY {_KEY}, "bucket_start"
    ) s LEFT JOIN (
        SELECT {_KEY}, "bucket_start", array_agg("bin" ORDER BY "bin") AS "bins",
               array_agg("count" ORDER BY "bin") AS "counts"
        FROM bins GROUP BY {_KEY}, "bucket_start"
    ) b USING ({_KEY}, "bucket_start")
), returns AS (
    {_labelled(f'SELECT {_KEY}, "bucket_start", e."key" AS "label", sum(e."value"::int)::int AS "count" '
               f'FROM hours, jsonb_each_text("returns") AS e '
               f'WHERE e."key"::bigint < extract(epoch FROM "bucket_start") '
               f'GROUP BY {_KEY}, "bucket_start", e."key"')}
), ports AS (
    {_labelled(f'SELECT {_KEY}, "bucket_start", e."key" AS "label", sum(e."value"::int)::int AS "count" '
               f'FROM hours, jsonb_each_text("exits_by_port") AS e GROUP BY {_KEY}, "bucket_start", e."key"')}
)
{_INSERT_SELECT}
"""


def backfill_rollup(now: datetime | None = None) -> dict:
    """Rebuild every closed hour (and day) at `now` in a few set-based statements and move the watermark
    there: for a database that has step rows but no rollup (after an upgrade, a restore, a bulk load),
    where closing hour by hour would take hours. Writes the rows `advance_rollup` would; holds the watermark
    lock, so beats wait for it and then carry on from where it stopped. Returns the rows written."""
    now = now or timezone.now()
    closed_until = floor_hour(now - GRACE)
    days_until = floor_day(closed_until)  # days that ended by then
    _ensure_watermark(now)
    with transaction.atomic(), connection.cursor() as cursor:
        watermark = RollupWatermark.objects.select_for_update().get(pk=1)
        cursor.execute("SET LOCAL work_mem = '256MB'")  # the sort of the window and the groups, in memory
        cursor.execute(f'DELETE FROM "{ROLLUPS}" WHERE ("bucket" = %s AND "bucket_start" < %s) '
                       f'OR ("bucket" = %s AND "bucket_start" < %s)',
                       [RollupBucket.HOUR, closed_until, RollupBucket.DAY, days_until])
        cursor.execute(_BACKFILL_STEPS_SQL, {"until": closed_until})
        cursor.execute(_BACKFILL_HOURS_SQL, {"bucket": RollupBucket.HOUR})
        hours = cursor.rowcount
        cursor.execute(_BACKFILL_DAYS_SQL, {"bucket": RollupBucket.DAY, "hour": RollupBucket.HOUR,
                                            "until": days_until})
        days = cursor.rowcount
        cursor.execute('DROP TABLE "rollup_backfill_steps"')
        watermark.rolled_up_until = closed_until
        watermark.updated_at = timezone.now()
        watermark.save(update_fields=["rolled_up_until", "updated_at"])
    return {"rolled_up_until": closed_until, "hour_rows": hours, "day_rows": days}
