"""Statements the insights read (automations.insights.queries): runs started in a period by status, step
rows by node, and the rollups that stand for the closed hours and days of both.

Why hand-written: every statement bounds `started_at` or `executed_at` so PostgreSQL prunes the step-run
partitions and reads one index range per branch; the per-node figures of the period's open edges need a
window function (`lag`) over the steps of each run at each node. With 1 M runs and 10 M step rows the
organization's 7-day insights read live took 1.06 s; the rollups bring them to a few tens of milliseconds
(README, "Insights at scale"). A rollup read is a `UNION ALL` of one index range per kind of bucket: an `OR`
of the three made PostgreSQL AND two bitmaps, one of them every row of the automation.

Parameters are named (`%(name)s`); table names come from the models; scopes are one of `ScopeKind`'s.
"""

from __future__ import annotations

from django.db import connection

from automations.models import (
    Automation,
    AutomationRun,
    NodeRollup,
    RollupBucket,
    RunRollup,
    StepOutcome,
    StepRun,
)
from automations.store.base import named_rows
from automations.store.rollup import DURATION_BIN_SQL, FINISHED_AT

RUNS = AutomationRun._meta.db_table
STEPS = StepRun._meta.db_table
AUTOMATIONS = Automation._meta.db_table
ROLLUPS = NodeRollup._meta.db_table
RUN_ROLLUPS = RunRollup._meta.db_table

AUTOMATION, ENTRYPOINT, BINDING, ORGANIZATION = "automation", "entrypoint", "binding", "organization"
_ORG_AUTOMATIONS = f'(SELECT a."id" FROM "{AUTOMATIONS}" a WHERE a."organization_id" = %(target)s)'

# Runs of the scope; an entrypoint's or binding's through their automation's indexes.
_RUN_SCOPE = {
    AUTOMATION: 'r."automation_id" = %(target)s',
    ENTRYPOINT: 'r."automation_id" = %(automation)s AND r."entrypoint_id" = %(target)s',
    BINDING: 'r."automation_id" = %(automation)s AND r."binding_id" = %(target)s',
    ORGANIZATION: 'r."organization_id" = %(target)s',
}
# The same runs, by status: the organization's through each automation's (automation, status, started_at).
_RUN_STATUS_SCOPE = {**_RUN_SCOPE, ORGANIZATION: f'r."automation_id" IN {_ORG_AUTOMATIONS}'}

# Steps carry automation_id (indexed with executed_at per partition); an entrypoint's or binding's
# steps are its automation's steps of the runs it started.
_STEP_SCOPE = {
    AUTOMATION: 's."automation_id" = %(automation)s',
    ENTRYPOINT: (f's."automation_id" = %(automation)s AND s."run_id" IN '
                 f'(SELECT r."id" FROM "{RUNS}" r WHERE r."entrypoint_id" = %(target)s)'),
    BINDING: (f's."automation_id" = %(automation)s AND s."run_id" IN '
              f'(SELECT r."id" FROM "{RUNS}" r WHERE r."binding_id" = %(target)s)'),
    ORGANIZATION: f's."automation_id" IN {_ORG_AUTOMATIONS}',
}

_ROLLUP_SCOPE = {
    AUTOMATION: 'u."automation_id" = %(automation)s',
    ENTRYPOINT: 'u."automation_id" = %(automation)s AND u."entrypoint_id" = %(target)s',
    BINDING: 'u."automation_id" = %(automation)s AND u."binding_id" = %(target)s',
    ORGANIZATION: f'u."automation_id" IN {_ORG_AUTOMATIONS}',
}

_RUN_BUCKET = 'date_trunc(%(bucket)s, r."started_at" AT TIME ZONE \'UTC\') AS "bucket_start"'


def _runs_sql(scope_kind: str) -> str:
    """Runs started in [start, end) by (bucket, status, exit_reason), from the runs."""
    return (f'SELECT {_RUN_BUCKET}, r."status", r."exit_reason", count(*) AS "runs" FROM "{RUNS}" r '
            f'WHERE {_RUN_SCOPE[scope_kind]} AND r."started_at" >= %(start)s AND r."started_at" < %(end)s '
            f"GROUP BY 1, 2, 3")


