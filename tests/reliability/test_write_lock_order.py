"""The one-statement run write locks rows in a fixed order — run, jobs, messages, contact, steps, the
automation's counter last — the order the transaction it replaced used. PostgreSQL on its own runs the
statement's data-modifying CTEs last-first, which locked a busy automation's counter before the contact
and deadlocked against a persist that holds the contact and then bumps that counter."""

import threading
import time

import pytest
from django.db import connection

from automations.models import AutomationRun
from automations.runtime import enrollment
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from automations.store import enrollment as enrollment_store
from tests import factories
from tests.reliability.support import raw_connection


def tagging(tag):
    return "action_group", {"actions": [{"id": "a", "type": "tag_add", "tag": tag}]}


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_one_contact_writing_the_contact_and_a_counter_do_not_deadlock(org, account, contact,
                                                                                   monkeypatch):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    factories.conversation(contact, account)
    y = factories.automation(org, factories.flow([("t", *tagging("y")), ("bye", "end", {})], [("t", "next", "bye")]),
                             status="active")
    # X tags the contact, then starts Y for it: Y's live run makes that a skip row plus Y's exited
    # counter, written by X's persist after the contact row is already locked by it.
    x = factories.automation(org, factories.flow(
        [("t", *tagging("x")), ("go", "start_automation", {"target_automation_id": y.pk}), ("bye", "end", {})],
        [("t", "next", "go"), ("go", "next", "bye")]), status="active")
    run_y = enroll(y, contact, source="manual").run
    run_x = enroll(x, contact, source="manual").run

    errors, y_backend, y_started = {}, [], threading.Event()
    real_serialize = enrollment_store.lock_enrollment

    def finish_y():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                y_backend.append(cursor.fetchone()[0])
            y_started.set()
            advance(run_y.pk)  # tags the contact and bumps Y's completed counter, in one statement
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors["y"] = exc
        finally:
            connection.close()

    thread_y = threading.Thread(target=finish_y)

    def serialize_then_let_y_run(automation_id, contact_id):
        """X's start_automation is enrolling into Y: X holds the contact row now. Y's run goes, and
        X carries on (to Y's counter) once Y waits for a lock."""
        real_serialize(automation_id, contact_id)
        if automation_id != y.pk or thread_y.is_alive() or "started" in errors:
            return
        errors["started"] = True
        thread_y.start()
        y_started.wait(5)
        with raw_connection() as watcher:
            for _ in range(100):
                row = watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                      [y_backend[0]]).fetchone()
                if row and row[0] == "Lock":
                    break
                time.sleep(0.05)

    monkeypatch.setattr(enrollment_store, "lock_enrollment", serialize_then_let_y_run)

    def finish_x():
        try:
            advance(run_x.pk)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors["x"] = exc
        finally:
            connection.close()

    thread_x = threading.Thread(target=finish_x)
    thread_x.start()
    thread_x.join(30)
    thread_y.join(30)
    assert "x" not in errors and "y" not in errors, errors
    statuses = dict(AutomationRun.objects.filter(pk__in=[run_x.pk, run_y.pk]).values_list("pk", "status"))
    assert statuses == {run_x.pk: "completed", run_y.pk: "completed"}
    contact.refresh_from_db()
    assert {"x", "y"} <= set(contact.tags)
