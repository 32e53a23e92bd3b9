"""The pause matrix, through the controls API, the runner and the scheduler tick: global vs
per-automation, expired rows, enrollment skip, park on next visit, resume on delete, resume on
expiry, and a resume blocked by a pause that still applies."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationRun, JobKind, JobStatus, RunStatus, ScheduledJob, WaitingFor
from automations.runtime.enrollment import enroll
from automations.runtime.scheduler import tick as scheduler_tick
from contacts.models import ContactAutomationControl
from tests import factories
from tests.automations.test_scheduler_jobs import delay_flow, flow, node, run_until_it_stops, schedule_entrypoint, steps

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def pause(api, contact, automation=None, until=None, reason="manual_takeover"):
    body = {"pause_reason": reason}
    if automation is not None:
        body["automation_id"] = automation.pk
    if until is not None:
        body["paused_until"] = iso(until)
    response = api.post(f"/v1/contacts/{contact.pk}/automation-pause", body, format="json")
    assert response.status_code in (200, 201), response.json()
    return response.json()


def resume(api, contact, automation=None):
    body = {"automation_id": automation.pk} if automation is not None else {}
    response = api.post(f"/v1/contacts/{contact.pk}/automation-resume", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def parked_at_after(run):
    """Delay flows: the delay fired while paused, so the run parked before visiting `after`."""
    run.refresh_from_db()
    return (run.status, run.waiting_for, run.current_node_key) == (RunStatus.WAITING, WaitingFor.EXTERNAL_EVENT,
                                                                   "after")


def park(api, org, contact, now, *, pause_args=(), automation=None):
    """A run waiting on a 5-minute delay; pauses applied; the delay fires → the run parks."""
    automation = automation or delay_flow(org, minutes=5)
    run = run_until_it_stops(automation, contact, now)
    for scope, until in pause_args:
        pause(api, contact, automation if scope == "automation" else None, until)
    scheduler_tick(now=now + timedelta(minutes=5))
    assert parked_at_after(run)
    return automation, run


# ------------------------------------------------------------------------------------ enrollment

def trigger_now(automation, now):
    """Fire the automation's schedule entrypoint once at its planned occurrence."""
    scheduler_tick(now=now)
    job = ScheduledJob.objects.get(entrypoint__automation=automation, kind=JobKind.SCHEDULE_TRIGGER,
                                   status=JobStatus.PENDING)
    return scheduler_tick(now=job.due_at)


def test_trigger_enrollment_skips_a_globally_paused_contact(api, org, account, now):
    automation = flow(org, [node("start", "end")], [])
    schedule_entrypoint(automation, cron="*/5 * * * *")
    paused = factories.contact(org, account=account, tags=["vip"])
    free = factories.contact(org, account=account, tags=["vip"])
    pause(api, paused)

    assert trigger_now(automation, now).enrolled == 1
    assert AutomationRun.objects.get(contact=free).status == RunStatus.ACTIVE
    skipped = AutomationRun.objects.get(contact=paused)
    assert (skipped.status, skipped.exit_reason) == (RunStatus.EXITED, "contact_paused")


def test_a_per_automation_pause_only_keeps_that_automation_away(api, org, account, now):
    blocked = flow(org, [node("start", "end")], [], name="Blocked")
    allowed = flow(org, [node("start", "end")], [], name="Allowed")
    for automation in (blocked, allowed):
        schedule_entrypoint(automation, cron="*/5 * * * *")
    contact = factories.contact(org, account=account, tags=["vip"])
    pause(api, contact, blocked)

    scheduler_tick(now=now)
    due = ScheduledJob.objects.filter(kind=JobKind.SCHEDULE_TRIGGER).first().due_at
    assert scheduler_tick(now=due).enrolled == 1
    assert AutomationRun.objects.get(automation=allowed).status == RunStatus.ACTIVE
    assert AutomationRun.objects.get(automation=blocked).exit_reason == "contact_paused"


def test_an_expired_pause_row_does_not_apply(api, org, account, now):
    automation = flow(org, [node("start", "end")], [])
    schedule_entrypoint(automation, cron="*/5 * * * *")
    contact = factories.contact(org, account=account, tags=["vip"])
    control = pause(api, contact, until=now + timedelta(minutes=1))
    # The row outlived its paused_until (its expiry job has not run yet).
    ScheduledJob.objects.filter(kind=JobKind.PAUSE_EXPIRY).update(status=JobStatus.CANCELLED)
    ContactAutomationControl.objects.filter(pk=control["id"]).update(paused_until=now - timedelta(seconds=1))

    assert trigger_now(automation, now).enrolled == 1
    assert AutomationRun.objects.get(contact=contact).status == RunStatus.ACTIVE


