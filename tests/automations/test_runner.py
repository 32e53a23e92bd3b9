"""The runner loop: step rows, exit reasons, graph-change safety, the visit cap, stale writers, batching."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationRun, JobStatus, ScheduledJob, StepRun
from automations.runtime import jobs
from automations.runtime.enrollment import enroll
from automations.runtime.resume import resume_parked, resume_waiting
from automations.runtime.runner import advance
from automations.runtime.runs import stop_run, write_run
from contacts.models import ContactAutomationControl, Message
from tests import factories
from tests.helpers import assert_statements


def text(value, **extra):
    return {"blocks": [{"type": "text", "text": value}], **extra}


@pytest.fixture
def conv(contact, account):
    return factories.conversation(contact, account)


def run_flow(org, contact, nodes, edges=(), *, root=None, **automation_fields):
    automation = factories.automation(org, factories.flow(nodes, edges, root), status="active", **automation_fields)
    result = enroll(automation, contact)
    assert result.ok, result.blocked
    advance(result.run.pk)
    return AutomationRun.objects.get(pk=result.run.pk)


def steps_of(run):
    return list(StepRun.objects.filter(run_id=run.pk).order_by("executed_at", "id"))


def test_a_path_writes_one_step_per_visit_with_ports(org, contact, conv):
    run = run_flow(org, contact, [("greet", "message", text("Hi {{contact.name}}!")), ("check", "condition", {}),
                                  ("bye", "end", {})],
                   [("greet", "next", "check"), ("check", "true", "bye")])
    assert run.status == "completed" and run.exit_reason == "completed" and run.completed_at is not None
    steps = steps_of(run)
    assert [(s.node_key, s.node_kind, s.entered_via_port_key, s.exited_via_port_key, s.outcome) for s in steps] == [
        ("greet", "message", None, "next", "success"),
        ("check", "condition", "next", "true", "success"),
        ("bye", "end", "true", None, "success"),
    ]
    assert steps[0].payload["rendered_text"] == f"Hi {contact.name}!"
    assert all(s.automation_id == run.automation_id and s.duration_ms >= 0 for s in steps)


def test_counters_count_enrolled_and_finished_runs(org, contact, conv):
    run = run_flow(org, contact, [("bye", "end", {})])
    automation = run.automation
    automation.refresh_from_db()
    assert (automation.total_enrolled, automation.total_completed, automation.total_exited,
            automation.total_failed) == (1, 1, 0, 0)
    failing = run_flow(org, factories.contact(org), [("jump", "goto", {})])
    failing.automation.refresh_from_db()
    assert failing.automation.total_failed == 1


def test_missing_edge_completes_with_the_chosen_port(org, contact, conv):
    run = run_flow(org, contact, [("greet", "message", text("hello"))])
    assert (run.status, run.exit_reason, run.current_node_key, run.current_port_key) == (
        "completed", "completed", "greet", "next")


def test_edge_to_a_missing_node_completes(org, contact, conv):
    run = run_flow(org, contact, [("greet", "message", text("hello"))], [("greet", "next", "ghost")])
    assert (run.status, run.exit_reason, run.current_node_key, run.current_port_key) == (
        "completed", "completed", "greet", "next")


def test_end_reason_becomes_exit_reason(org, contact, conv):
    run = run_flow(org, contact, [("stop", "end", {"reason": "unsubscribed"})])
    assert (run.status, run.exit_reason) == ("completed", "unsubscribed")
    assert steps_of(run)[0].payload == {"reason": "unsubscribed"}


def test_handler_exception_without_error_port_fails_with_error_json(org, contact, conv):
    run = run_flow(org, contact, [("jump", "goto", {})])  # goto with no target raises in its handler
    assert (run.status, run.exit_reason, run.current_node_key) == ("failed", "handler_failure", "jump")
    [step] = steps_of(run)
    assert step.outcome == "failed" and step.exited_via_port_key is None
    assert step.error["type"] == "ValueError" and "target_node_key" in step.error["message"]


def test_handler_exception_follows_a_wired_error_port(org, contact, conv):
    broken_http = {"method": "GET", "url": "http://example.com", "headers": ["not", "a", "dict"]}
    run = run_flow(org, contact, [("call", "http_request", broken_http), ("sorry", "end", {"reason": "recovered"})],
                   [("call", "error", "sorry")])
    assert (run.status, run.exit_reason) == ("completed", "recovered")
    first = steps_of(run)[0]
    assert (first.outcome, first.exited_via_port_key, first.error["type"]) == ("failed", "error", "AttributeError")


def test_handler_exception_with_unwired_error_port_fails(org, contact, conv):
    broken_http = {"method": "GET", "url": "http://example.com", "headers": ["x"]}
    run = run_flow(org, contact, [("call", "http_request", broken_http)])
    assert (run.status, run.exit_reason) == ("failed", "handler_failure")


@pytest.mark.parametrize("loop", ["edge", "goto"])
def test_a_cycle_without_a_pause_point_trips_the_visit_cap(org, contact, conv, loop):
    if loop == "edge":
        nodes, edges = [("spin", "condition", {})], [("spin", "true", "spin")]
    else:
        nodes, edges = [("spin", "condition", {}), ("back", "goto", {"target_node_key": "spin"})], [
            ("spin", "true", "back")]
    run = run_flow(org, contact, nodes, edges)
    assert (run.status, run.exit_reason) == ("failed", "infinite_loop_cap")
    assert len(steps_of(run)) == 200


def test_visit_cap_counts_per_iteration_not_per_run(org, contact, conv):
    # 150 visits, a wait, 150 more: two iterations, neither reaches 200.
    nodes = [(f"n{i}", "condition", {}) for i in range(150)] + [("ask", "input", {"field": "x"})] + [
        (f"m{i}", "condition", {}) for i in range(150)]
    edges = [(f"n{i}", "true", f"n{i + 1}") for i in range(149)] + [("n149", "true", "ask"), ("ask", "captured", "m0")]
    edges += [(f"m{i}", "true", f"m{i + 1}") for i in range(149)]
    run = run_flow(org, contact, nodes, edges)
    assert (run.status, run.current_node_key) == ("waiting", "ask")
    assert resume_waiting(run, "captured")
    run.refresh_from_db()
    assert (run.status, run.current_node_key, run.current_port_key) == ("completed", "m149", "true")


def test_an_iteration_is_read_by_one_statement_and_written_by_one(org, contact, conv):
    """Read the run with what the walk needs; write the run, its 30 step rows and the counter at once."""
    nodes = [(f"n{i}", "condition", {}) for i in range(30)]
    edges = [(f"n{i}", "true", f"n{i + 1}") for i in range(29)]
    automation = factories.automation(org, factories.flow(nodes, edges), status="active")
    run = enroll(automation, contact).run
    with assert_statements(2) as statements:
        advance(run.pk)
    assert statements[0].startswith("SELECT")
    write = statements[1]
    assert 'UPDATE "automation_runs"' in write and 'INSERT INTO "automation_step_runs"' in write
    assert 'UPDATE "automations"' in write
    assert StepRun.objects.filter(run_id=run.pk).count() == 30
    automation.refresh_from_db()
    assert automation.total_completed == 1


def test_a_lost_run_write_writes_none_of_its_dependents(org, contact, conv):
    """The steps, messages, contact changes and counter ride on the run write: a stale copy writes nothing."""
    automation = factories.automation(org, factories.flow([
        ("hi", "message", {"blocks": [{"type": "text", "text": "hi"}]}),
        ("tag", "action_group", {"actions": [{"id": "a", "type": "tag_add", "tag": "seen"}]})],
        [("hi", "next", "tag")]), status="active")
    run = enroll(automation, contact).run
    stale = AutomationRun.objects.get(pk=run.pk)
    AutomationRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() + timedelta(seconds=1))
    assert advance(stale) is None
    assert not StepRun.objects.filter(run_id=run.pk).exists()
    assert not Message.objects.filter(run_id=run.pk).exists()
    contact.refresh_from_db()
    automation.refresh_from_db()
    assert "seen" not in contact.tags and automation.total_completed == 0


# -- graph-change safety --------------------------------------------------------------------------------

def test_waiting_node_deleted_exits_graph_changed(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "email", "timeout_min": 5}), ("bye", "end", {})],
                   [("ask", "captured", "bye")])
    assert run.status == "waiting"
    automation = run.automation
    automation.graph = factories.flow([("bye", "end", {})])
    automation.save()
    assert resume_waiting(run, "captured")
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("exited", "graph_changed")
    assert not ScheduledJob.objects.filter(run=run, status=JobStatus.PENDING).exists()


def test_waiting_port_gone_exits_graph_changed(org, contact, conv):
    buttons = [{"id": "big", "type": "branch", "label": "Big"}, {"id": "small", "type": "branch", "label": "Small"}]
    run = run_flow(org, contact, [("greet", "message", {"blocks": [{"type": "text", "text": "Size?",
                                                                     "buttons": buttons}]})])
    assert (run.status, run.waiting_for) == ("waiting", "reply")
    automation = run.automation
    automation.graph["nodes"][0]["config"]["blocks"][0]["buttons"] = buttons[:1]  # "small" removed while waiting
    automation.save()
    assert resume_waiting(run, "button.small")
    run.refresh_from_db()
    assert (run.status, run.exit_reason, run.current_port_key) == ("exited", "graph_changed", "button.small")


def test_active_run_whose_node_disappeared_between_visits_exits_node_removed(org, contact, conv):
    automation = factories.automation(org, factories.flow([("greet", "message", text("hi"))]), status="active")
    run = enroll(automation, contact).run
    automation.graph = factories.flow([("other", "end", {})])  # edited before the worker picked the run up
    automation.save()
    advance(run.pk)
    run.refresh_from_db()
    assert (run.status, run.exit_reason, run.current_node_key) == ("exited", "node_removed", "greet")


def test_input_timeout_without_a_timeout_edge_exits_input_timeout(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "email", "timeout_min": 5})])
    assert resume_waiting(run, "timeout", step_outcome="skipped")
    run.refresh_from_db()
    assert (run.status, run.exit_reason, run.current_port_key) == ("exited", "input_timeout", "timeout")
    assert steps_of(run)[-1].outcome == "skipped"


def test_input_timeout_with_a_timeout_edge_follows_it(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "email", "timeout_min": 5}),
                                  ("late", "end", {"reason": "too_slow"})], [("ask", "timeout", "late")])
    assert resume_waiting(run, "timeout")
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("completed", "too_slow")


def test_resume_waiting_records_the_step_cancels_jobs_and_merges_context(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "email", "timeout_min": 5}),
                                  ("thanks", "message", text("Got {{context.email}}"))],
                   [("ask", "captured", "thanks")])
    job = ScheduledJob.objects.get(run=run)
    assert (job.kind, job.status, job.payload) == ("input_timeout", "pending",
                                                   {"node_key": "ask", "port_key": "timeout"})
    assert resume_waiting(run, "captured", context_updates={"email": "a@b.co"}, payload={"reply": "a@b.co"})
    run.refresh_from_db()
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert run.context["email"] == "a@b.co" and run.status == "completed"
    resumed, thanks = steps_of(run)[1:]
    assert (resumed.node_key, resumed.exited_via_port_key, resumed.payload) == ("ask", "captured", {"reply": "a@b.co"})
    assert thanks.payload["rendered_text"] == "Got a@b.co" and thanks.entered_via_port_key == "captured"


def test_resume_waiting_refuses_runs_that_are_not_waiting(org, contact, conv):
    run = run_flow(org, contact, [("bye", "end", {})])
    assert not resume_waiting(run, "next")


def test_admin_stop_exits_and_cancels_pending_jobs(org, contact, conv):
    run = run_flow(org, contact, [("wait", "delay", {"minutes": 5})])
    assert ScheduledJob.objects.filter(run=run, status="pending").count() == 1
    assert stop_run(run)
    run.refresh_from_db()
    assert (run.status, run.exit_reason, run.waiting_for) == ("exited", "admin_stopped", None)
    assert ScheduledJob.objects.get(run=run).status == "cancelled"
    assert not stop_run(run)  # already finished
    run.automation.refresh_from_db()
    assert run.automation.total_exited == 1


# -- stale writers --------------------------------------------------------------------------------------

def test_write_run_is_optimistic(org, contact, conv):
    run = run_flow(org, contact, [("wait", "delay", {"minutes": 5})])
    copy_a, copy_b = AutomationRun.objects.get(pk=run.pk), AutomationRun.objects.get(pk=run.pk)
    assert write_run(copy_a, context={"a": 1})
    before = copy_b.updated_at
    assert not write_run(copy_b, context={"b": 2})
    assert copy_b.updated_at == before and copy_b.context == {}
    assert AutomationRun.objects.get(pk=run.pk).context == {"a": 1}


def test_a_stale_copy_of_a_waiting_run_changes_nothing_and_sends_nothing(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "x"}), ("thanks", "message", text("thanks"))],
                   [("ask", "captured", "thanks")])
    first, second = AutomationRun.objects.get(pk=run.pk), AutomationRun.objects.get(pk=run.pk)
    assert resume_waiting(first, "captured")
    state = (Message.objects.count(), StepRun.objects.filter(run_id=run.pk).count(),
             AutomationRun.objects.get(pk=run.pk).updated_at)
    assert not resume_waiting(second, "captured")
    assert state == (Message.objects.count(), StepRun.objects.filter(run_id=run.pk).count(),
                     AutomationRun.objects.get(pk=run.pk).updated_at)
    assert Message.objects.filter(run_id=run.pk).count() == 1


def test_a_stale_copy_of_an_active_run_sends_nothing(org, contact, conv):
    automation = factories.automation(org, factories.flow([("greet", "message", text("once"))]), status="active")
    run = enroll(automation, contact).run
    first, second = AutomationRun.objects.get(pk=run.pk), AutomationRun.objects.get(pk=run.pk)
    assert advance(first) is not None
    assert advance(second) is None  # loaded before the first worker wrote: its write finds zero rows
    assert Message.objects.filter(run_id=run.pk).count() == 1
    assert StepRun.objects.filter(run_id=run.pk).count() == 1


# -- contact pauses -------------------------------------------------------------------------------------

def test_an_in_flight_run_parks_at_the_next_node_and_resumes_exactly_there(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "x"}), ("a", "condition", {}),
                                  ("b", "message", text("after the pause"))],
                   [("ask", "captured", "a"), ("a", "true", "b")])
    control = ContactAutomationControl.objects.create(organization=org, contact=contact, pause_reason="manual_takeover")
    assert resume_waiting(run, "captured")
    run.refresh_from_db()
    assert (run.status, run.waiting_for, run.current_node_key) == ("waiting", "external_event", "a")
    parked = steps_of(run)[-1]
    assert (parked.node_key, parked.outcome, parked.entered_via_port_key) == ("a", "waiting", "captured")
    assert parked.payload["parked"] is True and parked.payload["pause_reason"] == "manual_takeover"
    assert not resume_waiting(run, "true")  # a parked run is not resumed by replies
    assert not resume_parked(run)  # the pause still applies
    control.delete()
    assert resume_parked(run)
    run.refresh_from_db()
    assert (run.status, run.current_node_key, run.current_port_key) == ("completed", "b", "next")
    visited = [(s.node_key, s.entered_via_port_key, s.outcome) for s in steps_of(run)][-2:]
    assert visited == [("a", "captured", "success"), ("b", "true", "success")]


def test_an_expired_pause_does_not_park(org, contact, conv):
    ContactAutomationControl.objects.create(organization=org, contact=contact,
                                            paused_until=timezone.now() - timedelta(minutes=1))
    run = run_flow(org, contact, [("bye", "end", {})])
    assert run.status == "completed"


def test_a_pause_for_another_automation_does_not_park(org, contact, conv):
    other = factories.automation(org)
    ContactAutomationControl.objects.create(organization=org, contact=contact, automation=other)
    run = run_flow(org, contact, [("bye", "end", {})])
    assert run.status == "completed"


def test_resume_parked_exits_graph_changed_when_the_node_is_gone(org, contact, conv):
    run = run_flow(org, contact, [("ask", "input", {"field": "x"}), ("a", "condition", {})], [("ask", "captured", "a")])
    control = ContactAutomationControl.objects.create(organization=org, contact=contact)
    resume_waiting(run, "captured")
    control.delete()
    automation = run.automation
    automation.graph = factories.flow([("ask", "input", {"field": "x"})])
    automation.save()
    assert resume_parked(run)
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("exited", "graph_changed")


def test_jobs_schedule_and_cancel(org, contact, conv):
    run = run_flow(org, contact, [("bye", "end", {})])
    due = timezone.now() + timedelta(minutes=3)
    job = jobs.schedule(run, "resume_delay", due, {"node_key": "x"})
    jobs.schedule(run, "input_timeout", due)
    assert (job.organization_id, job.status, job.due_at) == (org.pk, "pending", due)
    assert write_run(run, hooks=[jobs.cancel_run_jobs(run, kinds=["resume_delay"])])
    assert dict(ScheduledJob.objects.filter(run=run).values_list("kind", "status")) == {
        "resume_delay": "cancelled", "input_timeout": "pending"}
    stale = AutomationRun.objects.get(pk=run.pk)
    assert write_run(run)
    assert not write_run(stale, hooks=[jobs.cancel_run_jobs(stale)])  # lost: cancels nothing
    assert ScheduledJob.objects.get(run=run, kind="input_timeout").status == "pending"
    assert write_run(run, hooks=[jobs.cancel_run_jobs(run)])
    assert set(ScheduledJob.objects.filter(run=run).values_list("status", flat=True)) == {"cancelled"}
