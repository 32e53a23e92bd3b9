"""Two workers advancing the same run at the same moment (two threads, two database connections, each
with its own loaded copy of the run): the optimistic run write lets exactly one through, so every
outbound message is written — and sent — once per node visit, and every step row exists once."""

from collections import Counter

import pytest
from django.test import override_settings

from automations.models import AutomationRun, RunStatus, StepRun
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance, load_run
from contacts.models import Message
from tests import factories
from tests.helpers import race
from tests.reliability.support import private_broker

PAIRS = 8


def text(value):
    return {"blocks": [{"type": "text", "text": value}]}


def advance_twice_at_once(run_ids):
    """Load each run twice (two 'workers'), then advance both copies of every run at the same moment."""
    copies = [load_run(run_id) for run_id in run_ids for _ in range(2)]
    advanced = race(len(copies), lambda i: advance(copies[i]))
    return [loaded.run.pk for loaded, result in zip(copies, advanced, strict=True) if result is not None]


def enrolled_runs(automation, org, account, count, broker_dir):
    """Enrolled, not yet advanced: the advance_run tasks enqueued on commit go to a broker nobody reads."""
    ids = []
    with private_broker(broker_dir):
        for _ in range(count):
            contact = factories.contact(org, account=account)
            factories.conversation(contact, account)
            result = enroll(automation, contact)
            assert result.ok, result.blocked
            ids.append(result.run.pk)
    return ids


@pytest.mark.django_db(transaction=True)
def test_two_workers_advancing_the_same_runs_send_each_message_once(tmp_path):
    org = factories.organization()
    account = factories.social_account(org)
    graph = factories.flow(
        [("hello", "message", text("Hello")), ("tag", "action_group", {"actions": [
            {"id": "t", "type": "tag_add", "tag": "greeted"}]}),
         ("again", "message", text("Second message")), ("bye", "end", {})],
        [("hello", "next", "tag"), ("tag", "next", "again"), ("again", "next", "bye")])
    automation = factories.automation(org, graph, status="active")
    run_ids = enrolled_runs(automation, org, account, PAIRS, tmp_path)

    moved = advance_twice_at_once(run_ids)

    assert sorted(moved) == sorted(run_ids), "exactly one of the two copies moves each run"
    for run in AutomationRun.objects.filter(pk__in=run_ids):
        assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "completed")
        visits = Counter(StepRun.objects.filter(run_id=run.pk).values_list("node_key", flat=True))
        assert visits == {"hello": 1, "tag": 1, "again": 1, "bye": 1}
        sent = Counter(Message.objects.filter(run_id=run.pk, direction="outbound", status="sent")
                       .values_list("node_key", flat=True))
        assert sent == {"hello": 1, "again": 1}
        assert Message.objects.filter(run_id=run.pk).count() == 2
        assert run.contact.tags == ["greeted"]
    automation.refresh_from_db()
    assert automation.total_completed == PAIRS


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_through_a_callout_call_out_once_and_send_once(tmp_path):
    """With an http_request node the winner commits before calling out; the loser's pre-callout write
    finds zero rows, so it neither calls the server nor sends anything."""
    org = factories.organization()
    account = factories.social_account(org)
    with factories.local_http_server({"/hook": (200, {"Content-Type": "application/json"}, b'{"ok": true}')}) as server:
        graph = factories.flow(
            [("hello", "message", text("Hello")),
             ("call", "http_request", {"method": "POST", "url": f"{server.url}/hook", "body": {"n": 1}}),
             ("after", "message", text("Called")), ("bye", "end", {})],
            [("hello", "next", "call"), ("call", "success", "after"), ("after", "next", "bye")])
        automation = factories.automation(org, graph, status="active")
        run_ids = enrolled_runs(automation, org, account, PAIRS, tmp_path)
        with override_settings(RELAY_HTTP_ALLOW_PRIVATE=True):
            moved = advance_twice_at_once(run_ids)

    assert sorted(moved) == sorted(run_ids)
    assert len(server.requests) == PAIRS, "one callout per run"
    for run in AutomationRun.objects.filter(pk__in=run_ids):
        assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "completed"), run.context
        visits = Counter(StepRun.objects.filter(run_id=run.pk).values_list("node_key", flat=True))
        assert visits == {"hello": 1, "call": 1, "after": 1, "bye": 1}
        sent = Counter(Message.objects.filter(run_id=run.pk, direction="outbound", status="sent")
                       .values_list("node_key", flat=True))
        assert sent == {"hello": 1, "after": 1}