def _run_edges_sql(scope_kind: str) -> str:
    """What the run rollup does not hold of the runs started in [start, end): those started in the open
    edges [start, first) and [last, end), and of those started in [first, last) the ones still live and the
    ones that finished at or after the watermark (`updated_at` is never before when it finished)."""
    scope, by_status = _RUN_SCOPE[scope_kind], _RUN_STATUS_SCOPE[scope_kind]
    columns = 'r."started_at", r."status", r."exit_reason"'
    return f"""
SELECT {_RUN_BUCKET}, r."status", r."exit_reason", count(*) AS "runs" FROM (
    SELECT {columns} FROM "{RUNS}" r WHERE {scope} AND r."started_at" >= %(start)s AND r."started_at" < %(first)s
    UNION ALL
    SELECT {columns} FROM "{RUNS}" r WHERE {scope} AND r."started_at" >= %(last)s AND r."started_at" < %(end)s
    UNION ALL
    SELECT {columns} FROM "{RUNS}" r WHERE {by_status} AND r."status" = ANY(%(live)s)
    AND r."started_at" >= %(first)s AND r."started_at" < %(last)s
    UNION ALL
    SELECT {columns} FROM "{RUNS}" r WHERE r."status" = ANY(%(finished)s) AND r."updated_at" >= %(watermark)s
    AND {FINISHED_AT} >= %(watermark)s AND {scope} AND r."started_at" >= %(first)s AND r."started_at" < %(last)s
) r GROUP BY 1, 2, 3
"""


def _run_rolled_sql(scope_kind: str) -> str:
    """Finished runs started in [first, last) from the run rollup: hour rows for the hours around whole
    days, day rows for those days (finished on a closed day) and hour rows for their runs finished since."""
    scope = _ROLLUP_SCOPE[scope_kind]
    rows = f'SELECT u."started_start", u."status", u."exit_reason", u."runs" FROM "{RUN_ROLLUPS}" u WHERE {scope}'
    return f"""
SELECT date_trunc(%(bucket)s, u."started_start" AT TIME ZONE 'UTC') AS "bucket_start", u."status", u."exit_reason",
       sum(u."runs") AS "runs" FROM (
    {rows} AND u."bucket" = 'hour' AND u."started_start" >= %(first)s AND u."started_start" < %(first_day)s
    UNION ALL
    {rows} AND u."bucket" = 'hour' AND u."started_start" >= %(last_day)s AND u."started_start" < %(last)s
    UNION ALL
    {rows} AND u."bucket" = 'day' AND u."started_start" >= %(first_day)s AND u."started_start" < %(last_day)s
    UNION ALL
    {rows} AND u."bucket" = 'hour' AND u."finished_start" >= %(watermark_day)s
    AND u."started_start" >= %(first_day)s AND u."started_start" < %(last_day)s
) u GROUP BY 1, 2, 3
"""


def _mixed_runs_sql(scope_kind: str) -> str:
    """`_run_edges_sql` and `_run_rolled_sql` in one round trip (a bucket, status and reason may come twice)."""
    return f"({_run_edges_sql(scope_kind)}) UNION ALL ({_run_rolled_sql(scope_kind)})"


def _outcome_columns() -> str:
    return ", ".join(f"count(*) FILTER (WHERE s.\"outcome\" = '{outcome}') AS \"{outcome}\""
                     for outcome in StepOutcome.values)


def _nodes_sql(scope_kind: str) -> str:
    """Per node: distinct runs, rows by outcome, median duration. Bounded on executed_at (partition key)."""
    return (f'SELECT s."automation_id", s."node_key", s."node_kind", count(DISTINCT s."run_id") AS "visits", '
            f'{_outcome_columns()}, percentile_cont(0.5) WITHIN GROUP (ORDER BY s."duration_ms") AS "median" '
            f'FROM "{STEPS}" s WHERE {_STEP_SCOPE[scope_kind]} '
            f'AND s."executed_at" >= %(start)s AND s."executed_at" < %(end)s GROUP BY 1, 2, 3')


