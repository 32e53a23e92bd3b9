"""Every scheduled job kind, processed by `tick(now=…)` through the real runner; schedule triggers;
two concurrent ticks over real runs; the reconcile path for runs a dead worker left `active`."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import (
    Automation,
    AutomationRun,
    Entrypoint,
    JobKind,
    JobStatus,
    RunStatus,
    ScheduledJob,
    StepRun,
    WaitingFor,
)
from automations.runtime import jobs, scheduler
from automations.runtime.enrollment import enroll
from automations.runtime.resume import resume_waiting
from automations.runtime.runner import advance
from automations.runtime.runs import stop_run, write_run
from automations.runtime.scheduler import tick
from tests import factories
from tests.helpers import race

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------------------------ builders

def node(key, kind, **config):
    return {"key": key, "kind": kind, "config": config}


def edge(from_node, port, to_node):
    return {"from_node": from_node, "from_port": port, "to_node": to_node, "to_port": "in"}


def flow(org, nodes, edges, *, root="start", name="Flow", status="active", channel="instagram"):
    return Automation.objects.create(organization=org, name=name, channel=channel, status=status,
                                     graph={"nodes": nodes, "edges": edges, "root_node_key": root})


def start_then(org, key, kind, config, port, *, name="Flow", end_reason="after_wait"):
    """start (condition, always true) → `key` (the waiting node) → through `port` → end(end_reason)."""
    return flow(org, [node("start", "condition", predicates={}), {"key": key, "kind": kind, "config": config},
                      node("after", "end", reason=end_reason)],
                [edge("start", "true", key)] + ([edge(key, port, "after")] if port else []), name=name)


def delay_flow(org, *, minutes=10, name="Delay flow"):
    return start_then(org, "wait", "delay", {"minutes": minutes}, "next", name=name)


def run_until_it_stops(automation, contact, now=None):
    """Enroll and execute like the advance_run task would; return the run as it stopped."""
    result = enroll(automation, contact, now=now)
    assert result.ok, result.blocked
    advance(result.run.pk, now=now)
    return AutomationRun.objects.get(pk=result.run.pk)


def steps(run, node_key=None):
    rows = StepRun.objects.filter(run_id=run.pk).order_by("executed_at", "id")
    return list(rows.filter(node_key=node_key) if node_key else rows)


def pending_job(run, kind):
    return ScheduledJob.objects.get(run_id=run.pk, kind=kind, status=JobStatus.PENDING)


@pytest.fixture
def now():
    return timezone.now()


# ------------------------------------------------------------------------------------ wait kinds

def test_resume_delay_resumes_through_next_when_due(org, contact, now):
    run = run_until_it_stops(delay_flow(org, minutes=10), contact, now)
    assert (run.status, run.waiting_for, run.current_node_key) == (RunStatus.WAITING, WaitingFor.DELAY, "wait")
    job = pending_job(run, JobKind.RESUME_DELAY)
    assert job.due_at == now + timedelta(minutes=10)
    assert job.payload["node_key"] == "wait"

    assert tick(now=now + timedelta(minutes=9, seconds=59)).claimed == 0
    report = tick(now=now + timedelta(minutes=10))
    assert (report.claimed, report.done) == (1, 1)

    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "after_wait")
    wait_steps = steps(run, "wait")
    assert [s.exited_via_port_key for s in wait_steps] == [None, "next"]
    assert wait_steps[-1].payload["job_kind"] == JobKind.RESUME_DELAY
    job.refresh_from_db()
    assert (job.status, job.attempts, job.due_at) == (JobStatus.DONE, 1, now + timedelta(minutes=10))


def tick_watching_closing_updates(monkeypatch, when):
    """A tick at `when`, and the closing updates it attempted (the tick's own `done` write of a job,
    which a resume job no longer needs: its run's write closes it)."""
    closing = []
    original_filter = ScheduledJob.objects.filter

    def spy_filter(*args, **kwargs):
        if kwargs.get("status__in") == [JobStatus.PENDING, JobStatus.CANCELLED]:
            closing.append(kwargs)
        return original_filter(*args, **kwargs)

    monkeypatch.setattr(ScheduledJob.objects, "filter", spy_filter)
    try:
        return tick(now=when), closing
    finally:
        monkeypatch.undo()


def test_the_resumed_job_is_marked_done_in_the_run_transaction(org, contact, now, monkeypatch):
    """The claimed job turns `done` with the run's own write: the tick sends no closing update at all
    (a spy would catch one), and the job is done with its original due time."""
    run = run_until_it_stops(delay_flow(org, minutes=10), contact, now)
    job = pending_job(run, JobKind.RESUME_DELAY)
    other = ScheduledJob.objects.create(organization=org, run_id=run.pk, kind=JobKind.INPUT_TIMEOUT,
                                        due_at=now + timedelta(days=1), payload={"node_key": "wait"})
    report, closing = tick_watching_closing_updates(monkeypatch, now + timedelta(minutes=10))
    assert (report.claimed, report.done) == (1, 1) and not closing
    job.refresh_from_db()
    other.refresh_from_db()
    assert (job.status, job.due_at, job.last_error) == (JobStatus.DONE, now + timedelta(minutes=10), "")
    assert other.status == JobStatus.CANCELLED  # the run's other wait jobs are cancelled as before


def test_a_resume_job_cancelled_after_the_claim_is_skipped_and_the_run_left_waiting(org, contact, now):
    """An admin cancels a job the tick has already claimed: the statement that reads the run sees it."""
    run = run_until_it_stops(delay_flow(org, minutes=10), contact, now)
    job = pending_job(run, JobKind.RESUME_DELAY)
    [claim] = scheduler.claim_due_jobs(now + timedelta(minutes=10), 10)
    assert (claim.kind, claim.run_id, claim.payload["node_key"]) == (JobKind.RESUME_DELAY, run.pk, "wait")
    ScheduledJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
    assert scheduler.process_claim(claim, now, scheduler.TickReport(now=now)) == "skipped"
    job.refresh_from_db()
    run.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and (run.status, run.current_node_key) == (RunStatus.WAITING, "wait")


def test_a_resume_job_claimed_again_by_another_tick_is_skipped_by_the_first(org, contact, now):
    run = run_until_it_stops(delay_flow(org, minutes=10), contact, now)
    [first] = scheduler.claim_due_jobs(now + timedelta(minutes=10), 10)
    [second] = scheduler.claim_due_jobs(first.lease, 10)  # the first holder stalled past its lease
    assert scheduler.process_claim(first, now, scheduler.TickReport(now=now)) == "skipped"
    assert scheduler.process_claim(second, now, scheduler.TickReport(now=now)) == "done"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and len(steps(run, "wait")) == 2


def test_a_resume_job_without_a_run_is_a_noop_while_held_and_skipped_once_cancelled(org, now):
    def claimed_orphan():
        ScheduledJob.objects.create(organization=org, kind=JobKind.RESUME_DELAY, due_at=now - timedelta(minutes=1),
                                    payload={"node_key": "wait"})
        [claim] = scheduler.claim_due_jobs(now, 10)
        return claim

    held = claimed_orphan()
    assert scheduler.process_claim(held, now, scheduler.TickReport(now=now)) == "noop"
    assert ScheduledJob.objects.get(pk=held.id).status == JobStatus.DONE
    cancelled = claimed_orphan()
    ScheduledJob.objects.filter(pk=cancelled.id).update(status=JobStatus.CANCELLED)
    assert scheduler.process_claim(cancelled, now, scheduler.TickReport(now=now)) == "skipped"


def test_a_resume_job_whose_run_was_deleted_after_the_claim_is_skipped(org, contact, now):
    run = run_until_it_stops(delay_flow(org, minutes=10), contact, now)
    [claim] = scheduler.claim_due_jobs(now + timedelta(minutes=10), 10)
    AutomationRun.objects.filter(pk=run.pk).delete()  # its jobs go with it (cascade)
    assert scheduler.process_claim(claim, now, scheduler.TickReport(now=now)) == "skipped"


def test_a_delay_whose_node_was_removed_exits_graph_changed_and_the_run_write_closes_the_job(org, contact, now,
                                                                                             monkeypatch):
    automation = delay_flow(org, minutes=10)
    run = run_until_it_stops(automation, contact, now)
    job = pending_job(run, JobKind.RESUME_DELAY)
    graph = automation.graph
    Automation.objects.filter(pk=automation.pk).update(graph={
        **graph, "nodes": [n for n in graph["nodes"] if n["key"] != "wait"],
        "edges": [e for e in graph["edges"] if "wait" not in (e["from_node"], e["to_node"])]})
    report, closing = tick_watching_closing_updates(monkeypatch, now + timedelta(minutes=10))
    assert (report.claimed, report.done) == (1, 1) and not closing
    run.refresh_from_db()
    job.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.EXITED, "graph_changed")
    assert (job.status, job.due_at) == (JobStatus.DONE, now + timedelta(minutes=10))


