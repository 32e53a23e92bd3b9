"""/metrics: the relay_ counters move with the work (runs, steps, inbound, outbound, ticks, requests), the
backlog is read at scrape time, processes' files add up, and only the right callers may scrape."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from automations.channels.sandbox import SandboxProvider
from automations.models import AutomationRun, JobKind, ScheduledJob, SchedulerTick
from automations.runtime import effects
from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from automations.runtime.scheduler import tick
from contacts.models import Message
from relay.observability import metrics
from tests import factories
from tests.inbound import helpers

ROOT = Path(__file__).resolve().parents[2]


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def conv(contact, account):
    return factories.conversation(contact, account)


def test_a_run_that_starts_and_completes_is_counted_with_its_steps(org, contact, conv):
    nodes = [("greet", "message", {"blocks": [{"type": "text", "text": "Hi"}]}), ("bye", "end", {"reason": "said_hi"})]
    automation = factories.automation(org, factories.flow(nodes, [("greet", "next", "bye")]), status="active")
    started = value("relay_runs_started_total", status="active")
    finished = value("relay_runs_finished_total", status="completed", exit_reason="said_hi")
    messages = value("relay_steps_total", node_kind="message", outcome="success")
    ends = value("relay_steps_total", node_kind="end", outcome="success")
    sent = value("relay_outbound_messages_total", provider="sandbox", result="sent")

    run = enroll(automation, contact).run
    assert value("relay_runs_started_total", status="active") == started + 1
    advance(run.pk)

    assert AutomationRun.objects.get(pk=run.pk).status == "completed"
    assert value("relay_runs_finished_total", status="completed", exit_reason="said_hi") == finished + 1
    assert value("relay_steps_total", node_kind="message", outcome="success") == messages + 1
    assert value("relay_steps_total", node_kind="end", outcome="success") == ends + 1
    assert value("relay_outbound_messages_total", provider="sandbox", result="sent") == sent + 1


def test_a_stopped_run_is_counted_as_exited_with_its_reason(org, contact):
    automation = factories.automation(org, factories.flow([("wait", "delay", {"seconds": 60})]), status="active")
    run = enroll(automation, contact).run
    advance(run.pk)
    before = value("relay_runs_finished_total", status="exited", exit_reason="admin_stopped")
    from automations.runtime.runs import stop_run

    assert stop_run(AutomationRun.objects.get(pk=run.pk))
    assert value("relay_runs_finished_total", status="exited", exit_reason="admin_stopped") == before + 1


class _Outbox(SandboxProvider):
    records_in_transaction = False

    def deliver(self, message):
        raise effects.DeliveryError("rejected", "provider said no")


def test_outbound_delivery_results_are_counted(org, contact, conv, monkeypatch):
    monkeypatch.setitem(effects.PROVIDERS, "sandbox", _Outbox())
    automation = factories.automation(org, factories.flow([("say", "message", {"blocks": [
        {"type": "text", "text": "x"}]})]), status="active")
    run = enroll(automation, contact).run
    advance(run.pk)
    failed = value("relay_outbound_messages_total", provider="sandbox", result="failed")
    assert effects.deliver_messages([Message.objects.get(run_id=run.pk).pk]) == 0
    assert value("relay_outbound_messages_total", provider="sandbox", result="failed") == failed + 1


def test_inbound_events_are_counted_by_outcome(api, org, account, eager_celery, django_capture_on_commit_callbacks):
    helpers.make_entrypoint(helpers.reply_flow(org))
    enrolled = value("relay_inbound_events_total", outcome="enrolled")
    duplicate = value("relay_inbound_events_total", outcome="duplicate")
    body = helpers.event(account, "hello", event_id="evt-metrics-1")
    assert helpers.send(api, django_capture_on_commit_callbacks, body)["outcome"] == "enrolled"
    assert helpers.send(api, django_capture_on_commit_callbacks, body)["outcome"] == "duplicate"
    assert value("relay_inbound_events_total", outcome="enrolled") == enrolled + 1
    assert value("relay_inbound_events_total", outcome="duplicate") == duplicate + 1


def test_webhook_deliveries_are_counted_as_inbound_events(org, eager_celery):
    from rest_framework.test import APIClient

    from automations.runtime.webhooks import sign

    hook = helpers.make_entrypoint(helpers.reply_flow(org), kind="webhook_inbound",
                                   config={"contact_lookup": "email", "create_contact": True})
    enrolled = value("relay_inbound_events_total", outcome="enrolled")
    raw = b'{"email": "buyer@example.com"}'
    response = APIClient().post(f"/v1/webhooks/automations/{hook.webhook_slug}", raw, content_type="application/json",
                                HTTP_X_RELAY_SIGNATURE=sign(hook.webhook_secret, raw))
    assert response.status_code == 202 and response.json()["outcome"] == "enrolled"
    assert value("relay_inbound_events_total", outcome="enrolled") == enrolled + 1


def test_a_tick_records_its_duration_the_lag_of_what_it_claimed_and_its_row(org, contact):
    automation = factories.automation(org, factories.flow([("wait", "delay", {"seconds": 30}), ("done", "end", {})],
                                                          [("wait", "next", "done")]), status="active")
    run = enroll(automation, contact).run
    advance(run.pk)
    job = ScheduledJob.objects.get(run_id=run.pk, kind=JobKind.RESUME_DELAY)
    ticks = value("relay_scheduler_tick_duration_seconds_count")
    lagged = value("relay_scheduler_lag_seconds_count", kind="resume_delay")
    within_15s = value("relay_scheduler_lag_seconds_bucket", kind="resume_delay", le="15.0")
    within_30s = value("relay_scheduler_lag_seconds_bucket", kind="resume_delay", le="30.0")
    done = value("relay_scheduler_jobs_total", outcome="done")

    report = tick(now=job.due_at + timedelta(seconds=20))

    assert report.claimed == 1 and report.done == 1
    assert value("relay_scheduler_tick_duration_seconds_count") == ticks + 1
    assert value("relay_scheduler_lag_seconds_count", kind="resume_delay") == lagged + 1
    assert value("relay_scheduler_lag_seconds_bucket", kind="resume_delay", le="15.0") == within_15s  # 20 s late
    assert value("relay_scheduler_lag_seconds_bucket", kind="resume_delay", le="30.0") == within_30s + 1
    assert value("relay_scheduler_jobs_total", outcome="done") == done + 1
    row = SchedulerTick.objects.get()
    assert (row.last_claimed, row.last_tick_at) == (1, report.now)


def test_the_backlog_of_due_jobs_by_kind_and_the_last_tick_are_read_at_scrape(org, client):
    now = timezone.now()
    for due in (now - timedelta(minutes=5), now - timedelta(seconds=1), now + timedelta(hours=1)):
        ScheduledJob.objects.create(organization=org, kind=JobKind.PAUSE_EXPIRY, due_at=due, payload={})
    ScheduledJob.objects.create(organization=org, kind=JobKind.SCHEDULE_TRIGGER, due_at=now - timedelta(minutes=1),
                                status="done")
    samples = scraped(client)
    assert samples[("relay_scheduler_backlog_jobs", (("kind", "pause_expiry"),))] == 2
    assert samples[("relay_scheduler_backlog_jobs", (("kind", "schedule_trigger"),))] == 0
    assert ("relay_scheduler_last_tick_timestamp_seconds", ()) not in samples  # never ticked
    tick(batch=0)
    ticked_at = SchedulerTick.objects.get().last_tick_at
    assert scraped(client)[("relay_scheduler_last_tick_timestamp_seconds", ())] == pytest.approx(ticked_at.timestamp())


def test_request_latency_is_recorded_by_route_method_and_status(client, db):
    before = value("relay_http_request_duration_seconds_count", method="GET", route="healthz", status="200")
    missing = value("relay_http_request_duration_seconds_count", method="GET", route="unmatched", status="404")
    client.get("/healthz")
    client.get("/no/such/page")
    assert value("relay_http_request_duration_seconds_count", method="GET", route="healthz", status="200") == before + 1
    assert value("relay_http_request_duration_seconds_count", method="GET", route="unmatched",
                 status="404") == missing + 1


# -- who may scrape -------------------------------------------------------------------------------------

def test_without_a_token_loopback_clients_may_scrape(client, db, settings):
    settings.RELAY_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


@pytest.mark.parametrize("headers", [{"REMOTE_ADDR": "10.1.2.3"}, {"REMOTE_ADDR": "203.0.113.9"},
                                     {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}])
def test_without_a_token_other_clients_and_proxied_requests_are_refused(client, db, settings, headers):
    settings.RELAY_METRICS_TOKEN = ""
    response = client.get("/metrics", **headers)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_with_a_token_the_bearer_token_is_required_from_anywhere(client, db, settings):
    settings.RELAY_METRICS_TOKEN = "s3cret-token"
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Basic s3cret-token"}):
        response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200 and b"relay_runs_started_total" in response.content


# -- several processes ----------------------------------------------------------------------------------

COUNT_IN_A_PROCESS = """
import sys
from relay.observability import metrics
for _ in range(int(sys.argv[1])):
    metrics.inbound_event("enrolled").inc()
