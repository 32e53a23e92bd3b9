"""Statements of the insights rollup (automation_node_rollups, automation_run_rollups and their watermark).

Why hand-written: an hour of step rows is rolled up in one pass that finds each step's previous visit of
its run to its node with a window function (`lag`) — about 0.2 s for an hour of 1,400 step rows — and the
set-based rebuild turns 10 M step rows into 432,000 hour and 18,000 day rows in 39.8 s, where the ORM's
hour-by-hour path would take at least a quarter of an hour (README, "Insights at scale"). The runs'
figures of an hour are one grouped `INSERT … SELECT` over the runs that finished in it, found through the
`(status, updated_at)` index: a finishing write sets `completed_at` and `updated_at` to the same instant,
later writes only move `updated_at` forward, so `updated_at >= hour` bounds the scan to what changed since.

Parameters are named (`%(name)s`); table names come from the models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from automations.models import (
    FINISHED_RUN_STATUSES,
    AutomationRun,
    NodeRollup,
    RollupBucket,
    RollupWatermark,
    RunRollup,
    StepOutcome,
    StepRun,
)
from automations.store.base import named_rows

STEPS = StepRun._meta.db_table
RUNS = AutomationRun._meta.db_table
ROLLUPS = NodeRollup._meta.db_table
RUN_ROLLUPS = RunRollup._meta.db_table
WATERMARK = RollupWatermark._meta.db_table
FINISHED = list(FINISHED_RUN_STATUSES)
# When a finished run finished: `completed_at`, which every finishing write sets (rows written otherwise —
# fixtures, imports — fall back to their last write).
FINISHED_AT = 'coalesce(r."completed_at", r."updated_at")'

# Duration bin of s."duration_ms": exact below 100 ms, else rounded to the nearest power of 1.02 (at most
# 1 % off; about 116 bins a decade, so a day's row stays small whatever the spread of durations).
DURATION_BIN_SQL = ('CASE WHEN s."duration_ms" < 100 THEN s."duration_ms"::bigint '
                    'ELSE round(exp(round(ln(s."duration_ms") / ln(1.02)) * ln(1.02)))::bigint END')

# One hour of step rows with, for each, when the same run was last at the same node: `earlier` within the
# hour, `before` (looked up only for a run's first step at the node in the hour) before it.
HOUR_STEPS_SQL = f"""
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
SELECT 'o' AS "tag", "automation_id", "entrypoint_id", "binding_id", "node_key", "node_kind", "outcome" AS "label",
       count(*) AS "count"
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

OLDEST_STEP_SQL = f'SELECT min("executed_at") AS "oldest" FROM "{STEPS}"'
OLDEST_RUN_SQL = f'SELECT min("started_at") AS "oldest" FROM "{RUNS}"'

ENSURE_WATERMARK_SQL = (f'INSERT INTO "{WATERMARK}" ("id", "rolled_up_until", "updated_at") '
                        f'VALUES (1, NULL, %(now)s) ON CONFLICT ("id") DO NOTHING')

_RUN_COLUMNS = ('"automation_id", "entrypoint_id", "binding_id", "bucket", "finished_start", "started_start", '
                '"status", "exit_reason", "runs"')

# The runs that finished in [start, end) by the hour they started (`scope` narrows them further).
_RUN_HOURS_SELECT = f"""
SELECT r."automation_id", r."entrypoint_id", r."binding_id", 'hour',
       date_trunc('hour', {FINISHED_AT}, 'UTC'), date_trunc('hour', r."started_at", 'UTC'), r."status",
       r."exit_reason", count(*)
FROM "{RUNS}" r
WHERE r."status" = ANY(%(finished)s) AND r."updated_at" >= %(start)s
  AND {FINISHED_AT} >= %(start)s
  AND {FINISHED_AT} < %(end)s {{scope}}
GROUP BY 1, 2, 3, 5, 6, 7, 8
"""
RUN_HOUR_DELETE_SQL = f'DELETE FROM "{RUN_ROLLUPS}" WHERE "bucket" = \'hour\' AND "finished_start" = %(start)s'
RUN_HOUR_INSERT_SQL = f'INSERT INTO "{RUN_ROLLUPS}" ({_RUN_COLUMNS}) {_RUN_HOURS_SELECT.format(scope="")}'