def test_input_timeout_follows_the_timeout_edge_when_wired(org, contact, now):
    automation = start_then(org, "ask", "input", {"field": "email", "input_type": "email", "timeout_min": 5},
                            "timeout", end_reason="no_answer")
    run = run_until_it_stops(automation, contact, now)
    assert (run.status, run.waiting_for) == (RunStatus.WAITING, WaitingFor.INPUT)
    assert pending_job(run, JobKind.INPUT_TIMEOUT).due_at == now + timedelta(minutes=5)

    assert tick(now=now + timedelta(minutes=5)).done == 1
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "no_answer")
    assert steps(run, "ask")[-1].exited_via_port_key == "timeout"


def test_input_timeout_without_a_timeout_edge_exits_the_run(org, contact, now):
    automation = start_then(org, "ask", "input", {"field": "email", "input_type": "email", "timeout_min": 5}, None)
    run = run_until_it_stops(automation, contact, now)
    tick(now=now + timedelta(minutes=5))
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.EXITED, "input_timeout")
    assert run.completed_at is not None and run.waiting_for is None
    automation.refresh_from_db()
    assert automation.total_exited == 1


def test_wait_event_timeout_resumes_through_timeout(org, contact, now):
    automation = start_then(org, "hold", "wait_event", {"event_kinds": ["dm_received"], "timeout_min": 30},
                            "timeout", end_reason="gave_up")
    run = run_until_it_stops(automation, contact, now)
    assert run.waiting_for == WaitingFor.INBOUND_EVENT
    assert pending_job(run, JobKind.WAIT_EVENT_TIMEOUT).due_at == now + timedelta(minutes=30)
    tick(now=now + timedelta(minutes=30))
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "gave_up")


