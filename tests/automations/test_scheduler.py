"""The scheduler tick's machinery: claiming, batching, retries, partitions, schedule planning, commands, admin.

Time is always passed in (`tick(now=…)`). Job kinds that resume runs through the runner live in
test_scheduler_jobs.py; the pause matrix in test_scheduler_pauses.py."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from automations.models import (
    Automation,
    AutomationRun,
    Entrypoint,
    JobKind,
    JobStatus,
    RunStatus,
    ScheduledJob,
    WaitingFor,
)
from automations.partitions import existing_partitions, partition_name
from automations.runtime import audience, scheduler
from automations.runtime.scheduler import MAX_ATTEMPTS, tick
from contacts.models import ContactAutomationControl
from tests import factories
from tests.helpers import race

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------------ builders

def automation(org, *, graph=None, status="active", channel="instagram", name="Flow"):
    return Automation.objects.create(organization=org, name=name, channel=channel, status=status,
                                     graph=graph or {"nodes": [], "edges": [], "root_node_key": None})


def schedule_entrypoint(flow, *, cron="0 9 * * *", tz="UTC", tag="vip", status="active", **overrides):
    filters = {"all": [{"field": "contact.tags", "op": "contains", "value": tag}]} if tag else {}
    return Entrypoint.objects.create(organization_id=flow.organization_id, automation=flow, channel=flow.channel,
                                     kind="schedule", status=status, config={"cron": cron, "timezone": tz},
                                     filters=filters, **overrides)


def job(org, kind, due_at, **fields):
    return ScheduledJob.objects.create(organization=org, kind=kind, due_at=due_at, **fields)


def noop_job(org, due_at, **fields):
    """A pause_expiry for a pause that no longer exists and parked nothing: processing it is a no-op."""
    return job(org, JobKind.PAUSE_EXPIRY, due_at, payload={"control_id": "actl_gone", "contact_id": "ct_none",
                                                           "automation_id": None}, **fields)


def reload(row):
    row.refresh_from_db()
    return row


# ------------------------------------------------------------------------------------ claiming

def test_tick_claims_due_jobs_oldest_first_up_to_the_batch(org):
    oldest = noop_job(org, T0 - timedelta(minutes=3))
    middle = noop_job(org, T0 - timedelta(minutes=2))
    newest = noop_job(org, T0 - timedelta(minutes=1))
    future = noop_job(org, T0 + timedelta(seconds=1))

    report = tick(now=T0, batch=2)

    assert report.claimed == 2 and report.noop == 2
    for row in (oldest, middle):
        reload(row)
        assert row.status == JobStatus.DONE
        assert row.attempts == 1
    assert reload(oldest).due_at == T0 - timedelta(minutes=3)  # the lease is undone: due_at is the real due time
    assert reload(newest).status == JobStatus.PENDING and newest.attempts == 0
    assert reload(future).status == JobStatus.PENDING

    report = tick(now=T0, batch=2)
    assert report.claimed == 1
    assert reload(newest).status == JobStatus.DONE
    assert reload(future).status == JobStatus.PENDING


def test_batch_defaults_to_the_setting(org, settings):
    settings.RELAY_SCHEDULER_BATCH = 3
    for minute in range(5):
        noop_job(org, T0 - timedelta(minutes=minute))
    assert tick(now=T0).claimed == 3


def test_done_failed_and_cancelled_jobs_are_never_claimed(org):
    for status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED):
        noop_job(org, T0 - timedelta(minutes=1), status=status)
    assert tick(now=T0).claimed == 0


def test_a_job_cancelled_after_the_claim_is_skipped(org):
    row = noop_job(org, T0 - timedelta(minutes=1))
    [claim] = scheduler.claim_due_jobs(T0, 10)
    ScheduledJob.objects.filter(pk=row.pk).update(status=JobStatus.CANCELLED)  # e.g. a reply resumed the run
    report = scheduler.TickReport(now=T0)
    assert scheduler.process_claim(claim, T0, report) == "skipped"
    assert reload(row).status == JobStatus.CANCELLED


def test_a_claimed_job_is_leased_and_not_due_for_anyone_else(org):
    row = noop_job(org, T0 - timedelta(minutes=1))
    [claim] = scheduler.claim_due_jobs(T0, 10)
    assert claim.attempts == 1
    assert reload(row).due_at == T0 + scheduler.CLAIM_LEASE
    assert scheduler.claim_due_jobs(T0 + timedelta(minutes=1), 10) == []
    # A tick that died leaves the job pending; when the lease ends it is claimed again (attempt 2).
    [again] = scheduler.claim_due_jobs(T0 + scheduler.CLAIM_LEASE, 10)
    assert again.id == row.pk and again.attempts == 2
    # The first holder lost its claim: it can no longer process or finish the job.
    assert scheduler.process_claim(claim, T0, scheduler.TickReport(now=T0)) == "skipped"


def test_a_job_whose_run_moved_on_is_a_noop_marked_done(org, contact):
    flow = automation(org)
    finished = AutomationRun.objects.create(organization=org, automation=flow, contact=contact,
                                            status=RunStatus.COMPLETED, current_node_key="wait")
    other_flow = automation(org, name="Other")
    waiting_elsewhere = AutomationRun.objects.create(
        organization=org, automation=other_flow, contact=contact, status=RunStatus.WAITING,
        waiting_for=WaitingFor.INPUT, current_node_key="ask")
    jobs = [
        job(org, JobKind.RESUME_DELAY, T0, run=finished, payload={"node_key": "wait"}),
        # waiting, but for an input — not the delay this job was scheduled for
        job(org, JobKind.RESUME_DELAY, T0, run=waiting_elsewhere, payload={"node_key": "ask"}),
        # waiting for input, but at another node than the one the timeout belongs to
        job(org, JobKind.INPUT_TIMEOUT, T0, run=waiting_elsewhere, payload={"node_key": "older_ask"}),
        job(org, JobKind.WAIT_EVENT_TIMEOUT, T0, run=waiting_elsewhere),
        job(org, JobKind.NO_RESPONSE_TIMEOUT, T0, run=finished),
    ]
    report = tick(now=T0)
    assert report.noop == len(jobs) and report.done == 0
    assert {reload(row).status for row in jobs} == {JobStatus.DONE}
    assert reload(waiting_elsewhere).status == RunStatus.WAITING
    assert waiting_elsewhere.current_node_key == "ask"


# ------------------------------------------------------------------------------------ retries

def test_failures_retry_with_exponential_backoff_then_fail_with_last_error(org):
    flow = automation(org)
    entrypoint = schedule_entrypoint(flow, tz="Mars/Olympus")  # processing raises: unknown timezone
    row = job(org, JobKind.SCHEDULE_TRIGGER, T0, entrypoint=entrypoint,
              payload={"cron": "0 9 * * *", "timezone": "Mars/Olympus"})
    now = T0
    for attempt in range(1, MAX_ATTEMPTS):
        report = tick(now=now)
        assert report.retried == 1, report
        reload(row)
        assert row.status == JobStatus.PENDING
        assert row.attempts == attempt
        assert row.due_at == now + timedelta(seconds=30 * 2 ** (attempt - 1))
        assert f"attempt {attempt}: ValueError: unknown timezone 'Mars/Olympus'" in row.last_error
        assert tick(now=row.due_at - timedelta(seconds=1)).claimed == 0  # not before the backoff ends
        now = row.due_at
    report = tick(now=now)
    assert report.failed == 1
    reload(row)
    assert row.status == JobStatus.FAILED
    assert row.attempts == MAX_ATTEMPTS
    assert row.due_at == now  # when the last attempt was due, not the lease
    assert "attempt 5: ValueError" in row.last_error and "Traceback" in row.last_error
    assert tick(now=now + timedelta(days=1)).claimed == 0


def test_an_unknown_job_kind_fails_like_any_other_error(org):
    row = job(org, "bogus", T0)
    tick(now=T0)
    assert "unknown job kind 'bogus'" in reload(row).last_error


# ------------------------------------------------------------------------------------ concurrency

@pytest.mark.django_db(transaction=True)
def test_two_concurrent_ticks_never_process_a_job_twice():
    org = factories.organization()
    rows = [noop_job(org, T0 - timedelta(seconds=i)) for i in range(60)]
    batches = race(2, lambda _: [tick(now=T0, batch=25) for _ in range(3)])  # each of the two ticks three times
    reports = batches[0] + batches[1]
    assert sum(report.claimed for report in reports) == len(rows)
    assert sum(report.noop for report in reports) == len(rows)
    assert set(ScheduledJob.objects.values_list("status", "attempts")) == {(JobStatus.DONE, 1)}


# ------------------------------------------------------------------------------------ pause expiry without runs

def test_pause_expiry_deletes_the_expired_row_and_leaves_an_extended_one(api, org, contact):
    until = timezone.now() + timedelta(hours=1)
    response = api.post(f"/v1/contacts/{contact.pk}/automation-pause",
                        {"pause_reason": "x", "paused_until": until.isoformat()}, format="json")
    control_id = response.json()["id"]
    row = ScheduledJob.objects.get(kind=JobKind.PAUSE_EXPIRY)

    # Moved later directly in the table (as if the old job were left over): not expired at the old time.
    ContactAutomationControl.objects.filter(pk=control_id).update(paused_until=until + timedelta(hours=1))
    assert tick(now=until).noop == 1
    assert ContactAutomationControl.objects.filter(pk=control_id).exists()
    assert reload(row).status == JobStatus.DONE

    expired = job(org, JobKind.PAUSE_EXPIRY, until + timedelta(hours=1), payload=row.payload)
    assert tick(now=until + timedelta(hours=1)).done == 1
    assert reload(expired).status == JobStatus.DONE
    assert not ContactAutomationControl.objects.filter(pk=control_id).exists()


# ------------------------------------------------------------------------------------ partitions

def test_each_tick_keeps_step_run_partitions_ahead():
    far = datetime(2031, 7, 1, tzinfo=UTC)
    assert partition_name(far.date()) not in existing_partitions()
    report = tick(now=far)
    assert partition_name(datetime(2031, 10, 1).date()) in report.partitions_created
    assert partition_name(far.date()) in existing_partitions()
    assert tick(now=far).partitions_created == []


# ------------------------------------------------------------------------------------ schedule planning

def test_an_active_schedule_entrypoint_gets_exactly_one_pending_trigger_job(org):
    flow = automation(org)
    entrypoint = schedule_entrypoint(flow, cron="30 9 * * *", tz="Europe/Paris")
    report = tick(now=T0)
    assert report.schedules_planned == 1
    row = ScheduledJob.objects.get(kind=JobKind.SCHEDULE_TRIGGER)
    assert row.entrypoint_id == entrypoint.pk
    assert row.due_at == datetime(2026, 4, 21, 7, 30, tzinfo=UTC)  # 09:30 CEST
    assert row.payload["cron"] == "30 9 * * *" and row.payload["timezone"] == "Europe/Paris"
    assert tick(now=T0).schedules_planned == 0
    assert ScheduledJob.objects.filter(kind=JobKind.SCHEDULE_TRIGGER).count() == 1

    entrypoint.config = {"cron": "*/10 * * * *", "timezone": "UTC"}  # edited: re-planned
    entrypoint.save()
    tick(now=T0 + timedelta(minutes=1))
    assert reload(row).status == JobStatus.CANCELLED
    replanned = ScheduledJob.objects.get(kind=JobKind.SCHEDULE_TRIGGER, status=JobStatus.PENDING)
    assert replanned.due_at == T0 + timedelta(minutes=10)


def test_inactive_or_invalid_schedules_are_not_planned(org):
    schedule_entrypoint(automation(org, status="paused"))
    schedule_entrypoint(automation(org), status="paused")
    schedule_entrypoint(automation(org), cron="every day")
    Entrypoint.objects.create(organization=org, automation=automation(org), channel="instagram",
                              kind="dm_received")
    assert tick(now=T0).schedules_planned == 0
    assert not ScheduledJob.objects.exists()


def test_a_trigger_for_a_paused_entrypoint_is_a_noop_without_a_next_occurrence(org):
    flow = automation(org)
    entrypoint = schedule_entrypoint(flow)
    tick(now=T0)
    row = ScheduledJob.objects.get(kind=JobKind.SCHEDULE_TRIGGER)
    Entrypoint.objects.filter(pk=entrypoint.pk).update(status="paused")
    report = tick(now=row.due_at)
    assert report.noop == 1
    assert reload(row).status == JobStatus.DONE
    assert not ScheduledJob.objects.filter(status=JobStatus.PENDING).exists()

    Entrypoint.objects.filter(pk=entrypoint.pk).update(status="active")  # re-activated: planned again
    assert tick(now=row.due_at + timedelta(hours=1)).schedules_planned == 1


def test_audience_tags_are_the_tags_the_filters_require():
    assert audience.audience_tags({"all": [{"field": "contact.tags", "op": "contains", "value": "vip"},
                                            {"all": [{"field": "tags", "op": "eq", "value": "fr"}]},
                                            {"field": "contact.email", "op": "exists"}]}) == ["vip", "fr"]
    assert audience.audience_tags({"all": [{"field": "tags", "op": "in", "value": ["vip", "gold"]}]}) == [
        ["vip", "gold"]]
    assert audience.audience_tags({"any": [{"field": "tags", "op": "contains", "value": "vip"}]}) == []
    assert audience.audience_tags({}) == []


# ------------------------------------------------------------------------------------ commands

def test_scheduler_tick_command_runs_one_tick_and_prints_the_report(org):
    row = noop_job(org, timezone.now() - timedelta(minutes=1))
    out = io.StringIO()
    call_command("scheduler_tick", stdout=out)
    assert "claimed 1" in out.getvalue() and "noop 1" in out.getvalue()
    assert reload(row).status == JobStatus.DONE
    out = io.StringIO()
    call_command("scheduler_tick", "--json", stdout=out)
    assert '"claimed": 0' in out.getvalue()


def test_setup_schedules_creates_the_periodic_task_idempotently(settings):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    settings.RELAY_SCHEDULER_INTERVAL_SECONDS = 15
    out = io.StringIO()
    call_command("setup_schedules", stdout=out)
    call_command("setup_schedules", stdout=out)
    task = PeriodicTask.objects.get(name="relay: scheduler tick")
    assert task.task == "automations.tasks.scheduler_tick"
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (15, IntervalSchedule.SECONDS)
    assert "unchanged" in out.getvalue().splitlines()[-1]

    call_command("setup_schedules", "--interval", "5", stdout=io.StringIO())
    task = PeriodicTask.objects.get(name="relay: scheduler tick")
    assert task.interval.every == 5
    # the insights rollup's own beat entry, also once
    rollup = PeriodicTask.objects.get(task="automations.tasks.advance_insights_rollup")
    assert rollup.enabled and PeriodicTask.objects.count() == 2


def test_the_tick_task_is_registered_under_the_beat_name():
    from relay.celery import app

    app.loader.import_default_modules()
    assert "automations.tasks.scheduler_tick" in app.tasks


# ------------------------------------------------------------------------------------ admin

def test_scheduled_job_admin_filters_overdue_and_failed(admin_client, org):
    overdue = noop_job(org, timezone.now() - timedelta(hours=1))
    failed = noop_job(org, timezone.now() - timedelta(hours=1), status=JobStatus.FAILED, last_error="boom")
    later = noop_job(org, timezone.now() + timedelta(hours=1))
    page = admin_client.get("/admin/automations/scheduledjob/?health=overdue")
    assert page.status_code == 200
    body = page.content.decode()
    assert overdue.pk in body and failed.pk not in body and later.pk not in body
    body = admin_client.get("/admin/automations/scheduledjob/?health=failed").content.decode()
    assert failed.pk in body and overdue.pk not in body
    assert admin_client.get("/admin/automations/scheduledjob/?status=pending&kind=pause_expiry").status_code == 200
    assert admin_client.get(factories.admin_url(failed)).status_code == 200

    admin_client.post("/admin/automations/scheduledjob/",
                      {"action": "retry_now", "_selected_action": [failed.pk, later.pk]})
    assert reload(failed).status == JobStatus.PENDING and failed.attempts == 0
    assert reload(later).due_at > timezone.now()  # pending jobs are left to the tick


def test_stuck_run_filter_finds_overdue_waits_and_stale_active_runs(org, contact):
    from django.contrib import admin as django_admin
    from django.test import RequestFactory

    from automations.admin_jobs import StuckRunFilter

    now = timezone.now()
    flows = [automation(org, name=f"F{i}") for i in range(4)]
    overdue = AutomationRun.objects.create(organization=org, automation=flows[0], contact=contact,
                                           status=RunStatus.WAITING, waiting_until=now - timedelta(minutes=1))
    fine = AutomationRun.objects.create(organization=org, automation=flows[1], contact=contact,
                                        status=RunStatus.WAITING, waiting_until=now + timedelta(minutes=1))
    stale = AutomationRun.objects.create(organization=org, automation=flows[2], contact=contact,
                                         status=RunStatus.ACTIVE, updated_at=now - timedelta(minutes=6))
    busy = AutomationRun.objects.create(organization=org, automation=flows[3], contact=contact,
                                        status=RunStatus.ACTIVE, updated_at=now - timedelta(minutes=1))
    model_admin = django_admin.ModelAdmin(AutomationRun, django_admin.site)
    request = RequestFactory().get("/")

    def pick(value):
        stuck = StuckRunFilter(request, {"stuck": [value]}, AutomationRun, model_admin)
        return set(stuck.queryset(request, AutomationRun.objects.all()).values_list("pk", flat=True))

    assert pick("waiting_overdue") == {overdue.pk}
    assert pick("active_stale") == {stale.pk}
    assert {fine.pk, busy.pk} <= set(AutomationRun.objects.values_list("pk", flat=True))


def test_the_runs_admin_offers_the_stuck_filter(admin_client, org, contact):
    stale = AutomationRun.objects.create(organization=org, automation=automation(org), contact=contact,
                                         status=RunStatus.ACTIVE, updated_at=timezone.now() - timedelta(minutes=6))
    page = admin_client.get("/admin/automations/automationrun/?stuck=active_stale")
    assert page.status_code == 200
    assert stale.pk in page.content.decode()


def test_the_job_list_links_a_run_whose_id_the_admin_would_unquote(admin_client, org, contact):
    """Ids are random: `arun_22…` reads back as `arun"…` unless quoted the admin's way."""
    run = AutomationRun.objects.create(pk="arun_22" + "a" * 18, organization=org, automation=automation(org),
                                       contact=contact, status=RunStatus.WAITING, waiting_for=WaitingFor.DELAY,
                                       current_node_key="wait")
    job(org, JobKind.RESUME_DELAY, timezone.now(), run=run, payload={"node_key": "wait"})
    listing = admin_client.get("/admin/automations/scheduledjob/").content.decode()
    href = factories.admin_url(run)
    assert f'href="{href}"' in listing and "_5F22" in href
    assert admin_client.get(href).status_code == 200
    assert admin_client.get(f"/admin/automations/automationrun/{run.pk}/change/").status_code == 302  # raw: not found
