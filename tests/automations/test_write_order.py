"""A run write's hooks are written in their declared phase order — run, jobs, messages, contact, steps,
counter — whether they ride on the run write (one statement, each phase gated on the ones before it) or
follow buffered operations (the transaction path): all of them iff the run write wins."""

import random
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automations.models import AutomationRun, JobStatus, ScheduledJob, StepRun
from automations.runtime import hooks, jobs
from automations.runtime.effects import Effects
from automations.runtime.enrollment import enroll
from automations.runtime.hooks import AfterCommit, AfterWrite, Rows, WritePhase
from automations.runtime.runner import advance
from automations.runtime.runs import counted_finish, steps_written, write_run
from automations.store import contacts as contacts_store
from automations.store import jobs as jobs_store
from automations.store import messages as messages_store
from automations.store import runs as runs_store
from automations.store import steps as steps_store
from automations.store.base import AFTER
from contacts.models import Message
from tests import factories
from tests.helpers import captured_statements

pytestmark = pytest.mark.django_db

# One BEFORE trigger per table a run write touches: each row written appends its table to a log, in the
# order PostgreSQL actually wrote (and locked) it.
TABLES = {"automation_runs": "run", "automation_scheduled_jobs": "jobs", "messages": "messages",
          "contacts": "contact", "automation_step_runs": "steps", "automations": "counter"}


