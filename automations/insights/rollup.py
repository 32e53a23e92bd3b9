"""The rollups the insights read for closed hours and days: step runs (automation_node_rollups) and
finished runs (automation_run_rollups).

Why rebuild instead of counting as runs go: the runtime writes each step row exactly once, in its own
transaction, and runs of one automation must not queue on a shared counter row. So nothing here is on the
runtime's path. A beat task (`advance_rollup`) closes one hour at a time once the hour has ended and a
grace period for late commits has passed: it replaces that hour's rows with figures computed from the step
rows (and the runs, for their entrypoint and binding) in one transaction that also moves the watermark.
After each hour it builds the day's step rows from its hour rows so far (today's row thus stands for
the day up to the watermark), after an hour ending a six-hour block (00, 06, 12, 18 UTC) that block's step
rows, so a period's partial first or last day reads at most five hour rows and three blocks per node instead
of up to 23 hour rows, and, after a day's last hour, the day's rows of finished runs. Once caught
up it rebuilds the `part` rows: the open hour's step rows up to its last five minutes closed (the same
grace), so a period ending now reads minutes of step rows. Re-running a bucket, two beats at once or a
retried task give the same rows: nothing is ever added to what is there.

Figures per (automation, entrypoint, binding, node, bucket):
- outcome counts, exits by port, and duration bins (exact below 100 ms; from 100 ms rounded to the nearest
  power of 1.02, at most 1 % off), which add across buckets;
- distinct runs do not add, so each step records when the same run was last at the same node: never
  (`first_arrivals`), within the bucket (nothing kept), or before it (`returns`, by that visit's hour).
  A run counts once in a period [from, to) at its first step there, the one whose previous visit is
  before `from` — see `queries.node_insights`.

Finished runs per (automation, entrypoint, binding, hour or day they finished, hour or day they started,
status, exit reason): a run's status changes after it started, but not after it finished, so a closed hour
of finishing is final. A contact's deletion takes its runs; `runs_leaving_with` and `recount_runs` rebuild
the hours and days they counted in (automations.insights.signals). The statements are in
automations.store.rollup.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from automations.models import NodeRollup, RollupBucket, RollupWatermark, StepOutcome
from automations.store import rollup as store

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SIX_HOURS = timedelta(hours=6)
PART_STEP = timedelta(minutes=5)  # the open hour's `part` rows reach the last five minutes closed
# A step row carries executed_at from before its transaction commits; an hour is closed only after this
# much more time, so a row committing late still lands in its own hour's rollup.
GRACE = timedelta(minutes=5)
MAX_HOURS_PER_CALL = 48  # bounded work per beat; after downtime successive beats catch up
BEAT_TASK = "automations.tasks.advance_insights_rollup"
BEAT_TASK_NAME = "insights rollup"
BEAT_INTERVAL_SECONDS = 60

_FIELDS_BY_TAG = {"r": "returns", "p": "exits_by_port"}


def floor_hour(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(value: datetime) -> datetime:
    return floor_hour(value).replace(hour=0)


def floor_six(value: datetime) -> datetime:
    hour = floor_hour(value)
    return hour.replace(hour=hour.hour - hour.hour % 6)


def ceil_six(value: datetime) -> datetime:
    start = floor_six(value)
    return start if start == value else start + SIX_HOURS


def epoch(value: datetime) -> int:
    return int(value.timestamp())


def _add(counts: dict, key: str, count: int) -> None:
    counts[key] = counts.get(key, 0) + count


def recompute_hour(hour_start: datetime) -> int:
    """Replace the hour's rollup rows with figures from its step rows, and its rows of finished runs with
    the runs that finished in it; returns the number of step rows written.
    Idempotent; the caller holds the watermark lock when it runs inside `advance_rollup`."""
    hour_start = floor_hour(hour_start)
    rows, durations = _step_rows(RollupBucket.HOUR, hour_start, hour_start + HOUR)
    with transaction.atomic():
        store.replace_run_hour(hour_start, hour_start + HOUR)
        return _replace(RollupBucket.HOUR, hour_start, rows, durations)


def _step_rows(bucket: str, start: datetime, end: datetime) -> tuple[dict[tuple, NodeRollup], dict]:
    """The rows of a bucket [start, end) from its step rows (not saved), and their duration histograms."""
    rows: dict[tuple, NodeRollup] = {}
    durations: dict[tuple, dict[int, int]] = {}
    for figure in store.hour_step_figures(start, end):
        key = (figure.automation_id, figure.entrypoint_id, figure.binding_id, figure.node_key, figure.node_kind)
        row = rows.get(key)
        if row is None:
            row = rows[key] = NodeRollup(
                automation_id=figure.automation_id, entrypoint_id=figure.entrypoint_id,
                binding_id=figure.binding_id, bucket=bucket, bucket_start=start,
                node_key=figure.node_key, node_kind=figure.node_kind, returns={}, exits_by_port={})
            durations[key] = {}
        if figure.tag == "o":
            setattr(row, figure.label, getattr(row, figure.label) + figure.count)
        elif figure.tag == "f":
            row.first_arrivals += figure.count
        elif figure.tag == "d":
            _add(durations[key], int(figure.label), figure.count)
        else:
            _add(getattr(row, _FIELDS_BY_TAG[figure.tag]), figure.label, figure.count)
    return rows, durations


def recompute_day(day_start: datetime) -> int:
    """Replace the day's rows (steps and finished runs) with the sum of its 24 hour rows (a return from
    within the day is not one for the day). Idempotent."""
    with transaction.atomic():
        store.replace_run_day(floor_day(day_start), floor_day(day_start) + DAY)
        return recompute_node_day(day_start)


def recompute_node_day(day_start: datetime) -> int:
    """Replace the day's step rows with the sum of its hour rows so far: after every hour closed, so today's
    row stands for [today, watermark) and a period ending now reads it instead of up to 23 hour rows."""
    return _sum_hours(RollupBucket.DAY, floor_day(day_start), DAY)


def recompute_six_hours(block_start: datetime) -> int:
    """Replace the six-hour block's step rows with the sum of its hour rows, once its last hour closed."""
    return _sum_hours(RollupBucket.SIX, floor_six(block_start), SIX_HOURS)


