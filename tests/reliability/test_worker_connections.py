"""A real worker keeps one healthy PostgreSQL connection across tasks (opening one per task cost more
than the run itself), and still recovers when that connection dies between tasks."""

import pytest

from automations.models import AutomationRun, RunStatus
from automations.runtime.enrollment import enroll
from tests import factories
from tests.reliability.support import Worker, private_broker, raw_connection, wait_until


def client_backends() -> set[int]:
    """Client connections to this test database other than the one asking."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        return {row[0] for row in cursor.fetchall()}


OURS: set[int] = set()  # this test process's own connections (idle ones its pool keeps), taken at the start


def worker_backends() -> set[int]:
    return client_backends() - OURS


def enroll_and_wait(automation, org, account, worker, count: int) -> None:
    runs = []
    for _ in range(count):
        contact = factories.contact(org, account=account)
        factories.conversation(contact, account)
        runs.append(enroll(automation, contact).run.pk)  # advance_run goes to the worker on commit
    done = AutomationRun.objects.filter(pk__in=runs, status=RunStatus.COMPLETED)
    wait_until(lambda: done.count() == count, f"{count} runs through the worker", timeout=60, logs=worker.logs)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_reuses_its_connection_across_tasks_and_replaces_a_dead_one(tmp_path):
    org = factories.organization()
    account = factories.social_account(org)
    automation = factories.automation(org, factories.flow(
        [("hi", "message", {"blocks": [{"type": "text", "text": "hi"}]}), ("bye", "end", {})], [("hi", "next", "bye")]),
        status="active")
    OURS.clear()
    OURS.update(client_backends())
    worker = Worker(tmp_path, CONN_MAX_AGE="600")
    try:
        with private_broker(tmp_path):
            enroll_and_wait(automation, org, account, worker, 1)
            [backend] = worker_backends()  # still open after the task: not closed around it
            enroll_and_wait(automation, org, account, worker, 5)
            assert worker_backends() == {backend}  # the same backend served all of them

            with raw_connection() as admin:  # the connection dies between tasks (server restart, failover…)
                assert admin.execute("SELECT pg_terminate_backend(%s)", [backend]).fetchone()[0]
            wait_until(lambda: backend not in worker_backends(), "the backend to go away")
            enroll_and_wait(automation, org, account, worker, 3)  # the next tasks run on a new connection
            # The pool replaced the dead connection (it may open a second one while the first connects).
            assert 1 <= len(worker_backends()) <= 2 and backend not in worker_backends()
    finally:
        worker.stop()