# A day of finishing from its hour rows, by the day the runs started (`scope` narrows them further).
_RUN_DAYS_SELECT = f"""
SELECT h."automation_id", h."entrypoint_id", h."binding_id", 'day', date_trunc('day', h."finished_start", 'UTC'),
       date_trunc('day', h."started_start", 'UTC'), h."status", h."exit_reason", sum(h."runs")
FROM "{RUN_ROLLUPS}" h
WHERE h."bucket" = 'hour' AND h."finished_start" >= %(start)s AND h."finished_start" < %(end)s {{scope}}
GROUP BY 1, 2, 3, 5, 6, 7, 8
"""
RUN_DAY_DELETE_SQL = f'DELETE FROM "{RUN_ROLLUPS}" WHERE "bucket" = \'day\' AND "finished_start" = %(start)s'
RUN_DAY_INSERT_SQL = f'INSERT INTO "{RUN_ROLLUPS}" ({_RUN_COLUMNS}) {_RUN_DAYS_SELECT.format(scope="")}'

# After runs were deleted (with their contact): one automation's runs that started in one hour and
# finished in another, counted again; and the day those fall in, summed again from its hours.
_ONE_START = ('AND r."automation_id" = %(automation)s AND r."started_at" >= %(started)s '
              'AND r."started_at" < %(started_end)s')
RUN_KEY_HOUR_DELETE_SQL = (f'DELETE FROM "{RUN_ROLLUPS}" WHERE "bucket" = \'hour\' AND "finished_start" = %(start)s '
                           f'AND "automation_id" = %(automation)s AND "started_start" = %(started)s')
RUN_KEY_HOUR_INSERT_SQL = f'INSERT INTO "{RUN_ROLLUPS}" ({_RUN_COLUMNS}) {_RUN_HOURS_SELECT.format(scope=_ONE_START)}'
_ONE_DAY_START = ('AND h."automation_id" = %(automation)s AND h."started_start" >= %(started)s '
                  'AND h."started_start" < %(started_end)s')
RUN_KEY_DAY_DELETE_SQL = (f'DELETE FROM "{RUN_ROLLUPS}" WHERE "bucket" = \'day\' AND "finished_start" = %(start)s '
                          f'AND "automation_id" = %(automation)s AND "started_start" = %(started)s')
RUN_KEY_DAY_INSERT_SQL = f'INSERT INTO "{RUN_ROLLUPS}" ({_RUN_COLUMNS}) {_RUN_DAYS_SELECT.format(scope=_ONE_DAY_START)}'

# A contact's finished runs already in the rollup: the (automation, start hour, finish hour) they count in.
CONTACT_RUN_KEYS_SQL = f"""
SELECT DISTINCT r."automation_id", date_trunc('hour', r."started_at", 'UTC') AS "started",
       date_trunc('hour', {FINISHED_AT}, 'UTC') AS "finished"
FROM "{RUNS}" r
WHERE r."contact_id" = %(contact)s AND r."status" = ANY(%(finished)s) AND {FINISHED_AT} < %(until)s
"""

# The set-based rebuild (`backfill_rollup`): every step row before `until` once, with the previous visit of
# its run to its node over the whole history (`lag`), which is what the hour path finds in two steps: within
# the hour (`earlier`) or the latest before it (`before`). Entrypoint and binding are '' for none, so the
# per-figure aggregates join on plain equality; they are turned back to NULL when the rows are written.
_KEY = '"automation_id", "entrypoint_id", "binding_id", "node_key", "node_kind"'
BACKFILL_DELETE_SQL = (f'DELETE FROM "{ROLLUPS}" WHERE "bucket" IN (%(hour)s, %(day)s, %(six)s) '
                       f'AND "bucket_start" < %(until)s')
