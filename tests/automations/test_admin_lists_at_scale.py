"""The run and step-run admin lists on big tables: no full COUNT(*) and no DISTINCT over the table per page
view (a capped count that stops early, filters that list only what is selected), newest first in an index's order."""

import pytest
from django.db import connection
from django.utils import timezone

from automations.models import AutomationRun, RunStatus, StepRun
from automations.partitions import ensure_partitions, existing_partitions
from relay.core import admin_lists
from tests import factories
from tests.helpers import captured_statements

RUNS = "/admin/automations/automationrun/"
STEPS = "/admin/automations/steprun/"


@pytest.fixture
def five_runs(org, account):
    contacts = [factories.contact(org, account=account, name=f"Person {i}") for i in range(5)]
    automation = factories.automation(org, factories.flow([("e", "end", {})]), status="active")
    now = timezone.now()
    runs = [AutomationRun.objects.create(organization=org, automation=automation, contact=contact,
                                         status=RunStatus.COMPLETED, exit_reason="done", started_at=now)
            for contact in contacts]
    StepRun.objects.bulk_create([StepRun(run_id=run.pk, automation_id=automation.pk, node_key="e", node_kind="end",
                                         outcome="success", executed_at=now) for run in runs])
    return runs


def statements(client, path, params=None):
    with captured_statements() as sql:
        response = client.get(path, params or {})
    assert response.status_code == 200
    return response.text, sql


@pytest.mark.parametrize("path", [RUNS, STEPS])
def test_the_lists_count_at_most_the_cap_and_say_so(admin_client, five_runs, monkeypatch, path):
    monkeypatch.setattr(admin_lists, "COUNT_CAP", 3)
    html, sql = statements(admin_client, path)
    assert "3+ " in html
    counts = [s for s in sql if "COUNT(" in s.upper()]
    assert counts and all("LIMIT 4" in s for s in counts), counts  # stops after cap + 1 rows
    assert not any("ORDER BY" in s.upper() for s in counts)  # nothing sorted just to count
    assert not any("DISTINCT" in s.upper() for s in sql)  # the sidebar's filters list a fixed vocabulary
    monkeypatch.setattr(admin_lists, "COUNT_CAP", 10)
    html, _ = statements(admin_client, path)
    assert "5 " in html and "5+ " not in html


def sidebar(html: str) -> str:
    start = html.index('id="changelist-filter"')
    return html[start:html.index("</nav>", start)]


def test_the_run_list_reads_no_distinct_values_and_lists_only_the_selected_contact(admin_client, five_runs):
    html, sql = statements(admin_client, RUNS)
    assert not any("DISTINCT" in s.upper() for s in sql), [s for s in sql if "DISTINCT" in s.upper()]
    assert "By contact" in sidebar(html) and "Person" not in sidebar(html)  # nobody listed until one is chosen
    chosen = five_runs[2]
    html, sql = statements(admin_client, RUNS, {"contact__id__exact": chosen.contact_id})
    assert not any("DISTINCT" in s.upper() for s in sql)
    assert chosen.pk in html and five_runs[1].pk not in html
    assert "Person 2" in sidebar(html) and "Person 1" not in sidebar(html)
    html, _ = statements(admin_client, RUNS, {"exit_reason": "done"})
    assert all(run.pk in html for run in five_runs)


def test_newest_first_in_the_order_of_an_index(admin_client, five_runs):
    """The lists' ORDER BY is an index's order (the bench shows the plans at a million rows)."""
    _, sql = statements(admin_client, RUNS)
    listed = next(s for s in sql if s.startswith('SELECT "automation_runs"') and "ORDER BY" in s)
    assert listed.endswith('ORDER BY "automation_runs"."started_at" DESC, "automation_runs"."id" DESC')
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'run_started'")
        assert cursor.fetchone()[0].endswith("(started_at DESC, id DESC)")
    _, sql = statements(admin_client, STEPS)
    listed = next(s for s in sql if s.startswith('SELECT "automation_step_runs"') and "ORDER BY" in s)
    assert listed.endswith('ORDER BY "automation_step_runs"."executed_at" DESC, "automation_step_runs"."id" DESC')
    with connection.cursor() as cursor:  # on every partition, new ones included
        ensure_partitions(months_ahead=6)
        cursor.execute("SELECT tablename, indexdef FROM pg_indexes WHERE tablename LIKE 'automation_step_runs_y%%' "
                       "AND indexdef LIKE '%%(executed_at, id)'")
        indexed = {row[0] for row in cursor.fetchall()}
    assert indexed == set(existing_partitions()) and len(indexed) >= 8