def _ports_sql(scope_kind: str) -> str:
    return (f'SELECT s."automation_id", s."node_key", s."exited_via_port_key" AS "port", count(*) AS "count" '
            f'FROM "{STEPS}" s WHERE {_STEP_SCOPE[scope_kind]} '
            f'AND s."executed_at" >= %(start)s AND s."executed_at" < %(end)s '
            f'AND s."exited_via_port_key" IS NOT NULL GROUP BY 1, 2, 3')


DROPOFF_SQL = (f'SELECT r."current_node_key" AS "node_key", count(*) AS "runs" FROM "{RUNS}" r '
               f'WHERE r."automation_id" = %(automation)s AND r."started_at" >= %(start)s '
               f'AND r."started_at" < %(end)s AND r."status" = ANY(%(ended)s) '
               f'AND r."current_node_key" IS NOT NULL GROUP BY 1')

_SAME_NODE = 'p."run_id" = w."run_id" AND p."node_key" = w."node_key" AND p."node_kind" = w."node_kind"'


def _live_edges_sql(scope_kind: str) -> str:
    """Step rows of [start, first) and [last, end) by node: new runs ('v'), outcomes ('o'), ports ('p'),
    duration bins ('d'). A run's first step at a node in these rows is a new run unless the run is at the
    node in the rolled-up span too: then its first step there is the new one, counted from the rollup (a
    return from the window's first hour at most, see `_rolled_sql`). So neither the part of the first hour
    before the window nor the rollup's own steps are read.

    With `head` -1, [start, first) is instead the part of the window's first hour before the window, its
    hour read whole from the rollup: its rows are taken off the rollup's counts, and a run there counts off
    one run unless it is at the node again in [first, end)."""
    columns = ('s."id", s."run_id", s."automation_id", s."node_key", s."node_kind", s."outcome", '
               f's."exited_via_port_key", s."executed_at", {DURATION_BIN_SQL} AS "bin"')
    where = _STEP_SCOPE[scope_kind]
    sign = 'CASE WHEN "executed_at" < %(first)s THEN %(head)s ELSE 1 END'
    return f"""
WITH w AS MATERIALIZED (
    SELECT t.*, lag(t."id") OVER (PARTITION BY t."run_id", t."node_key", t."node_kind"
                                  ORDER BY t."executed_at", t."id") AS "earlier"
    FROM (SELECT {columns} FROM "{STEPS}" s WHERE {where}
          AND s."executed_at" >= %(start)s AND s."executed_at" < %(first)s
          UNION ALL
          SELECT {columns} FROM "{STEPS}" s WHERE {where}
          AND s."executed_at" >= %(last)s AND s."executed_at" < %(end)s) t
)
SELECT 'v' AS "tag", "automation_id", "node_key", "node_kind", '' AS "label", sum({sign}) AS "count" FROM w
WHERE "earlier" IS NULL AND NOT EXISTS (
    SELECT 1 FROM "{STEPS}" p WHERE {_SAME_NODE} AND p."executed_at" >= %(first)s
    AND p."executed_at" < CASE WHEN w."executed_at" < %(first)s AND %(head)s < 0 THEN %(end)s ELSE %(last)s END)
GROUP BY 2, 3, 4
UNION ALL
SELECT 'o', "automation_id", "node_key", "node_kind", "outcome", sum({sign}) FROM w GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'p', "automation_id", "node_key", "node_kind", "exited_via_port_key", sum({sign}) FROM w
WHERE "exited_via_port_key" IS NOT NULL GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'd', "automation_id", "node_key", "node_kind", "bin"::text, sum({sign}) FROM w GROUP BY 2, 3, 4, 5
"""