def _sum_hours(bucket: str, start: datetime, length: timedelta) -> int:
    """Rows of `bucket` at `start` from the hour rows of [start, start + length): the counts added, and the
    returns from before `start` only (a return from within the bucket is not one for it)."""
    start_epoch = epoch(start)
    rows: dict[tuple, NodeRollup] = {}
    durations: dict[tuple, dict[int, int]] = {}
    hours = NodeRollup.objects.filter(bucket=RollupBucket.HOUR, bucket_start__gte=start,
                                      bucket_start__lt=start + length)
    for hour in hours:
        key = (hour.automation_id, hour.entrypoint_id, hour.binding_id, hour.node_key, hour.node_kind)
        row = rows.get(key)
        if row is None:
            row = rows[key] = NodeRollup(
                automation_id=hour.automation_id, entrypoint_id=hour.entrypoint_id, binding_id=hour.binding_id,
                bucket=bucket, bucket_start=start, node_key=hour.node_key,
                node_kind=hour.node_kind, returns={}, exits_by_port={})
            durations[key] = {}
        for outcome in StepOutcome.values:
            setattr(row, outcome, getattr(row, outcome) + getattr(hour, outcome))
        row.first_arrivals += hour.first_arrivals
        for label, count in hour.returns.items():
            if int(label) < start_epoch:
                _add(row.returns, label, count)
        for label, count in hour.exits_by_port.items():
            _add(row.exits_by_port, label, count)
        for value, count in zip(hour.duration_bins, hour.duration_counts, strict=True):
            _add(durations[key], value, count)
    return _replace(bucket, start, rows, durations)


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


def part_until(watermark: datetime) -> datetime | None:
    """Step rows of [watermark, this instant) are in the `part` rows (None: none are), read with the
    watermark it was built on (a beat may have moved both since the caller read the watermark)."""
    return RollupWatermark.objects.filter(pk=1, rolled_up_until=watermark).values_list("part_until",
                                                                                       flat=True).first()