def test_manual_enrollment_of_a_paused_contact_parks_at_the_root_and_the_expiry_runs_it(api, org, contact, now):
    automation = flow(org, [node("start", "end", reason="ran")], [])
    until = now + timedelta(minutes=30)
    pause(api, contact, until=until)
    run = enroll(automation, contact, now=now).run
    assert (run.status, run.waiting_for, run.current_node_key) == (RunStatus.WAITING, WaitingFor.EXTERNAL_EVENT,
                                                                   "start")
    assert scheduler_tick(now=until - timedelta(seconds=1)).claimed == 0
    report = scheduler_tick(now=until)
    assert report.done == 1
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "ran")
    assert not ContactAutomationControl.objects.filter(contact=contact).exists()


# ------------------------------------------------------------------------------------ park and resume

def test_an_in_flight_run_parks_when_it_next_visits_a_node(api, org, contact, now):
    _, run = park(api, org, contact, now, pause_args=[("global", None)])
    [parked_step] = steps(run, "after")
    assert parked_step.outcome == "waiting"
    assert parked_step.payload["parked"] is True
    assert parked_step.payload["pause_reason"] == "manual_takeover"
    assert [s.exited_via_port_key for s in steps(run, "wait")] == [None, "next"]


def test_deleting_the_pause_resumes_the_run_exactly_where_it_parked(api, org, contact, now):
    _, run = park(api, org, contact, now, pause_args=[("global", None)])
    body = resume(api, contact)
    assert body["deleted"] is True
    assert body["resumed_run_ids"] == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "after_wait")
    assert [s.outcome for s in steps(run, "after")] == ["waiting", "success"]
    assert [s.node_key for s in steps(run)].count("wait") == 2  # the delay is not repeated


def test_a_per_automation_pause_parks_only_its_automation(api, org, contact, now):
    paused_flow = delay_flow(org, name="Paused")
    other_flow = delay_flow(org, name="Other")
    paused_run = run_until_it_stops(paused_flow, contact, now)
    other_run = run_until_it_stops(other_flow, contact, now)
    pause(api, contact, paused_flow)
    scheduler_tick(now=now + timedelta(minutes=10))
    assert parked_at_after(paused_run)
    other_run.refresh_from_db()
    assert other_run.status == RunStatus.COMPLETED

    assert resume(api, contact, paused_flow)["resumed_run_ids"] == [paused_run.pk]
    paused_run.refresh_from_db()
    assert paused_run.status == RunStatus.COMPLETED


def test_resume_is_blocked_while_another_pause_still_applies(api, org, contact, now):
    automation, run = park(api, org, contact, now, pause_args=[("global", None), ("automation", None)])
    assert resume(api, contact)["resumed_run_ids"] == []  # the per-automation row still holds it
    assert parked_at_after(run)
    assert resume(api, contact, automation)["resumed_run_ids"] == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_the_pause_expiry_job_resumes_the_parked_run(api, org, contact, now):
    until = now + timedelta(minutes=10)
    _, run = park(api, org, contact, now, pause_args=[("global", until)])
    assert run.waiting_until == until
    job = ScheduledJob.objects.get(kind=JobKind.PAUSE_EXPIRY)
    assert job.due_at == until

    report = scheduler_tick(now=until)
    assert (report.claimed, report.done) == (1, 1)
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "after_wait")
    assert not ContactAutomationControl.objects.exists()
    job.refresh_from_db()
    assert job.status == JobStatus.DONE


def test_an_expiry_does_not_resume_a_run_another_pause_still_holds(api, org, contact, now):
    until = now + timedelta(minutes=10)
    automation, run = park(api, org, contact, now, pause_args=[("global", until), ("automation", None)])
    scheduler_tick(now=until)
    assert parked_at_after(run)
    assert list(ContactAutomationControl.objects.values_list("automation_id", flat=True)) == [automation.pk]
    assert resume(api, contact, automation)["resumed_run_ids"] == [run.pk]


def test_extending_a_pause_moves_its_expiry(api, org, contact, now):
    first_until = now + timedelta(minutes=10)
    _, run = park(api, org, contact, now, pause_args=[("global", first_until)])
    later = now + timedelta(minutes=20)
    pause(api, contact, until=later)
    assert scheduler_tick(now=first_until).claimed == 0  # the old job was cancelled
    assert parked_at_after(run)
    scheduler_tick(now=later)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