# The rollup's buckets over [first, last), in order (`queries._node_days` gives the bounds): one index range
# each, joined by UNION ALL.
_ROLLED_RANGES = (
    (RollupBucket.HOUR, "first", "node_first_six"),
    (RollupBucket.SIX, "node_first_six", "node_first_day"),
    (RollupBucket.DAY, "node_first_day", "node_days_until"),
    (RollupBucket.SIX, "node_last_day", "node_last_six"),
    (RollupBucket.HOUR, "node_last_six", "node_hours_until"),
)


def _rolled_sql(scope_kind: str) -> str:
    """Rollup rows of [first, last): hour rows and six-hour blocks around whole days, day rows for those
    and, for a span ending at the watermark, today's day row (see `queries._node_days`) and the open hour's
    `part` rows when `part_start` is the watermark; same tags as `_live_edges_sql`, but a node's outcome
    counts and first arrivals come in one 'c' row, `label` their JSON object. A return counts as a new run
    when its previous visit's hour is before the span's first (`returns_before`): a run at the node in the
    window's partial first hour, before `from` or after, is new at its first step in the span, and the
    edges do not count it."""
    per_node = 'm."automation_id", m."node_key", m."node_kind"'
    outcome_columns = ", ".join(f'u."{outcome}"' for outcome in StepOutcome.values)
    rows = (f'SELECT u."automation_id", u."node_key", u."node_kind", u."first_arrivals", u."returns", '
            f'u."exits_by_port", u."duration_bins", u."duration_counts", {outcome_columns} '
            f'FROM "{ROLLUPS}" u WHERE {_ROLLUP_SCOPE[scope_kind]}')
    counts = ", ".join(f"'{column}', sum(m.\"{column}\")" for column in [*StepOutcome.values, "first_arrivals"])
    ranges = "\n    UNION ALL\n    ".join(
        f'{rows} AND u."bucket" = \'{bucket}\' AND u."bucket_start" >= %({since})s AND u."bucket_start" < %({until})s'
        for bucket, since, until in _ROLLED_RANGES)
    return f"""
WITH m AS MATERIALIZED (
    {ranges}
    UNION ALL
    {rows} AND u."bucket" = '{RollupBucket.PART}' AND u."bucket_start" = %(part_start)s
)
SELECT 'c' AS "tag", {per_node}, json_build_object({counts})::text AS "label", 0 AS "count" FROM m GROUP BY 2, 3, 4
UNION ALL
SELECT 'v', {per_node}, '', sum(e.value::bigint) FROM m, jsonb_each_text(m."returns") e
WHERE m."returns" <> '{{}}'::jsonb AND e.key::bigint < %(returns_before)s GROUP BY 2, 3, 4
UNION ALL
SELECT 'p', {per_node}, e.key, sum(e.value::bigint) FROM m, jsonb_each_text(m."exits_by_port") e GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'd', {per_node}, d.bin::text, sum(d.n) FROM m, unnest(m."duration_bins", m."duration_counts") d(bin, n)
GROUP BY 2, 3, 4, 5
"""


# The statements, built once per scope kind (the `scope` of every read picks one).
SCOPE_KINDS = (AUTOMATION, ENTRYPOINT, BINDING, ORGANIZATION)
RUNS_SQL = {kind: _runs_sql(kind) for kind in SCOPE_KINDS}
MIXED_RUNS_SQL = {kind: _mixed_runs_sql(kind) for kind in SCOPE_KINDS}
NODES_SQL = {kind: _nodes_sql(kind) for kind in SCOPE_KINDS}
PORTS_SQL = {kind: _ports_sql(kind) for kind in SCOPE_KINDS}
LIVE_EDGES_SQL = {kind: _live_edges_sql(kind) for kind in SCOPE_KINDS}
ROLLED_SQL = {kind: _rolled_sql(kind) for kind in SCOPE_KINDS}


def fetch(sql: str, params: dict) -> list[dict]:
    """One of the statements above, its rows by column name."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return named_rows(cursor)
