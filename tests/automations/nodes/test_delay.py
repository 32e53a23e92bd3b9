"""`delay`: waiting for a duration, its ports and config checks, its wait."""

from datetime import timedelta

import pytest

from automations.models import JobKind, ScheduledJob, WaitingFor
from automations.nodes import delay
from automations.runtime.resume import resume_waiting
from tests.automations.nodes.helpers import NOW, codes, errors, ports, run_flow

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


def test_delay_waits_and_schedules_resume_delay(org, contact, conv):
    run = run_flow(org, contact, [("pause", "delay", {"minutes": 2, "seconds": 30}), ("bye", "end", {})],
                   [("pause", "next", "bye")], now=NOW)
    due = NOW + timedelta(seconds=150)
    assert (run.status, run.waiting_for, run.waiting_until) == ("waiting", "delay", due)
    job = ScheduledJob.objects.get(run=run)
    assert (job.kind, job.due_at, job.payload["port_key"]) == ("resume_delay", due, "next")
    assert resume_waiting(run, "next")
    run.refresh_from_db()
    assert run.status == "completed"


def test_delay_ports():
    assert ports("delay", {}) == ['next']


@pytest.mark.parametrize("config, code", [
    ({}, "delay_zero"),
    ({"minutes": 0, "seconds": 0}, "delay_zero"),
    ({"weeks": 1}, "invalid_config"),
    ({"minutes": -5, "hours": 1}, "invalid_config"),
    ({"minutes": "5"}, "invalid_config"),
    ({"days": 400}, "invalid_config"),
])
def test_delay_errors(config, code):
    assert code in codes(errors("delay", config))


def test_delay_units_sum():
    from automations.nodes.delay import total_seconds

    assert total_seconds({"seconds": 30, "minutes": 1, "hours": 1, "days": 1}) == 90090


def test_its_wait_resumes_through_next_and_no_event_ends_it():
    assert (delay.WAIT.waiting_for, delay.WAIT.timeout_job, delay.WAIT.timeout_port) == (
        WaitingFor.DELAY, JobKind.RESUME_DELAY, "next")
    assert not hasattr(delay, "answer")
