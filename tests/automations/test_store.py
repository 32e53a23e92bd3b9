"""The read half of the store: a run is read by column name into a LoadedRun whose hints are fresh for
one execute, due jobs are claimed by name into Claims, and no statement is written outside the store."""

import ast
import dataclasses
import importlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from automations.models import AutomationRun, JobStatus, RunStatus, ScheduledJob, StepRun
from automations.runtime import enrollment
from automations.runtime.engine import Position
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance, execute, graph_of, load_run
from automations.store import accounts as accounts_store
from automations.store import deliveries as deliveries_store
from automations.store import health as health_store
from automations.store import jobs as job_store
from automations.store import pacing as pacing_store
from automations.store import partitions as partitions_store
from automations.store import runs as run_store
from automations.store import webhooks as webhooks_store
from automations.store.base import AFTER
from automations.store.jobs import Claim
from automations.store.runs import LoadedRun, read_run
from tests import factories

# hi (action group) → hold (a 10-minute delay): the run waits at `hold`, entered through `next`.
WAITING_FLOW = ([("hi", "action_group", {"actions": []}), ("hold", "delay", {"minutes": 10})],
                [("hi", "next", "hold")])


@pytest.fixture
def waiting_run(org, account, contact, monkeypatch):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    factories.conversation(contact, account)
    automation = factories.automation(org, factories.flow(*WAITING_FLOW), status="active")
    run = enroll(automation, contact, source="manual").run
    advance(run.pk)
    run.refresh_from_db()
    assert (run.status, run.current_node_key) == (RunStatus.WAITING, "hold")
    return run


def _claim(job, lease=None):
    return Claim(id=job.pk, original_due=job.due_at, attempts=1, lease=lease or job.due_at, kind=job.kind,
                 run_id=job.run_id, payload=job.payload)


@pytest.mark.django_db
def test_a_waiting_run_is_read_with_its_relations_and_entry_port(waiting_run, django_assert_num_queries):
    with django_assert_num_queries(1):
        loaded = read_run(waiting_run.pk)
        assert (loaded.run.pk, loaded.run.status, loaded.run.updated_at) == (
            waiting_run.pk, RunStatus.WAITING, waiting_run.updated_at)
        assert loaded.run.automation.pk == waiting_run.automation_id
        assert loaded.run.contact.pk == waiting_run.contact_id
        assert loaded.run.social_account.pk == waiting_run.social_account_id
        assert loaded.run.conversation.pk == waiting_run.conversation_id
    step = StepRun.objects.get(run_id=waiting_run.pk, node_key="hold", outcome="waiting")
    assert loaded.entry_port == step.entered_via_port_key is not None
    assert (loaded.has_pause_rows, loaded.has_change_listeners, loaded.job_held) == (False, False, None)
    assert loaded.fresh


@pytest.mark.django_db
def test_a_run_without_account_or_conversation_reads_them_as_none(org, contact, monkeypatch,
                                                                   django_assert_num_queries):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    automation = factories.automation(org, factories.flow(*WAITING_FLOW), status="active")
    run = enroll(automation, contact, source="manual").run
    AutomationRun.objects.filter(pk=run.pk).update(social_account=None, conversation=None)  # account deleted
    with django_assert_num_queries(1):
        loaded = read_run(run.pk)
        assert (loaded.run.social_account, loaded.run.conversation) == (None, None)
    assert loaded.run.status == RunStatus.ACTIVE and loaded.entry_port is None  # no wait: no entry port
    assert read_run("arun_gone") is None


@pytest.mark.django_db
def test_the_pause_and_listener_hints_are_read_with_the_run(waiting_run, org):
    from contacts.models import ContactAutomationControl

    ContactAutomationControl.objects.create(organization=org, contact_id=waiting_run.contact_id, automation=None)
    listener = factories.automation(org, factories.flow(*WAITING_FLOW), status="active")
    factories.entrypoint(listener, kind="tag_applied", config={"tag_ids": ["vip"]})
    loaded = read_run(waiting_run.pk)
    assert (loaded.has_pause_rows, loaded.has_change_listeners) == (True, True)


@pytest.mark.django_db
def test_the_same_statement_tells_whether_the_claimed_job_is_still_held(waiting_run):
    job = ScheduledJob.objects.get(run_id=waiting_run.pk, status=JobStatus.PENDING)
    assert read_run(waiting_run.pk, held_job=_claim(job)).job_held is True
    assert read_run(waiting_run.pk, held_job=_claim(job, lease=job.due_at + timedelta(seconds=1))).job_held is False
    ScheduledJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
    assert read_run(waiting_run.pk, held_job=_claim(job)).job_held is False


@pytest.mark.django_db
def test_the_hints_are_fresh_for_one_execute_only(waiting_run, django_assert_num_queries):
    loaded = read_run(waiting_run.pk)
    with django_assert_num_queries(0):
        assert graph_of(loaded) == loaded.run.automation.graph  # the copy read with the run
    assert loaded.take() is True
    assert not loaded.fresh and loaded.take() is False  # taken: an execute after it reads them again
    with django_assert_num_queries(1):
        graph_of(loaded)
    assert not LoadedRun.unread(waiting_run).fresh
    assert load_run(waiting_run).run is waiting_run and load_run(loaded) is loaded


@pytest.mark.django_db
def test_a_written_run_is_no_longer_fresh(org, contact, monkeypatch):
    monkeypatch.setattr(enrollment, "enqueue_advance", lambda run_id: None)
    automation = factories.automation(org, factories.flow(*WAITING_FLOW), status="active")
    run = enroll(automation, contact, source="manual").run
    loaded = read_run(run.pk)
    kept = read_run(run.pk)
    assert execute(loaded, Position("hi"), gone_reason="node_removed").persists
    assert not loaded.fresh  # the execute took the hints
    assert kept.fresh  # another copy, never executed…
    kept.run.updated_at = loaded.run.updated_at  # …until its run is the one written since
    assert not kept.fresh


