"""The supported cron subset of schedule entrypoints: daily, hourly, every N minutes, in a timezone."""

from datetime import UTC, datetime

import pytest

from automations.runtime.cron import next_occurrence, parse_cron, validate_schedule_config


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_daily_fires_at_the_local_time_in_the_timezone():
    # 09:30 in New York (EDT, UTC-4) on 2026-04-20 is 13:30 UTC.
    assert next_occurrence("30 9 * * *", "America/New_York", utc(2026, 4, 20, 12, 0)) == utc(2026, 4, 20, 13, 30)
    # Already past today → tomorrow.
    assert next_occurrence("30 9 * * *", "America/New_York", utc(2026, 4, 20, 13, 30)) == utc(2026, 4, 21, 13, 30)
    assert next_occurrence("0 0 * * *", None, utc(2026, 12, 31, 23, 59, 59)) == utc(2027, 1, 1, 0, 0)


def test_daily_follows_daylight_saving_changes():
    # Winter (EST, UTC-5): 09:30 local is 14:30 UTC.
    assert next_occurrence("30 9 * * *", "America/New_York", utc(2026, 1, 10)) == utc(2026, 1, 10, 14, 30)
    # 02:30 does not exist on 2026-03-08 in New York (spring forward): skipped that day.
    assert next_occurrence("30 2 * * *", "America/New_York", utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 9, 6, 30)


def test_hourly_fires_at_minute_m_of_every_hour():
    assert next_occurrence("15 * * * *", "UTC", utc(2026, 4, 20, 10, 15)) == utc(2026, 4, 20, 11, 15)
    assert next_occurrence("15 * * * *", "UTC", utc(2026, 4, 20, 10, 14, 59)) == utc(2026, 4, 20, 10, 15)
    # Kolkata is UTC+5:30: local minute 15 is UTC minute 45.
    assert next_occurrence("15 * * * *", "Asia/Kolkata", utc(2026, 4, 20, 10, 0)) == utc(2026, 4, 20, 10, 45)


def test_every_n_minutes_uses_multiples_of_n_within_the_hour():
    assert next_occurrence("*/15 * * * *", "UTC", utc(2026, 4, 20, 10, 7)) == utc(2026, 4, 20, 10, 15)
    assert next_occurrence("*/15 * * * *", "UTC", utc(2026, 4, 20, 10, 45)) == utc(2026, 4, 20, 11, 0)
    assert next_occurrence("*/7 * * * *", "UTC", utc(2026, 4, 20, 10, 56)) == utc(2026, 4, 20, 11, 0)
    assert next_occurrence("*/1 * * * *", "UTC", utc(2026, 4, 20, 10, 0, 30)) == utc(2026, 4, 20, 10, 1)


@pytest.mark.parametrize("expression", [
    "", "* * * * *", "0 9 * * 1", "0 9 1 * *", "60 * * * *", "0 24 * * *", "*/0 * * * *", "*/60 * * * *",
    "*/5 9 * * *", "0,30 * * * *", "0 9 * *",
])
def test_unsupported_cron_is_refused(expression):
    with pytest.raises(ValueError):
        parse_cron(expression)


def test_validate_schedule_config_reports_cron_and_timezone_problems():
    assert validate_schedule_config({"cron": "0 9 * * *", "timezone": "Europe/Paris"}) == []
    assert validate_schedule_config({"cron": "0 9 * * *"}) == []  # timezone defaults to UTC
    errors = validate_schedule_config({"cron": "every day", "timezone": "Mars/Olympus"})
    assert len(errors) == 2
    assert "cron" in errors[0] and "timezone" in errors[1]
