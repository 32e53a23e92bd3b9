"""A real Celery worker is SIGKILLed in the middle of a run — while an http_request node waits on a slow
local server — and the scheduler's reconcile step finishes the run. The message sent before the kill
is not sent again and no step row is written twice; only the interrupted HTTP call is repeated (its
visit never completed, so there is no step to repeat — calls out are at-least-once by design), with the
same Idempotency-Key."""

import threading
from collections import Counter

import pytest
from django.test import override_settings
from django.utils import timezone

from automations.models import AutomationRun, RunStatus, StepRun
from automations.runtime.enrollment import enroll
from automations.runtime.scheduler import STALE_ACTIVE_AFTER, tick
from contacts.models import Message
from tests import factories
from tests.reliability.support import Worker, private_broker, wait_until


def text(value):
    return {"blocks": [{"type": "text", "text": value}]}


class SlowServer:
    """The first request blocks until released (or 60 s); later ones answer at once."""

    def __init__(self):
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.idempotency_keys = []

    def __call__(self, handler):
        self.calls += 1
        self.idempotency_keys.append(handler.headers.get("Idempotency-Key"))
        if self.calls == 1:
            self.arrived.set()
            self.release.wait(timeout=60)
        return 200, {"Content-Type": "application/json"}, b'{"ok": true}'


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_is_finished_by_reconcile_without_repeating_a_side_effect(tmp_path, eager_celery):
    org = factories.organization()
    account = factories.social_account(org)
    contact = factories.contact(org, account=account)
    factories.conversation(contact, account)
    slow = SlowServer()
    with factories.local_http_server({"/slow": slow}) as server:
        graph = factories.flow(
            [("hello", "message", text("Before the call")),
             ("call", "http_request", {"method": "GET", "url": f"{server.url}/slow", "timeout_ms": 60000}),
             ("after", "message", text("After the call")), ("bye", "end", {"reason": "finished"})],
            [("hello", "next", "call"), ("call", "success", "after"), ("after", "next", "bye")])
        automation = factories.automation(org, graph, status="active")

        worker = Worker(tmp_path, RELAY_HTTP_ALLOW_PRIVATE="1")
        try:
            with private_broker(tmp_path):
                run = enroll(automation, contact).run  # advance_run goes to the worker on commit
            wait_until(lambda: slow.arrived.is_set(), "the worker to call the slow server", timeout=60,
                       logs=worker.logs)
            # The worker committed the run's state and the first message before calling out.
            assert Message.objects.filter(run_id=run.pk, node_key="hello", status="sent").count() == 1
            worker.kill()
        finally:
            slow.release.set()
            worker.stop()

        run.refresh_from_db()
        assert (run.status, run.current_node_key) == (RunStatus.ACTIVE, "call")
        assert list(StepRun.objects.filter(run_id=run.pk).values_list("node_key", flat=True)) == ["hello"]

        # A tick while the run is not yet stale leaves it alone; once it is, reconcile re-enqueues it
        # (eager here: the advance runs inside the tick, through the same task).
        assert tick(now=timezone.now()).reconciled == 0
        with override_settings(RELAY_HTTP_ALLOW_PRIVATE=True):
            report = tick(now=timezone.now() + STALE_ACTIVE_AFTER + STALE_ACTIVE_AFTER / 10)
        assert report.reconciled == 1, report

    run = AutomationRun.objects.get(pk=run.pk)
    assert (run.status, run.exit_reason) == (RunStatus.COMPLETED, "finished")
    visits = Counter(StepRun.objects.filter(run_id=run.pk).values_list("node_key", flat=True))
    assert visits == {"hello": 1, "call": 1, "after": 1, "bye": 1}
    sent = Counter(Message.objects.filter(run_id=run.pk, direction="outbound").values_list("node_key", flat=True))
    assert sent == {"hello": 1, "after": 1}
    assert not Message.objects.filter(run_id=run.pk).exclude(status="sent").exists()
    assert slow.calls == 2  # the interrupted call, then the one that completed the visit
    # ... both as the same delivery for the server to recognise.
    assert slow.idempotency_keys[0] and slow.idempotency_keys == [slow.idempotency_keys[0]] * 2