metrics.SCHEDULER_LAG.labels("resume_delay").observe(2)
"""


def _count_in_a_process(directory: Path, times: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS, str(times)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_processes_sharing_the_directory_are_summed_and_survive_compaction(client, db, settings, tmp_path,
                                                                           monkeypatch):
    settings.RELAY_METRICS_TOKEN = ""
    _count_in_a_process(tmp_path, 3)
    _count_in_a_process(tmp_path, 4)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    enrolled = ("relay_inbound_events_total", (("outcome", "enrolled"),))
    lag_count = ("relay_scheduler_lag_seconds_count", (("kind", "resume_delay"),))

    samples = scraped(client)
    assert samples[enrolled] == 7 and samples[lag_count] == 2
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process

    assert metrics.compact(str(tmp_path)) == 4  # both processes exited: their counter and histogram files
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
    samples = scraped(client)
    assert samples[enrolled] == 7 and samples[lag_count] == 2

    _count_in_a_process(tmp_path, 5)  # a later process adds to the archive's totals
    assert scraped(client)[enrolled] == 12


def test_compaction_leaves_the_files_of_running_processes_alone(tmp_path):
    from prometheus_client.mmap_dict import MmapedDict

    running = MmapedDict(str(tmp_path / f"counter_{os.getppid()}.db"))  # pytest's parent is alive
    running.write_value("key", 1.0, 0.0)
    running.close()
    assert metrics.compact(str(tmp_path)) == 0
    assert (tmp_path / f"counter_{os.getppid()}.db").exists()
    assert metrics.compact(str(tmp_path), dead_pids={os.getppid()}) == 1  # told it is gone (gunicorn's reaper)
    assert not (tmp_path / f"counter_{os.getppid()}.db").exists()
