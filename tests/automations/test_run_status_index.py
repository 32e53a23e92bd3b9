"""An automation's runs with one status come from the (automation, status, started_at DESC, id DESC) index:
the API's `?status=` list reads only the matching runs, newest first, however many runs of other statuses
the automation has (the bench measures it at a million runs; here the plan says which index it reads)."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automations.models import AutomationRun
from tests import factories
from tests.helpers import captured_statements

pytestmark = pytest.mark.django_db


def plan_nodes(sql: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found, pending = [], [plan[0]["Plan"]]
    while pending:
        node = pending.pop()
        found.append(node)
        pending.extend(node.get("Plans", []))
    return found


def test_the_status_filtered_runs_list_reads_the_status_index(api, org):
    automation = factories.automation(org, factories.flow([("done", "end", {})]), status="active")
    other = factories.automation(org, factories.flow([("done", "end", {})]), status="active")
    contact = factories.contact(org)
    now = timezone.now()
    AutomationRun.objects.bulk_create([
        AutomationRun(organization=org, automation=owner, contact=contact, current_node_key="done",
                      status="failed" if i % 50 == 0 else "completed", started_at=now - timedelta(minutes=i))
        for owner in (automation, other) for i in range(3000)])
    with connection.cursor() as cursor:
        cursor.execute('ANALYZE "automation_runs"')
    with captured_statements() as statements:
        body = api.get(f"/v1/automations/{automation.pk}/runs", {"status": "failed", "limit": 10}).json()
    assert [run["status"] for run in body["data"]] == ["failed"] * 10 and body["has_more"]
    started = [run["started_at"] for run in body["data"]]
    assert started == sorted(started, reverse=True)
    listed = next(sql for sql in statements if sql.startswith('SELECT "automation_runs"') and "ORDER BY" in sql)
    nodes = plan_nodes(listed)
    assert {node.get("Index Name") for node in nodes} & {"run_automation_status"}, nodes
    assert not any(node["Node Type"] in ("Sort", "Incremental Sort", "Seq Scan") for node in nodes), nodes
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'run_automation_status'")
        assert cursor.fetchone()[0].endswith("(automation_id, status, started_at DESC, id DESC)")