def test_no_response_timeout_resumes_a_waiting_message_through_no_response(org, contact, now):
    config = {"blocks": [{"id": "b1", "type": "text", "text": "Still there?"}], "wait_for_reply": True,
              "no_response_timeout_min": 60}
    automation = flow(org, [node("start", "condition", predicates={}), {"key": "ask", "kind": "message",
                                                                        "config": config},
                            node("nudge", "end", reason="no_response_path")],
                      [edge("start", "true", "ask"), edge("ask", "no_response", "nudge")])
    # The state the runner leaves after sending `ask`: waiting for a reply, with its no-response job.
    run = AutomationRun.objects.create(organization=org, automation=automation, contact=contact,
                                       status=RunStatus.WAITING, waiting_for=WaitingFor.REPLY,
                                       current_node_key="ask", waiting_until=now + timedelta(minutes=60))
    jobs.schedule(run, JobKind.NO_RESPONSE_TIMEOUT, now + timedelta(minutes=60),
                  {"node_key": "ask", "port_key": "no_response"})
    assert tick(now=now + timedelta(minutes=60)).done == 1
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "no_response_path")
    assert steps(run, "ask")[-1].exited_via_port_key == "no_response"


def test_a_reply_before_the_timeout_cancels_the_job_and_the_tick_leaves_the_run_alone(org, contact, now):
    automation = flow(org, [node("start", "condition", predicates={}),
                            node("ask", "input", field="email", input_type="email", timeout_min=5),
                            node("got", "delay", hours=1), node("late", "end", reason="late")],
                      [edge("start", "true", "ask"), edge("ask", "captured", "got"), edge("ask", "timeout", "late")])
    run = run_until_it_stops(automation, contact, now)
    timeout_job = pending_job(run, JobKind.INPUT_TIMEOUT)
    assert resume_waiting(run, "captured", context_updates={"email": "a@example.com"}, now=now)  # the reply
    timeout_job.refresh_from_db()
    assert timeout_job.status == JobStatus.CANCELLED

    report = tick(now=now + timedelta(minutes=5))
    assert report.claimed == 0
    run.refresh_from_db()
    assert (run.status, run.current_node_key, run.waiting_for) == (RunStatus.WAITING, "got", WaitingFor.DELAY)

    # The same job left pending by mistake is still a no-op: the run waits elsewhere, for something else.
    ScheduledJob.objects.filter(pk=timeout_job.pk).update(status=JobStatus.PENDING)
    assert tick(now=now + timedelta(minutes=6)).noop == 1
    run.refresh_from_db()
    assert run.current_node_key == "got"


