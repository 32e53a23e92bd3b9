"""Insights endpoints: figures agree with counts computed here from the raw rows (after retries, stale
workers and stops too), the four scopes, the period validation, and partition pruning."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automations.insights import queries
from automations.insights.queries import Scope, ScopeKind, Window
from automations.models import AutomationRun, StepRun
from automations.partitions import add_months, ensure_partitions, month_start, partition_name
from automations.runtime.enrollment import enroll
from automations.runtime.resume import resume_waiting
from automations.runtime.runner import advance, load_run
from automations.runtime.runs import stop_run
from automations.store import insights as insights_store
from tests import factories

pytestmark = pytest.mark.django_db

ASK = {"blocks": [{"type": "text", "text": "Small or large?", "buttons": [
    {"id": "s", "type": "branch", "label": "Small"}, {"id": "l", "type": "branch", "label": "Large"}]}]}
GRAPH = factories.flow(
    [("ask", "message", ASK), ("small", "message", {"blocks": [{"type": "text", "text": "5 EUR"}]}),
     ("large", "end", {"reason": "went_large"})],
    [("ask", "button.s", "small"), ("ask", "button.l", "large")])


def started(automation, account, **enroll_kwargs):
    contact = factories.contact(automation.organization, account=account)
    factories.conversation(contact, account)
    result = enroll(automation, contact, **enroll_kwargs)
    assert result.ok, result.blocked
    advance(result.run.pk)
    return AutomationRun.objects.get(pk=result.run.pk)


@pytest.fixture
def world(org, account):
    """Nine runs in one automation (some through an entrypoint, some through a binding), answered,
    stopped, retried and raced; one old run outside the period; a failing run in a second automation."""
    automation = factories.automation(org, GRAPH, status="active")
    entrypoint = factories.entrypoint(automation, kind="dm_received", config={"keywords": ["hi"]})
    binding = factories.binding(automation, account)
    runs = [started(automation, account, entrypoint=entrypoint) for _ in range(4)]
    runs += [started(automation, account, binding=binding) for _ in range(3)]
    runs += [started(automation, account) for _ in range(2)]
    # small: answered once; a second worker holding the same waiting run loses and writes nothing
    stale = load_run(runs[0].pk)
    assert resume_waiting(load_run(runs[0].pk), "button.s")
    assert not resume_waiting(stale, "button.s")
    assert not resume_waiting(load_run(runs[0].pk), "button.s")  # a redelivered reply
    assert resume_waiting(load_run(runs[4].pk), "button.s")
    assert resume_waiting(load_run(runs[1].pk), "button.l")
    # stops, retried: the second stop of the same run is a no-op
    assert stop_run(AutomationRun.objects.get(pk=runs[2].pk))
    assert not stop_run(AutomationRun.objects.get(pk=runs[2].pk))
    assert stop_run(AutomationRun.objects.get(pk=runs[5].pk))
    assert advance(runs[0].pk) is None  # a retried advance of a finished run
    # an old run (started 20 days ago, its step then too) and a failing run elsewhere
    old = started(automation, account)
    long_ago = timezone.now() - timedelta(days=20)
    AutomationRun.objects.filter(pk=old.pk).update(started_at=long_ago)
    StepRun.objects.create(run_id=old.pk, automation_id=automation.pk, node_key="ask", node_kind="message",
                           outcome="waiting", executed_at=long_ago)
    other = factories.automation(org, factories.flow([("jump", "goto", {})]), status="active")
    failing = started(other, account)
    assert failing.status == "failed"
    return {"automation": automation, "entrypoint": entrypoint, "binding": binding, "other": other,
            "failing": failing}


def expected(runs, steps, start, end):
    """What the endpoint must say, from the raw rows in Python."""
    runs = [r for r in runs if start <= r.started_at < end]
    steps = [s for s in steps if start <= s.executed_at < end]
    totals = Counter(r.status for r in runs)
    reasons = Counter(r.exit_reason for r in runs if r.status in ("completed", "exited", "failed"))
    nodes = {}
    for step in steps:
        entry = nodes.setdefault(step.node_key, {"runs": set(), "outcomes": Counter(), "ports": Counter()})
        entry["runs"].add(step.run_id)
        entry["outcomes"][step.outcome] += 1
        if step.exited_via_port_key:
            entry["ports"][step.exited_via_port_key] += 1
    return totals, reasons, nodes


def check(body, runs, steps):
    start, end = (datetime.fromisoformat(body[k].replace("Z", "+00:00")) for k in ("from", "to"))
    totals, reasons, nodes = expected(runs, steps, start, end)
    assert body["totals"] == {s: totals.get(s, 0) for s in ("created", "active", "waiting", "completed", "exited",
                                                            "failed")}
    assert body["exit_reasons"] == dict(reasons)
    assert sum(b["started"] for b in body["series"]) == len([r for r in runs if start <= r.started_at < end])
    for status in ("completed", "exited", "failed"):
        assert sum(b[status] for b in body["series"]) == totals.get(status, 0)
    visited = {n["node_key"]: n for n in body["nodes"] if n["visits"]}
    assert set(visited) == set(nodes)
    for key, entry in nodes.items():
        node = visited[key]
        assert node["visits"] == len(entry["runs"])
        assert node["outcomes"] == {o: entry["outcomes"].get(o, 0) for o in ("success", "failed", "skipped",
                                                                             "waiting")}
        assert node["exits_by_port"] == dict(entry["ports"])


def test_automation_insights_agree_with_the_rows(api, world):
    automation = world["automation"]
    body = api.get(f"/v1/automations/{automation.pk}/insights?period=7d").json()
    assert set(body) == {"period", "from", "to", "totals", "exit_reasons", "series", "nodes"}
    runs = list(AutomationRun.objects.filter(automation=automation))
    steps = list(StepRun.objects.filter(automation_id=automation.pk))
    check(body, runs, steps)
    # the figures themselves, so an agreeing-but-wrong pair of computations cannot pass
    assert body["period"] == "7d" and len(body["series"]) in (7, 8)
    assert body["totals"] == {"created": 0, "active": 0, "waiting": 4, "completed": 3, "exited": 2, "failed": 0}
    assert body["exit_reasons"] == {"admin_stopped": 2, "completed": 2, "went_large": 1}
    ask = body["nodes"][0]
    assert [n["node_key"] for n in body["nodes"]] == ["ask", "small", "large"]  # graph order
    # ten runs reached "ask" this week: the nine started in it and the old one (its first visit was now)
    assert ask["visits"] == 10 and ask["exits_by_port"] == {"button.s": 2, "button.l": 1}
    assert ask["outcomes"] == {"success": 3, "failed": 0, "skipped": 0, "waiting": 10}
    assert body["nodes"][1]["visits"] == 2 and body["nodes"][2]["visits"] == 1
    assert {"automation_id", "node_kind", "median_duration_ms"} <= set(ask)
    # 30 days reaches the old run
    wider = api.get(f"/v1/automations/{automation.pk}/insights?period=30d").json()
    check(wider, runs, steps)
    assert wider["totals"]["waiting"] == 5 and wider["nodes"][0]["visits"] == 10


def test_entrypoint_binding_and_organization_scopes(api, world):
    automation = world["automation"]
    runs = list(AutomationRun.objects.all())
    steps = list(StepRun.objects.all())
    for path, keep in [
        (f"automation-entrypoints/{world['entrypoint'].pk}", lambda r: r.entrypoint_id == world["entrypoint"].pk),
        (f"automation-bindings/{world['binding'].pk}", lambda r: r.binding_id == world["binding"].pk),
        ("automations", lambda r: True),
    ]:
        body = api.get(f"/v1/{path}/insights?period=24h").json()
        mine = [r for r in runs if keep(r)]
        ids = {r.pk for r in mine}
        check(body, mine, [s for s in steps if s.run_id in ids])
        assert len(body["series"]) in (24, 25)
    entry = api.get(f"/v1/automation-entrypoints/{world['entrypoint'].pk}/insights?period=24h").json()
    assert entry["totals"]["completed"] == 2 and entry["totals"]["exited"] == 1
    rollup = api.get("/v1/automations/insights?period=24h").json()
    assert rollup["totals"]["failed"] == 1 and rollup["exit_reasons"][world["failing"].exit_reason] == 1
    assert {n["automation_id"] for n in rollup["nodes"]} == {automation.pk, world["other"].pk}


def test_custom_period_counts_only_inside_it(api, world):
    automation = world["automation"]
    AutomationRun.objects.filter(automation=automation).update(
        started_at=datetime(2026, 1, 10, 12, tzinfo=UTC))
    body = api.get(f"/v1/automations/{automation.pk}/insights",
                   {"period": "custom", "from": "2026-01-10T00:00:00Z", "to": "2026-01-12T00:00:00Z"}).json()
    assert body["from"] == "2026-01-10T00:00:00Z" and body["to"] == "2026-01-12T00:00:00Z"
    assert sum(body["totals"].values()) == 10
    assert [(b["bucket_start"], b["started"]) for b in body["series"]] == [
        ("2026-01-10T00:00:00Z", 10), ("2026-01-11T00:00:00Z", 0)]
    assert all(n["visits"] == 0 for n in body["nodes"])  # the steps are not in January


def test_other_organizations_ids_are_404(other_api, world):
    for path in (f"automations/{world['automation'].pk}", f"automation-entrypoints/{world['entrypoint'].pk}",
                 f"automation-bindings/{world['binding'].pk}"):
        response = other_api.get(f"/v1/{path}/insights")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert sum(other_api.get("/v1/automations/insights").json()["totals"].values()) == 0


@pytest.mark.parametrize("params, code", [
    ({"period": "1y"}, "invalid_period"),
    ({"period": "custom"}, "invalid_range"),
    ({"period": "custom", "from": "2026-01-10T00:00:00Z"}, "invalid_range"),
    ({"period": "custom", "from": "yesterday", "to": "2026-01-12T00:00:00Z"}, "invalid_timestamp"),
    ({"period": "custom", "from": "2026-01-12T00:00:00Z", "to": "2026-01-10T00:00:00Z"}, "invalid_range"),
    ({"period": "custom", "from": "2024-01-01T00:00:00Z", "to": "2026-01-10T00:00:00Z"}, "invalid_range"),
    ({"period": "7d", "from": "2026-01-10T00:00:00Z"}, "invalid_range"),
    ({"period": "custom", "from": "2026-01-10" + "0" * 100, "to": "2026-01-12T00:00:00Z"}, "invalid_timestamp"),
])
def test_bad_periods_are_400_with_stable_codes(api, org, params, code):
    automation = factories.automation(org, GRAPH)
    for path in (f"automations/{automation.pk}", "automations"):
        response = api.get(f"/v1/{path}/insights", params)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == code and error["message"] and error["details"]


def test_default_period_is_7d_and_unvisited_nodes_are_listed(api, org):
    automation = factories.automation(org, GRAPH)
    body = api.get(f"/v1/automations/{automation.pk}/insights").json()
    assert body["period"] == "7d"
    assert [(n["node_key"], n["node_kind"], n["visits"]) for n in body["nodes"]] == [
        ("ask", "message", 0), ("small", "message", 0), ("large", "end", 0)]


def test_preset_periods_end_on_the_next_whole_second():
    now = datetime(2026, 5, 1, 10, 0, 0, 250_000, tzinfo=UTC)
    window = queries.parse_window({"period": "24h"}, now)
    assert window.end == datetime(2026, 5, 1, 10, 0, 1, tzinfo=UTC) and window.start == window.end - timedelta(hours=24)
    assert queries.parse_window({"period": "90d"}, window.end).end == window.end


def test_insights_need_an_api_key(client, org):
    response = client.get("/v1/automations/insights")
    assert response.status_code in (401, 403) and "error" in response.json()


def _plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("scope_kind", [ScopeKind.AUTOMATION, ScopeKind.ENTRYPOINT, ScopeKind.BINDING,
                                        ScopeKind.ORGANIZATION])
def test_executed_at_bounded_queries_touch_only_their_partitions(org, scope_kind):
    now = timezone.now()
    ensure_partitions(now, months_back=6, months_ahead=2)
    all_months = {partition_name(add_months(month_start(now), offset)) for offset in range(-6, 3)}
    window = Window("custom", datetime(now.year, now.month, 1, tzinfo=UTC) + timedelta(days=2),
                    datetime(now.year, now.month, 1, tzinfo=UTC) + timedelta(days=9))
    scope = Scope(scope_kind, "x_target", "auto_x")
    current = partition_name(window.start.date())
    for sql in (insights_store.NODES_SQL[scope_kind], insights_store.PORTS_SQL[scope_kind]):
        plan = _plan(sql, queries.step_params(scope, window))
        touched = {name for name in all_months if name in plan}
        assert touched == {current}, plan
    # a 90-day period touches the months it overlaps and no others
    wide = Window("90d", now - timedelta(days=90), now)
    plan = _plan(insights_store.NODES_SQL[scope_kind], queries.step_params(scope, wide))
    touched = {name for name in all_months if name in plan}
    overlapped = {partition_name(month_start(wide.start + timedelta(days=day))) for day in range(91)}
    assert touched == overlapped & all_months and len(touched) < len(all_months), plan
