"""`wait_event`: waiting for an inbound event of listed kinds, its ports and config checks, its answer."""

from datetime import timedelta

import pytest

from automations.models import JobKind, ScheduledJob, WaitingFor
from automations.nodes import wait_event
from automations.nodes.base import InboundReply, NodeContext
from automations.runtime.resume import resume_waiting
from tests.automations.nodes.helpers import NOW, codes, errors, ports, run_flow

pytestmark = pytest.mark.usefixtures("eager_celery")  # advance_run enqueued on commit runs inline


def test_wait_event_waits_for_an_inbound_event(org, contact, conv):
    run = run_flow(org, contact, [("hold", "wait_event", {"event_kinds": ["comment_created"], "timeout_min": 60}),
                                  ("got", "end", {"reason": "commented"})], [("hold", "received", "got")], now=NOW)
    assert (run.status, run.waiting_for, run.waiting_until) == ("waiting", "inbound_event", NOW + timedelta(hours=1))
    assert ScheduledJob.objects.get(run=run).kind == "wait_event_timeout"
    assert resume_waiting(run, "received", context_updates={"comment": "nice"})
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("completed", "commented")


def test_wait_event_ports():
    assert ports("wait_event", {}) == ['received', 'timeout', 'error']


@pytest.mark.parametrize("config, code", [
    ({}, "invalid_config"),
    ({"event_kinds": []}, "invalid_config"),
    ({"event_kinds": ["dm_received", "telepathy"]}, "unknown_event_kind"),
    ({"event_kinds": ["dm_received"], "timeout_min": 0}, "invalid_config"),
])
def test_wait_event_errors(config, code):
    assert code in codes(errors("wait_event", config))


def test_an_event_of_a_listed_kind_leaves_through_received():
    assert (wait_event.WAIT.waiting_for, wait_event.WAIT.timeout_job, wait_event.WAIT.timeout_port) == (
        WaitingFor.INBOUND_EVENT, JobKind.WAIT_EVENT_TIMEOUT, "timeout")
    node = {"key": "hold", "kind": "wait_event", "config": {"event_kinds": ["comment_created"]}}
    ctx = NodeContext(node=node, run=None, context={}, contact=None, automation=None, effects=None, now=NOW,
                      ports=["received", "timeout", "error"])
    found = wait_event.answer(ctx, InboundReply("comment_created", text="nice", event_id="e1"))
    assert (found.port, found.context_updates["last_event"]["text"]) == ("received", "nice")
    assert found.payload == {"event": found.context_updates["last_event"]}
    assert wait_event.answer(ctx, InboundReply("dm_received", text="nice")) is None