def test_a_stopped_run_has_no_pending_jobs_and_a_late_job_is_a_noop(org, contact, now):
    run = run_until_it_stops(delay_flow(org), contact, now)
    job = pending_job(run, JobKind.RESUME_DELAY)
    assert stop_run(run)
    ScheduledJob.objects.filter(pk=job.pk).update(status=JobStatus.PENDING)  # a job that escaped cancelling
    assert tick(now=now + timedelta(minutes=10)).noop == 1
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.EXITED, "admin_stopped")
    assert len(steps(run, "wait")) == 1


# ------------------------------------------------------------------------------------ schedule triggers

def schedule_entrypoint(automation, *, cron="0 9 * * *", tz="UTC", filters=None, **overrides):
    if filters is None:
        filters = {"all": [{"field": "contact.tags", "op": "contains", "value": "vip"}]}
    return Entrypoint.objects.create(organization_id=automation.organization_id, automation=automation,
                                     channel=automation.channel, kind="schedule", config={"cron": cron, "timezone": tz},
                                     filters=filters, **overrides)


def test_schedule_trigger_plans_the_next_occurrence_then_enrolls_the_filtered_audience(org, account, now,
                                                                                     monkeypatch):
    monkeypatch.setattr("automations.runtime.audience.ENROLL_BATCH", 2)  # several batches with a handful of contacts
    automation = flow(org, [node("start", "end", reason="scheduled")], [], name="Morning")
    entrypoint = schedule_entrypoint(automation, cron="*/15 * * * *", filters={"all": [
        {"field": "contact.tags", "op": "contains", "value": "vip"},
        {"field": "contact.email", "op": "exists"},
    ]})
    audience = [factories.contact(org, account=account, tags=["vip"], email=f"v{i}@example.com") for i in range(4)]
    audience.append(factories.contact(org, account=account, tags=["news", " VIP "], email="shout@example.com"))
    no_email = factories.contact(org, account=account, tags=["vip"])
    not_vip = factories.contact(org, account=account, email="n@example.com")
    unreachable = factories.contact(org, tags=["vip"], email="u@example.com")  # no identity on the channel
    other_org = factories.organization()
    factories.contact(other_org, account=factories.social_account(other_org), tags=["vip"], email="o@example.com")

    tick(now=now)
    first = ScheduledJob.objects.get(kind=JobKind.SCHEDULE_TRIGGER, status=JobStatus.PENDING)
    assert first.entrypoint_id == entrypoint.pk
    report = tick(now=first.due_at)
    assert (report.done, report.enrolled) == (1, 5)

    runs = AutomationRun.objects.filter(automation=automation)
    assert {r.contact_id for r in runs} == {c.pk for c in audience}
    assert not runs.filter(contact__in=[no_email, not_vip, unreachable]).exists()
    sample = runs.first()
    assert sample.entrypoint_id == entrypoint.pk
    assert sample.conversation is not None and sample.conversation.social_account_id == account.pk
    assert sample.context["schedule"]["occurrence"] == first.payload["occurrence"]

    first.refresh_from_db()
    assert first.status == JobStatus.DONE
    assert first.payload["cursor"] == max(c.pk for c in [*audience, no_email])
    following = ScheduledJob.objects.get(kind=JobKind.SCHEDULE_TRIGGER, status=JobStatus.PENDING)
    assert following.due_at == first.due_at + timedelta(minutes=15)


def test_a_schedule_filtered_on_any_of_several_tags_enrolls_each_match_once(org, account, now):
    automation = flow(org, [node("start", "end", reason="scheduled")], [])
    schedule_entrypoint(automation, cron="0 * * * *", filters={"all": [
        {"field": "tags", "op": "in", "value": ["gold", "silver"]}]})
    both = factories.contact(org, account=account, tags=["Gold", "silver"])
    one = factories.contact(org, account=account, tags=["silver"])
    factories.contact(org, account=account, tags=["bronze"])
    tick(now=now)
    job = ScheduledJob.objects.get(kind=JobKind.SCHEDULE_TRIGGER)
    assert tick(now=job.due_at).enrolled == 2
    assert sorted(AutomationRun.objects.values_list("contact_id", flat=True)) == sorted([both.pk, one.pk])