def floor_part(value: datetime) -> datetime:
    return floor_hour(value) + PART_STEP * ((value.astimezone(UTC) - floor_hour(value)) // PART_STEP)


def _advance_part(watermark: RollupWatermark, now: datetime) -> None:
    """Rebuild the `part` rows for the open hour up to its last closed five minutes (the same grace as
    an hour), when that moved. The caller holds the watermark row locked."""
    until = floor_part(now - GRACE)
    start = watermark.rolled_up_until
    if start is None or until <= start or watermark.part_until == until:
        return
    rows, durations = _step_rows(RollupBucket.PART, start, until)
    NodeRollup.objects.filter(bucket=RollupBucket.PART).delete()
    _replace(RollupBucket.PART, start, rows, durations)
    watermark.part_until = until
    watermark.save(update_fields=["part_until"])


def _first_hour(closed_until: datetime) -> datetime:
    """Where a fresh rollup starts: the day of the oldest step row or run start (a run finishes after it
    started), else today."""
    oldest = [at for at in (store.oldest_step_at(), store.oldest_run_start()) if at is not None]
    return floor_day(min([*oldest, closed_until]))


def advance_rollup(now: datetime | None = None, max_hours: int = MAX_HOURS_PER_CALL) -> int:
    """Roll up the next closed hours (at most `max_hours`), one transaction each holding the watermark row
    locked, so concurrent callers take turns and never build the same hour twice. Returns hours closed."""
    now = now or timezone.now()
    closed_until = floor_hour(now - GRACE)  # hours ending at or before this are closed
    store.ensure_watermark(now)
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
            if (hour_start + HOUR).hour % 6 == 0:
                recompute_six_hours(hour_start)
            if (hour_start + HOUR).hour == 0:
                recompute_day(hour_start)
            else:
                recompute_node_day(hour_start)
            NodeRollup.objects.filter(bucket=RollupBucket.PART).delete()  # that hour's so far: now closed
            watermark.rolled_up_until, watermark.part_until = hour_start + HOUR, None
            watermark.updated_at = timezone.now()
            watermark.save(update_fields=["rolled_up_until", "part_until", "updated_at"])
        closed += 1
    if closed < max_hours:  # caught up: the open hour so far
        with transaction.atomic():
            _advance_part(RollupWatermark.objects.select_for_update().get(pk=1), now)
    return closed


def backfill_rollup(now: datetime | None = None) -> dict:
    """Rebuild every closed hour (and day) at `now` in a few set-based statements and move the watermark
    there: for a database that has step rows but no rollup (after an upgrade, a restore, a bulk load),
    where closing hour by hour would take hours. Writes the rows `advance_rollup` would; holds the watermark
    lock, so beats wait for it and then carry on from where it stopped. Returns the rows written."""
    now = now or timezone.now()
    closed_until = floor_hour(now - GRACE)
    days_until = floor_day(closed_until)  # days that ended by then
    store.ensure_watermark(now)
    with transaction.atomic():
        watermark = RollupWatermark.objects.select_for_update().get(pk=1)
        written = store.backfill(closed_until, days_until, floor_six(closed_until))
        NodeRollup.objects.filter(bucket=RollupBucket.PART).delete()
        watermark.rolled_up_until, watermark.part_until = closed_until, None
        watermark.updated_at = timezone.now()
        watermark.save(update_fields=["rolled_up_until", "part_until", "updated_at"])
        _advance_part(watermark, now)
    return {"rolled_up_until": closed_until, **{name: written[name] for name in ("hour_rows", "day_rows", "six_rows")}}


def runs_leaving_with(contact_id: str) -> list[store.RunKey]:
    """Before a contact's runs are deleted (with the contact): where its finished runs count in the rollup.
    Holds the watermark lock until the deletion commits, so no hour closes meanwhile from rows that are
    about to go."""
    if not store.contact_run_keys(contact_id, datetime.max.replace(tzinfo=UTC)):
        return []  # nothing finished: nothing rolled up
    watermark = RollupWatermark.objects.select_for_update().filter(pk=1).first()
    if watermark is None or watermark.rolled_up_until is None:
        return []
    return store.contact_run_keys(contact_id, watermark.rolled_up_until)


def recount_runs(keys: list[store.RunKey]) -> None:
    """After the runs are gone: their hours (and closed days) counted again from what is left."""
    watermark = rolled_up_until()
    for key in keys:
        store.recount_run_key(key, HOUR, DAY, floor_day(watermark))

