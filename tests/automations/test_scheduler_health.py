"""Scheduler health: the due backlog by kind, the oldest due job's age, and the last tick as recorded by
the tick itself (time, duration, claimed, due → claimed lag, count); the admin page shows them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.insights.health import scheduler_health
from automations.models import JobKind, SchedulerTick
from automations.runtime.scheduler import tick
from tests.automations.test_scheduler import job, noop_job

pytestmark = pytest.mark.django_db


def test_backlog_counts_due_unclaimed_jobs_by_kind_and_the_oldest_age(org):
    now = timezone.now()
    noop_job(org, now - timedelta(minutes=10))
    noop_job(org, now - timedelta(minutes=1))
    job(org, JobKind.RESUME_DELAY, now - timedelta(minutes=3))
    job(org, JobKind.RESUME_DELAY, now + timedelta(minutes=3))  # not due yet
    job(org, JobKind.INPUT_TIMEOUT, now - timedelta(hours=1), status="done")  # finished
    health = scheduler_health(now)
    assert health["backlog_by_kind"] == {**dict.fromkeys(JobKind.values, 0), "pause_expiry": 2, "resume_delay": 1}
    assert health["backlog_total"] == 3
    assert health["oldest_due_age_seconds"] == pytest.approx(600, abs=1)
    assert health["last_tick_at"] is None and health["tick_overdue"] and health["ticks_total"] == 0


def test_each_tick_records_its_time_duration_claims_and_lag(org):
    now = timezone.now()
    noop_job(org, now - timedelta(seconds=40))
    noop_job(org, now - timedelta(seconds=5))
    report = tick(now)
    assert report.claimed == 2 and report.max_lag_ms == 40_000
    row = SchedulerTick.objects.get()
    assert (row.last_tick_at, row.last_claimed, row.last_max_lag_ms, row.ticks_total) == (now, 2, 40_000, 1)
    assert row.last_duration_ms == report.duration_ms >= 0
    later = now + timedelta(seconds=15)
    tick(later)
    row.refresh_from_db()
    assert (row.last_tick_at, row.last_claimed, row.last_max_lag_ms, row.ticks_total) == (later, 0, 0, 2)
    health = scheduler_health(later + timedelta(seconds=1))
    assert health["backlog_total"] == 0 and not health["tick_overdue"]
    assert health["last_tick_claimed"] == 0 and health["ticks_total"] == 2
    assert scheduler_health(later + timedelta(minutes=5))["tick_overdue"]


def test_admin_page_shows_the_health(admin_client, org):
    now = timezone.now()
    noop_job(org, now - timedelta(minutes=2))
    tick(now - timedelta(minutes=1))  # claims it (lease): nothing due afterwards
    noop_job(org, now - timedelta(seconds=30))
    job(org, JobKind.RESUME_DELAY, now - timedelta(seconds=20))
    page = admin_client.get("/admin/automations/schedulertick/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-kind="pause_expiry">1<' in html and 'data-kind="resume_delay">1<' in html
    assert '<td id="backlog-total">2</td>' in html and '<td id="last-claimed">1</td>' in html
    assert '<td id="last-lag">60000 ms</td>' in html and '<td id="ticks-total">1</td>' in html
    assert "overdue: is celery-beat running?" in html  # the last tick was a minute ago
    assert "Scheduler health" in admin_client.get("/admin/").content.decode()
