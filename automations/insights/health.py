"""Scheduler health for staff: the backlog of due jobs nobody has claimed yet (by kind), how long the
oldest has been due, and the last tick as the tick recorded it (time, duration, jobs claimed, the lag
due → claimed, ticks so far). A claimed job's due_at is its lease end, so jobs being worked on are not
backlog."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from automations.models import JobKind, JobStatus, ScheduledJob, SchedulerTick


def scheduler_health(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    due = ScheduledJob.objects.filter(status=JobStatus.PENDING, due_at__lte=now)
    backlog = dict.fromkeys(JobKind.values, 0)
    oldest = None
    for row in due.values("kind").annotate(count=Count("id"), oldest=Min("due_at")).order_by():
        backlog[row["kind"]] = row["count"]
        oldest = row["oldest"] if oldest is None else min(oldest, row["oldest"])
    last = SchedulerTick.objects.filter(pk=1).first()
    interval = timedelta(seconds=settings.RELAY_SCHEDULER_INTERVAL_SECONDS)
    last_at = last.last_tick_at if last else None
    return {
        "now": now,
        "backlog_by_kind": backlog,
        "backlog_total": sum(backlog.values()),
        "oldest_due_at": oldest,
        "oldest_due_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0,
        "last_tick_at": last_at,
        "last_tick_age_seconds": round((now - last_at).total_seconds(), 1) if last_at else None,
        "last_tick_duration_ms": last.last_duration_ms if last else None,
        "last_tick_claimed": last.last_claimed if last else None,
        "last_tick_max_lag_ms": last.last_max_lag_ms if last else None,
        "ticks_total": last.ticks_total if last else 0,
        "interval_seconds": int(interval.total_seconds()),
        # Beat fires every interval; two missed ticks mean beat (or its worker) is not running.
        "tick_overdue": last_at is None or now - last_at > 2 * interval,
    }
