"""Schedule entrypoints' cron: the supported subset, its validation and its next occurrence.

The subset (entrypoint config `{cron, timezone}`): daily `M H * * *`, hourly `M * * * *`, every N minutes
`*/N * * * *` (N in 1..59; minutes 0, N, 2N… of each hour), evaluated in `timezone` (IANA name, default
UTC). A daily time that falls into a DST gap is skipped that day; one in a DST overlap fires once (the
first). croniter does the calendar arithmetic; this module keeps the subset and those two rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_CRON_FIELD = re.compile(r"^\d{1,2}$")
_EVERY = re.compile(r"^\*/(\d{1,2})$")
_MAX_SKIPPED = 4  # occurrences croniter may offer that the rules above skip before a real one


@dataclass(frozen=True)
class CronSpec:
    """The supported cron subset: minutes (a set) and an optional hour; other fields must be `*`."""

    minutes: frozenset[int]
    hour: int | None

    def matches(self, local: datetime) -> bool:
        return local.minute in self.minutes and (self.hour is None or local.hour == self.hour)


def parse_cron(expression: str) -> CronSpec:
    """Parse `M H * * *`, `M * * * *` or `*/N * * * *`; raise ValueError for anything else."""
    parts = str(expression or "").split()
    if len(parts) != 5 or parts[2:] != ["*", "*", "*"]:
        raise ValueError(f"unsupported cron {expression!r}: use 'M H * * *', 'M * * * *' or '*/N * * * *'")
    minute, hour = parts[0], parts[1]
    every = _EVERY.match(minute)
    if every and hour == "*":
        step = int(every.group(1))
        if not 1 <= step <= 59:
            raise ValueError(f"unsupported cron {expression!r}: */N needs N between 1 and 59")
        return CronSpec(minutes=frozenset(range(0, 60, step)), hour=None)
    if not _CRON_FIELD.match(minute) or int(minute) > 59:
        raise ValueError(f"unsupported cron {expression!r}: minute must be 0-59")
    if hour == "*":
        return CronSpec(minutes=frozenset({int(minute)}), hour=None)
    if not _CRON_FIELD.match(hour) or int(hour) > 23:
        raise ValueError(f"unsupported cron {expression!r}: hour must be 0-23 or *")
    return CronSpec(minutes=frozenset({int(minute)}), hour=int(hour))


def parse_timezone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}")


def validate_schedule_config(config: dict) -> list[str]:
    """Human messages for an invalid schedule entrypoint config ([] if valid) — for the entrypoint API."""
    errors = []
    try:
        parse_cron((config or {}).get("cron"))
    except ValueError as exc:
        errors.append(str(exc))
    try:
        parse_timezone((config or {}).get("timezone"))
    except ValueError as exc:
        errors.append(str(exc))
    return errors


def next_occurrence(cron: str, tz_name: str | None, after: datetime) -> datetime:
    """The first occurrence strictly after `after` (aware), as an aware UTC datetime.

    croniter walks the wall clock of `timezone`; two rules keep daily times to their wall time: at a DST
    gap croniter offers the first minute after it (skipped here: the time does not exist that day), and at
    a DST overlap it offers the repeated hour a second time (`fold` 1: skipped, a daily time fires once)."""
    spec = parse_cron(cron)
    times = croniter(cron, after.astimezone(parse_timezone(tz_name)))
    for _ in range(_MAX_SKIPPED + 1):
        local = times.get_next(datetime)
        if spec.matches(local) and not (spec.hour is not None and local.fold):
            return local.astimezone(UTC)
    raise AssertionError(f"cron {cron!r} found no occurrence after {after.isoformat()}")
