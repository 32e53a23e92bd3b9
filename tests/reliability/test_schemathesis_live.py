"""A bounded schemathesis run against the live app: gunicorn serving relay.wsgi (as the Procfile runs it)
on the test database, the document at /v1/schema, every operation, valid and invalid requests from a
fixed seed. No answer may be a 5xx or differ from what the document says: status code, content type,
headers and body schema.

Bounded: a fixed number of examples per operation (about a minute here), with a hard cap of TIME_CAP."""

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.utils import timezone

from automations.runtime.enrollment import enroll
from automations.runtime.runner import advance
from tests import factories
from tests.reliability.support import WebServer

SEED = 20261203
MAX_EXAMPLES = 30
TIME_CAP = 240  # seconds
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance"]
# gunicorn's own request-line and header-size limits answer 414/431 in plain text before Django sees the
# request; they are the HTTP server's setting, not the API's contract, so the run lifts them.
GUNICORN = [sys.executable, "-m", "gunicorn", "relay.wsgi:application",
            "--config", "python:relay.observability.gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "2",
            "--limit-request-line", "0", "--limit-request-field_size", "0"]


def seed_organization():
    """Rows for the lists to show and for the fuzzer to reuse ids from: an account, a contact, an active
    automation with an entrypoint, a binding and a run with steps."""
    org = factories.organization()
    _, raw_key = factories.api_key(org)
    account = factories.social_account(org)
    contact = factories.contact(org, account=account)
    nodes = [("a", "condition", {}), ("wait", "delay", {"minutes": 5})]
    automation = factories.automation(org, factories.flow(nodes, [("a", "true", "wait")]), status="active")
    factories.entrypoint(automation)
    factories.binding(automation, account)
    advance(enroll(automation, contact, now=timezone.now()).run.pk)
    return raw_key, account


@pytest.mark.django_db(transaction=True)
def test_live_app_answers_every_operation_as_documented(tmp_path):
    raw_key, account = seed_organization()
    (tmp_path / "metrics").mkdir()
    server = WebServer(GUNICORN, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    try:
        request = urllib.request.Request(
            f"{server.url}/v1/inbound-events", method="POST", headers={
                "Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"},
            data=json.dumps({"event_id": "seed-1", "social_account_id": account.pk, "kind": "dm_received",
                             "contact": {"platform_user_id": "seed-user"}, "text": "hello"}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202  # a conversation with a message, for those lists
        with urllib.request.urlopen(f"{server.url}/v1/schema?format=json", timeout=10) as response:
            operations = sum(1 for item in json.load(response)["paths"].values() for _ in item)
        argv = [str(Path(sys.executable).with_name("st")), "run", f"{server.url}/v1/schema",
                "--header", f"Authorization: Bearer {raw_key}", "--checks", ",".join(CHECKS),
                "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--mode", "all",
                "--phases", "examples,coverage,fuzzing", "--no-shrink", "--request-timeout", "30",
                "--output-truncate", "false"]
        try:
            result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=TIME_CAP,
                                    env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path),
                                         "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"})
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"schemathesis took more than {TIME_CAP}s\n{(exc.stdout or b'')[-6000:]!r}")
        report = result.stdout + result.stderr
        tested = re.search(r"Tested:\s+(\d+)", report)
        assert tested and int(tested.group(1)) == operations, report[-6000:]
        assert result.returncode == 0, f"{report[-12000:]}\n{server.logs()}"
    finally:
        server.stop()