def test_a_retried_schedule_trigger_continues_from_its_cursor_and_plans_only_one_next_job(org, account, now):
    automation = flow(org, [node("start", "end", reason="scheduled")], [])
    entrypoint = schedule_entrypoint(automation, cron="0 * * * *")
    contacts = sorted((factories.contact(org, account=account, tags=["vip"]) for _ in range(3)), key=lambda c: c.pk)
    # An earlier attempt got as far as the first contact (and planned the next occurrence) before dying.
    job = ScheduledJob.objects.create(organization=org, kind=JobKind.SCHEDULE_TRIGGER, entrypoint=entrypoint,
                                      due_at=now, attempts=1,
                                      payload={"cron": "0 * * * *", "timezone": "UTC", "cursor": contacts[0].pk})
    ScheduledJob.objects.create(organization=org, kind=JobKind.SCHEDULE_TRIGGER, entrypoint=entrypoint,
                                due_at=now + timedelta(hours=1), payload={"cron": "0 * * * *", "timezone": "UTC"})
    report = tick(now=now)
    assert report.enrolled == 2
    assert set(AutomationRun.objects.values_list("contact_id", flat=True)) == {contacts[1].pk, contacts[2].pk}
    assert ScheduledJob.objects.filter(kind=JobKind.SCHEDULE_TRIGGER, status=JobStatus.PENDING).count() == 1
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.DONE, 2)


def test_a_schedule_without_a_tag_filter_enrolls_nobody_but_keeps_its_series(org, account, now):
    automation = flow(org, [node("start", "end")], [])
    schedule_entrypoint(automation, cron="0 * * * *", filters={})
    factories.contact(org, account=account, tags=["vip"])
    tick(now=now)
    job = ScheduledJob.objects.get(kind=JobKind.SCHEDULE_TRIGGER)
    report = tick(now=job.due_at)
    assert report.enrolled == 0 and "no tag filter" in report.errors[0]
    assert not AutomationRun.objects.exists()
    assert ScheduledJob.objects.filter(kind=JobKind.SCHEDULE_TRIGGER, status=JobStatus.PENDING).count() == 1


# ------------------------------------------------------------------------------------ concurrency

@pytest.mark.django_db(transaction=True)
def test_two_concurrent_ticks_resume_each_waiting_run_exactly_once():
    org = factories.organization()
    account = factories.social_account(org)
    automations = [delay_flow(org, minutes=1, name=f"D{i}") for i in range(30)]
    contact = factories.contact(org, account=account)
    now = timezone.now()
    runs = [run_until_it_stops(automation, contact, now) for automation in automations]
    assert {run.status for run in runs} == {RunStatus.WAITING}
    due = now + timedelta(minutes=1)
    batches = race(2, lambda _: [tick(now=due, batch=10) for _ in range(4)])  # each of the two ticks four times
    reports = batches[0] + batches[1]
    assert sum(r.claimed for r in reports) == 30
    assert sum(r.done for r in reports) == 30
    for run in runs:
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED
        assert [s.exited_via_port_key for s in steps(run, "wait")] == [None, "next"]
        assert len(steps(run, "after")) == 1
    assert set(ScheduledJob.objects.values_list("status", "attempts")) == {(JobStatus.DONE, 1)}


# ------------------------------------------------------------------------------------ reconcile

def test_reconcile_re_enqueues_a_run_a_dead_worker_left_active_without_repeating_recorded_steps(
        org, account, now, eager_celery):
    automation = flow(org, [node("start", "condition", predicates={}), node("second", "condition", predicates={}),
                            node("done", "end", reason="finished")],
                      [edge("start", "true", "second"), edge("second", "true", "done")])
    contact = factories.contact(org, account=account)
    # The worker recorded `start` (run moved to `second`, committed together) and died before the next persist.
    run = AutomationRun.objects.create(organization=org, automation=automation, contact=contact,
                                       status=RunStatus.ACTIVE, current_node_key="start")
    StepRun.objects.create(run=run, automation=automation, node_key="start", node_kind="condition",
                           exited_via_port_key="true", outcome="success")
    AutomationRun.objects.filter(pk=run.pk).update(current_node_key="second", current_port_key=None,
                                                   updated_at=now - timedelta(minutes=6))
    busy = AutomationRun.objects.create(organization=org, automation=flow(org, [node("start", "end")], [],
                                                                          name="Busy"),
                                        contact=contact, status=RunStatus.ACTIVE, current_node_key="start",
                                        updated_at=now - timedelta(minutes=4))
    slow_worker_copy = AutomationRun.objects.get(pk=run.pk)

    report = tick(now=now)

    assert report.reconciled == 1
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "finished")
    assert [s.node_key for s in steps(run)] == ["start", "second", "done"]  # `start` not visited again
    # The slow worker that still holds the old copy can no longer write the run.
    assert write_run(slow_worker_copy, status=RunStatus.FAILED) is False
    busy.refresh_from_db()
    assert busy.status == RunStatus.ACTIVE  # active for 4 minutes only: left alone
    assert tick(now=now).reconciled == 0