BACKFILL_RUNS_DELETE_SQL = (f'DELETE FROM "{RUN_ROLLUPS}" WHERE ("bucket" = %(hour)s AND "finished_start" < %(until)s) '
                            f'OR ("bucket" = %(day)s AND "finished_start" < %(days_until)s)')
BACKFILL_RUN_HOURS_SQL = (f'INSERT INTO "{RUN_ROLLUPS}" ({_RUN_COLUMNS}) '
                          f'{_RUN_HOURS_SELECT.format(scope="").replace("%(start)s", "%(epoch)s")}')
BACKFILL_RUN_DAYS_SQL = (f'INSERT INTO "{RUN_ROLLUPS}" ({_RUN_COLUMNS}) '
                         f'{_RUN_DAYS_SELECT.format(scope="").replace("%(start)s", "%(epoch)s")}')
BACKFILL_STEPS_SQL = f"""
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
BACKFILL_DROP_SQL = 'DROP TABLE "rollup_backfill_steps"'
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


BACKFILL_WORK_MEM_SQL = "SET LOCAL work_mem = '256MB'"  # the sort of the window and the groups, in memory
BACKFILL_HOURS_SQL = f"""
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


def _from_hours_sql(truncate: str) -> str:
    """Buckets of several hours from their hour rows before `until`, as `rollup._sum_hours` adds them (a
    return from within the bucket is not one for it); `truncate` gives an hour's bucket start."""
    return f"""
WITH hours AS MATERIALIZED (
    SELECT "automation_id", coalesce("entrypoint_id", '') AS "entrypoint_id",
           coalesce("binding_id", '') AS "binding_id", "node_key", "node_kind",
           {truncate} AS "bucket_start",
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


# Days (today's from its hours so far) and six-hour blocks (those that ended: `until` is a block's start).
BACKFILL_DAYS_SQL = _from_hours_sql("date_trunc('day', \"bucket_start\", 'UTC')")
BACKFILL_SIX_HOURS_SQL = _from_hours_sql(
    "date_bin('6 hours', \"bucket_start\", TIMESTAMPTZ '2000-01-01 00:00:00+00')")
SIX_HOURS_DELETE_SQL = f'DELETE FROM "{ROLLUPS}" WHERE "bucket" = %(bucket)s AND "bucket_start" < %(until)s'


@dataclass(frozen=True)
class StepFigure:
    """One figure of an hour's step rows: `tag` o (outcome `label`), f (first arrivals), r (returns from the
    hour whose epoch second is `label`), p (exits by port `label`), d (durations in bin `label`)."""

    tag: str
    automation_id: str
    entrypoint_id: str | None
    binding_id: str | None
    node_key: str
    node_kind: str
    label: str
    count: int


def hour_step_figures(start: datetime, end: datetime) -> list[StepFigure]:
    with connection.cursor() as cursor:
        cursor.execute(HOUR_STEPS_SQL, {"start": start, "end": end})
        return [StepFigure(**row) for row in named_rows(cursor)]


def oldest_step_at() -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(OLDEST_STEP_SQL)
        return named_rows(cursor)[0]["oldest"]


def oldest_run_start() -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(OLDEST_RUN_SQL)
        return named_rows(cursor)[0]["oldest"]


def ensure_watermark(now: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(ENSURE_WATERMARK_SQL, {"now": now})


def replace_run_hour(start: datetime, end: datetime) -> int:
    """The hour's rows of finished runs, rebuilt from the runs that finished in it; rows written."""
    with connection.cursor() as cursor:
        cursor.execute(RUN_HOUR_DELETE_SQL, {"start": start})
        cursor.execute(RUN_HOUR_INSERT_SQL, {"start": start, "end": end, "finished": FINISHED})
        return cursor.rowcount