@pytest.mark.django_db
def test_due_jobs_are_claimed_by_name_oldest_first(waiting_run, org):
    now = timezone.now()
    older = ScheduledJob.objects.get(run_id=waiting_run.pk)
    ScheduledJob.objects.filter(pk=older.pk).update(due_at=now - timedelta(minutes=2))
    newer = ScheduledJob.objects.create(organization=org, kind="resume_delay", run_id=waiting_run.pk,
                                        due_at=now - timedelta(minutes=1), payload={"node_key": "hold"})
    ScheduledJob.objects.create(organization=org, kind="resume_delay", due_at=now + timedelta(minutes=1))
    lease = now + timedelta(minutes=5)
    claims = job_store.claim_due_jobs(now, 10, lease, now)
    older.refresh_from_db()
    assert claims == [
        Claim(id=older.pk, original_due=now - timedelta(minutes=2), attempts=1, lease=lease, kind=older.kind,
              run_id=waiting_run.pk, payload=older.payload),
        Claim(id=newer.pk, original_due=now - timedelta(minutes=1), attempts=1, lease=lease, kind="resume_delay",
              run_id=waiting_run.pk, payload={"node_key": "hold"}),
    ]
    assert older.due_at == lease and older.attempts == 1
    assert job_store.claim_due_jobs(now, 10, lease, now) == []  # leased: nobody claims them again


@pytest.mark.parametrize("cls", [LoadedRun, Claim])
def test_rows_are_decoded_into_frozen_dataclasses(cls):
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


STORE_DIR = Path(__file__).resolve().parents[2] / "automations" / "store"
STORE_MODULES = sorted(path.stem for path in STORE_DIR.glob("*.py") if path.stem != "__init__")


@pytest.mark.parametrize("name", STORE_MODULES)
def test_every_store_module_says_why_it_is_hand_written(name):
    doc = importlib.import_module(f"automations.store.{name}").__doc__ or ""
    assert "hand-written" in doc.lower(), name


@pytest.mark.parametrize("module", [run_store, job_store, pacing_store, deliveries_store, webhooks_store,
                                    accounts_store, health_store, partitions_store])
def test_every_moved_statement_is_a_named_constant_with_named_parameters(module):
    statements = {name: text for name, text in vars(module).items()
                  if name.lstrip("_").isupper() and isinstance(text, str) and not name.endswith("TEMPLATE")}
    assert statements
    for name, text in statements.items():
        assert "%s" not in text, name
        assert "{" not in text.replace(AFTER, ""), name  # every placeholder filled but a write's AFTER slot


def test_the_run_and_claim_statements_are_named_constants_with_named_parameters():
    for text in (run_store.LOAD_RUN, run_store.LOAD_RUN_HOLDING_JOB, job_store.CLAIM_DUE_JOBS):
        assert "%s" not in text and "{" not in text
        assert "%(run)s" in text or "%(lease)s" in text
    assert "job_held" in run_store.LOAD_RUN_HOLDING_JOB and "job_held" not in run_store.LOAD_RUN


# -- no statement outside the store ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("automations", "contacts", "relay")
EXEMPT = ("automations/store/", "relay/embedded.py")  # the store itself; the embedded server's bootstrap
STATEMENT_CALLS = {"cursor", "execute", "raw"}  # .cursor(…) / .execute(…) / .raw(…)
STATEMENT_RUNNERS = {"execute", "fetch", "fetch_one"}  # store.base functions that run a statement given to them

# Calls that look like statements but are not (path → why).
ALLOWED: dict[str, str] = {}



def _statement_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in STATEMENT_CALLS:
                found.append(f"line {node.lineno}: .{func.attr}(")
            elif isinstance(func, ast.Name) and func.id in ("RawSQL", "Dependent"):  # a statement's text
                found.append(f"line {node.lineno}: {func.id}(")
        elif isinstance(node, ast.ImportFrom) and node.module == "automations.store.base":
            found += [f"line {node.lineno}: imports {alias.name}" for alias in node.names
                      if alias.name in STATEMENT_RUNNERS]
        elif isinstance(node, ast.ImportFrom) and node.module == "automations.store":
            found += [f"line {node.lineno}: imports store.base" for alias in node.names if alias.name == "base"]
        elif isinstance(node, ast.ImportFrom) and node.module == "django.db.models.expressions":
            found += [f"line {node.lineno}: imports RawSQL" for alias in node.names if alias.name == "RawSQL"]
    return found


def _scanned() -> dict[str, list[str]]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if "/migrations/" in name or name.startswith(EXEMPT):
                continue
            calls = _statement_calls(path)
            if calls:
                found[name] = calls
    return found


def test_no_statement_is_written_outside_the_store():
    found = _scanned()
    outside = {name: calls for name, calls in found.items()
               if name not in ALLOWED}
    assert outside == {}, "statements belong in automations/store/<module>.py"
    # An allowance that no longer matches anything must go.
    assert set(ALLOWED) <= set(found)


def test_the_scan_sees_a_statement(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from django.db import connection\n"
                      "from django.db.models.expressions import RawSQL\n"
                      "from automations.store.base import fetch\n"
                      "with connection.cursor() as c:\n    c.execute('SELECT 1')\n"
                      "RawSQL('1', [])\nManager.raw('SELECT 1')\nDependent('UPDATE t SET a = 1', [])\n")
    assert len(_statement_calls(sample)) == 7