@pytest.fixture
def write_log(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE write_log (n serial, phase text)")
        cursor.execute("""CREATE FUNCTION test_log_write() RETURNS trigger LANGUAGE plpgsql AS $$
                          BEGIN INSERT INTO write_log (phase) VALUES (TG_ARGV[0]); RETURN NEW; END $$""")
        for table, phase in TABLES.items():
            cursor.execute(f'CREATE TRIGGER log_write BEFORE INSERT OR UPDATE ON "{table}" FOR EACH ROW '
                           f"EXECUTE FUNCTION test_log_write('{phase}')")

    def read():
        with connection.cursor() as cursor:
            cursor.execute("SELECT phase FROM write_log ORDER BY n")
            phases = [row[0] for row in cursor.fetchall()]
            cursor.execute("TRUNCATE write_log")
        return [phase for i, phase in enumerate(phases) if i == 0 or phases[i - 1] != phase]  # runs collapsed

    read()
    return read


@pytest.fixture
def conv(contact, account):
    return factories.conversation(contact, account)


def every_phase(run, contact):
    """One Rows hook of each phase after RUN (a pending job of the run to cancel, an outbox message, a
    tag, a step row, the completed counter), given in reverse order."""
    jobs.schedule(run, "resume_delay", timezone.now() + timedelta(minutes=5))
    effects = Effects(run=run, contact=contact, automation=run.automation)
    effects.send_message(node_key="hi", parts=[{"text": "hi"}])
    effects.tag_add("seen")
    written = [hook for hook in effects.hooks() if isinstance(hook, Rows)]
    step = (run.pk, run.automation_id, "hi", "message", None, "next", "success", 0, {}, None, timezone.now())
    return [counted_finish(run.automation_id, "completed"), steps_written([step]), *reversed(written),
            jobs.cancel_run_jobs(run)]


def a_run(org, contact, account, conv):
    """A run on a network provider's account (its message stays in the outbox)."""
    automation = factories.automation(org, factories.flow([("hi", "end", {})]), status="active")
    return enroll(automation, contact, social_account=account, conversation=conv).run


def test_plan_sorts_by_phase_and_keeps_the_order_within_a_phase():
    given = [Rows(phase, "x", {"i": i}) for i, phase in enumerate(WritePhase)]
    given += [AfterWrite(lambda: None, WritePhase.CONTACT), AfterCommit(lambda: None, WritePhase.CONTACT)]
    shuffled = random.Random(14).sample(given, len(given))
    planned = hooks.plan([None, *shuffled])
    assert [hook.phase for hook in planned] == sorted(hook.phase for hook in given)
    same_phase = [hook for hook in shuffled if hook.phase == WritePhase.CONTACT]
    assert [hook for hook in planned if hook.phase == WritePhase.CONTACT] == same_phase


def test_each_phase_of_the_statement_reads_every_phase_before_it():
    phases = tuple((f"w_{phase.name.lower()}", f"UPDATE t SET a = %(a)s WHERE {AFTER}")
                   for phase in WritePhase if phase != WritePhase.RUN)
    text = runs_store.write_statement(runs_store.update_run(("status", "updated_at")), phases)
    names = ["w_run", *(name for name, _ in phases)]
    ctes = dict(re.findall(r"(w_\w+) AS \((.*?) RETURNING", text))
    assert list(ctes) == names
    for i, name in enumerate(names[1:], start=1):
        gate = re.search(r"= \(SELECT max\(run_id\) FROM \((.*)\) AS", ctes[name]).group(1)
        assert re.findall(r"FROM (w_\w+)", gate) == names[:i], name
        assert f"%({name}_a)s" in ctes[name]  # parameters prefixed by phase
    assert AFTER not in text


def test_the_one_statement_writes_in_phase_order(org, contact, account, conv, write_log):
    run = a_run(org, contact, account, conv)
    given = every_phase(run, contact)
    write_log()
    with captured_statements(transaction_control=False) as statements:
        assert write_run(run, hooks=given, status="completed")
    assert len(statements) == 1
    assert write_log() == ["run", "jobs", "messages", "contact", "steps", "counter"]


def test_a_lost_write_writes_nothing_of_any_phase_and_a_won_write_all(org, contact, account, conv):
    run = a_run(org, contact, account, conv)
    stale = AutomationRun.objects.get(pk=run.pk)
    assert write_run(run)
    called = []
    lost = [*every_phase(stale, contact), AfterWrite(lambda: called.append("write")),
            AfterCommit(lambda: called.append("commit"))]
    assert not write_run(stale, hooks=lost, status="completed")
    assert called == []
    assert ScheduledJob.objects.get(run_id=run.pk).status == JobStatus.PENDING
    assert not Message.objects.filter(run_id=run.pk).exists()
    assert not StepRun.objects.filter(run_id=run.pk).exists()
    contact.refresh_from_db()
    run.automation.refresh_from_db()
    assert "seen" not in contact.tags and run.automation.total_completed == 0

    ScheduledJob.objects.filter(run_id=run.pk).delete()
    won = [*every_phase(run, contact), AfterWrite(lambda: called.append("write")),
           AfterCommit(lambda: called.append("commit"))]
    assert write_run(run, hooks=won, status="completed")
    assert called == ["write"]  # the commit hook waits for the test's transaction
    assert ScheduledJob.objects.get(run_id=run.pk).status == JobStatus.CANCELLED
    assert Message.objects.filter(run_id=run.pk).count() == 1
    assert StepRun.objects.filter(run_id=run.pk).count() == 1
    contact.refresh_from_db()
    run.automation.refresh_from_db()
    assert "seen" in contact.tags and run.automation.total_completed == 1


def test_the_transaction_path_writes_steps_after_the_operations_and_the_counter_last(org, contact, conv,
                                                                                      write_log, monkeypatch):
    monkeypatch.setattr("automations.runtime.enrollment.enqueue_advance", lambda run_id: None)
    target = factories.automation(org, factories.flow([("bye", "end", {})]), status="active")
    automation = factories.automation(org, factories.flow(
        [("t", "action_group", {"actions": [{"id": "a", "type": "tag_add", "tag": "x"}]}),
         ("go", "start_automation", {"target_automation_id": target.pk}), ("bye", "end", {})],
        [("t", "next", "go"), ("go", "next", "bye")]), status="active")
    run = enroll(automation, contact).run
    write_log()
    with captured_statements(transaction_control=False) as statements:
        assert advance(run.pk)
    order = write_log()
    # the run write carries the contact; the enrollment (its own run row and counter) follows; then the
    # steps, and this automation's counter last
    assert order[:2] == ["run", "contact"] and order[-2:] == ["steps", "counter"], order
    assert "run" in order[2:-2], order
    step_insert = next(i for i, sql in enumerate(statements) if 'INSERT INTO "automation_step_runs"' in sql)
    assert 'UPDATE "automations"' in statements[-1] and step_insert == len(statements) - 2
    started = StepRun.objects.get(run_id=run.pk, node_key="go").payload
    assert started["run_id"] == AutomationRun.objects.get(automation=target).pk  # completed by the operation
    automation.refresh_from_db()
    assert automation.total_completed == 1


@pytest.mark.parametrize("text", [jobs_store.CANCEL_RUN_JOBS, jobs_store.FINISH_CLAIM_CANCEL_RUN_JOBS,
                                  messages_store.INSERT_MESSAGES, contacts_store.UPDATE_TAGS_AND_FIELDS,
                                  steps_store.INSERT_STEPS, runs_store.COUNT_FINISHED])
def test_a_phase_statement_has_named_parameters_and_one_slot_for_its_gate(text):
    assert not re.search(r"%s", text) and text.count(AFTER) == 1