def replace_run_day(start: datetime, end: datetime) -> int:
    """The day's rows of finished runs, summed from its hour rows; rows written."""
    with connection.cursor() as cursor:
        cursor.execute(RUN_DAY_DELETE_SQL, {"start": start})
        cursor.execute(RUN_DAY_INSERT_SQL, {"start": start, "end": end})
        return cursor.rowcount


@dataclass(frozen=True)
class RunKey:
    """Where finished runs count in the rollup: one automation, the hour they started, the hour they ended."""

    automation_id: str
    started: datetime
    finished: datetime


def contact_run_keys(contact_id: str, until: datetime) -> list[RunKey]:
    with connection.cursor() as cursor:
        cursor.execute(CONTACT_RUN_KEYS_SQL, {"contact": contact_id, "finished": FINISHED, "until": until})
        return [RunKey(**row) for row in named_rows(cursor)]


def recount_run_key(key: RunKey, hour, day, closed_days_until: datetime) -> None:
    """Rebuild the hour rows of `key` from the runs, and its day rows (when that day is closed) from the hours."""
    params = {"automation": key.automation_id, "started": key.started, "started_end": key.started + hour,
              "start": key.finished, "end": key.finished + hour, "finished": FINISHED}
    with connection.cursor() as cursor:
        cursor.execute(RUN_KEY_HOUR_DELETE_SQL, params)
        cursor.execute(RUN_KEY_HOUR_INSERT_SQL, params)
        finished_day = key.finished.replace(hour=0)
        if finished_day < closed_days_until:
            started_day = key.started.replace(hour=0)
            params = {"automation": key.automation_id, "started": started_day, "started_end": started_day + day,
                      "start": finished_day, "end": finished_day + day}
            cursor.execute(RUN_KEY_DAY_DELETE_SQL, params)
            cursor.execute(RUN_KEY_DAY_INSERT_SQL, params)


def backfill(closed_until: datetime, days_until: datetime, six_until: datetime) -> dict:
    """Rebuild every closed hour, day and six-hour block, steps and runs; returns the rows written. Caller
    holds the watermark lock inside a transaction."""
    buckets = {"hour": RollupBucket.HOUR, "day": RollupBucket.DAY, "six": RollupBucket.SIX, "until": closed_until,
               "days_until": days_until}
    epoch = datetime.fromtimestamp(0).astimezone()
    with connection.cursor() as cursor:
        cursor.execute(BACKFILL_WORK_MEM_SQL)
        cursor.execute(BACKFILL_DELETE_SQL, buckets)
        cursor.execute(BACKFILL_STEPS_SQL, {"until": closed_until})
        cursor.execute(BACKFILL_HOURS_SQL, {"bucket": RollupBucket.HOUR})
        hours = cursor.rowcount
        cursor.execute(BACKFILL_DAYS_SQL, {"bucket": RollupBucket.DAY, "hour": RollupBucket.HOUR,
                                           "until": closed_until})
        days = cursor.rowcount
        six = rebuild_six_hours(six_until)
        cursor.execute(BACKFILL_DROP_SQL)
        cursor.execute(BACKFILL_RUNS_DELETE_SQL, buckets)
        cursor.execute(BACKFILL_RUN_HOURS_SQL, {"epoch": epoch, "end": closed_until, "finished": FINISHED})
        run_hours = cursor.rowcount
        cursor.execute(BACKFILL_RUN_DAYS_SQL, {"epoch": epoch, "end": days_until})
        run_days = cursor.rowcount
    return {"hour_rows": hours, "day_rows": days, "six_rows": six, "run_hour_rows": run_hours,
            "run_day_rows": run_days}


def rebuild_six_hours(until: datetime) -> int:
    """Every six-hour block before `until` (a block's start) again from its hour rows; rows written."""
    with connection.cursor() as cursor:
        cursor.execute(SIX_HOURS_DELETE_SQL, {"bucket": RollupBucket.SIX, "until": until})
        cursor.execute(BACKFILL_SIX_HOURS_SQL, {"bucket": RollupBucket.SIX, "hour": RollupBucket.HOUR, "until": until})
        return cursor.rowcount
