"""Log lines: time, level and logger on every line; LOG_FORMAT=json prints one JSON object per line with the
request, organization and run ids known when the line was logged; the per-tick chatter of Celery is gone."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from relay.database import database_url
from relay.observability import logs
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _record(message="hello %s", args=("world",), level=logging.INFO, name="relay.test"):
    return logging.getLogger(name).makeRecord(name, level, __file__, 1, message, args, None)


def test_text_lines_start_with_time_level_and_logger():
    with logs.bound(request_id="req-1", run_id="arun_1"):
        record = _record()
    line = logs.TextFormatter().format(record)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO relay\.test \[request_id=req-1 run_id=arun_1\] "
                        r"hello world", line), line


def test_json_lines_carry_the_context_ids_known():
    with logs.bound(request_id="req-2", organization_id="org_1", run_id="arun_2"):
        record = _record()
    outside = _record()
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["level"] == "INFO" and entry["logger"] == "relay.test" and entry["message"] == "hello world"
    assert (entry["request_id"], entry["organization_id"], entry["run_id"]) == ("req-2", "org_1", "arun_2")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert not {"request_id", "organization_id", "run_id"} & set(json.loads(logs.JsonFormatter().format(outside)))


def test_json_lines_keep_a_traceback_on_one_line():
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("relay.test").makeRecord("relay.test", logging.ERROR, __file__, 1, "failed", (),
                                                            sys.exc_info())
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: bad" in json.loads(line)["exception"]


@pytest.mark.django_db(transaction=True)
def test_lines_logged_while_a_run_advances_carry_its_run_and_organization(caplog):
    org = factories.organization()
    account = factories.social_account(org)
    contact = factories.contact(org, account=account)
    factories.conversation(contact, account)
    actions = [{"id": "n", "type": "notify_admin", "message": "look at this"}]
    automation = factories.automation(org, factories.flow([("do", "action_group", {"actions": actions})]),
                                      status="active")
    result = enroll(automation, contact)
    with caplog.at_level(logging.WARNING, logger="relay.notify_admin"):
        advance(result.run.pk)
    [record] = [r for r in caplog.records if r.name == "relay.notify_admin"]
    assert (record.run_id, record.organization_id) == (result.run.pk, org.pk)
    assert logs.RUN_ID.get() is None


def _run_django(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"LOG_FORMAT", "LOG_LEVEL", "SENTRY_DSN"}}
    environment.update({"DATABASE_URL": database_url(), "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "relay.settings",
                        **env})
    return subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=60)


def test_log_format_json_prints_one_object_per_line_through_the_settings():
    code = ("import logging\nfrom relay.observability import logs\n"
            "with logs.bound(request_id='req-json', organization_id='org_j'):\n"
            "    logging.getLogger('relay.check').warning('first %s', 1)\n"
            "logging.getLogger('relay.check').error('second')\n")
    done = _run_django(code, LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert [(e["level"], e["logger"], e["message"]) for e in lines] == [
        ("WARNING", "relay.check", "first 1"), ("ERROR", "relay.check", "second")]
    assert (lines[0]["request_id"], lines[0]["organization_id"]) == ("req-json", "org_j")
    assert "request_id" not in lines[1]


def test_an_unknown_log_format_fails_in_one_line():
    done = _run_django("", LOG_FORMAT="xml")
    assert done.returncode != 0 and "LOG_FORMAT must be text or json" in done.stderr


TICK_TASK = "automations.tasks.scheduler_tick"


@pytest.mark.parametrize(("logger", "message", "args"), [
    ("celery.beat", "Scheduler: Sending due task %s (%s)", ("relay: scheduler tick", TICK_TASK)),
    ("celery.worker.strategy", "Task %(name)s[%(id)s] received", {"name": TICK_TASK, "id": "1"}),
    ("celery.app.trace", "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
     {"name": TICK_TASK, "id": "1", "runtime": 0.1, "return_value": "{}"}),
])
def test_celery_lines_about_each_tick_are_dropped_unless_debugging(logger, message, args):
    quiet = logs.QuietRoutineTicks()
    record = logging.getLogger(logger).makeRecord(logger, logging.INFO, __file__, 1, message, args, None)
    root = logging.getLogger()
    saved = root.level
    try:
        root.setLevel(logging.INFO)
        assert quiet.filter(record) is False
        root.setLevel(logging.DEBUG)
        assert quiet.filter(record) is True
    finally:
        root.setLevel(saved)


def test_celery_lines_about_other_tasks_stay():
    record = logging.getLogger("celery.app.trace").makeRecord(
        "celery.app.trace", logging.INFO, __file__, 1, "Task %(name)s[%(id)s] received",
        {"name": "automations.advance_run", "id": "1"}, None)
    assert logs.QuietRoutineTicks().filter(record) is True


def test_an_idle_tick_logs_below_info_and_a_busy_one_at_info(org, contact, caplog):
    from datetime import timedelta

    from automations.models import ScheduledJob
    from automations.runtime.scheduler import tick

    caplog.set_level(logging.DEBUG, logger="automations.runtime.scheduler")
    tick(batch=10)
    assert [r.levelno for r in caplog.records if r.name == "automations.runtime.scheduler"] == [logging.DEBUG]
    caplog.clear()
    automation = factories.automation(org, factories.flow([("wait", "delay", {"seconds": 5})]), status="active")
    run = enroll(automation, contact).run
    advance(run.pk)
    tick(now=ScheduledJob.objects.get(run_id=run.pk).due_at + timedelta(seconds=1), batch=10)
    [line] = [r for r in caplog.records if r.name == "automations.runtime.scheduler"]
    assert line.levelno == logging.INFO and "claimed 1" in line.getMessage()
