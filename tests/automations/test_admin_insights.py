"""The admin's pictures as served (server-side SVG): the automation page's graph with visits and
drop-off per node and its two charts, the run page's path; the browser tests check the same in Chromium."""

import re

import pytest

from automations.graph.service import save_graph
from automations.insights import svg
from automations.models import AutomationRun
from automations.runtime.resume import resume_waiting
from automations.runtime.runner import load_run
from automations.runtime.runs import stop_run
from tests import factories
from tests.automations.test_insights_api import GRAPH, started

pytestmark = pytest.mark.django_db


def nodes_drawn(html: str) -> dict[str, str]:
    """data-node-key → the node group's class attribute."""
    return {key: classes for classes, key in re.findall(r'<g class="(node[^"]*)" data-node-key="([^"]+)"', html)}


@pytest.fixture
def answered(org, account):
    automation = factories.automation(org, status="active")
    save_graph(automation, GRAPH)
    runs = [started(automation, account) for _ in range(4)]
    assert resume_waiting(load_run(runs[0].pk), "button.s")
    assert resume_waiting(load_run(runs[1].pk), "button.l")
    assert stop_run(AutomationRun.objects.get(pk=runs[2].pk))
    return automation, [AutomationRun.objects.get(pk=r.pk) for r in runs]


def test_automation_page_draws_the_graph_with_visits_dropoff_and_charts(admin_client, answered):
    automation, runs = answered
    html = admin_client.get(factories.admin_url(automation) + "?period=24h").content.decode()
    assert nodes_drawn(html) == {"ask": "node root", "small": "node", "large": "node"}
    stats = {key: (int(visits), int(dropoff)) for key, visits, dropoff in re.findall(
        r'data-node-key="([^"]+)" data-kind="[^"]+" data-visits="(\d+)" data-dropoff="(\d+)"', html)}
    assert stats == {"ask": (4, 1), "small": (1, 0), "large": (1, 0)}  # the stopped run dropped off at "ask"
    edges = set(re.findall(r'<g class="edge[^"]*" data-from="([^"]+)" data-port="([^"]+)" data-to="([^"]+)"', html))
    assert edges == {("ask", "button.s", "small"), ("ask", "button.l", "large")}
    assert 'data-period="24h"' in html and "relay-runs-chart" in html and "relay-exit-chart" in html
    bars = re.findall(r'<g class="bar" data-bucket="[^"]+" data-started="(\d+)"', html)
    assert len(bars) in (24, 25) and sum(map(int, bars)) == 4
    reasons = dict(re.findall(r'data-reason="([^"]+)" data-count="(\d+)"', html))
    assert reasons == {"completed": "1", "went_large": "1", "admin_stopped": "1"}
    for width in re.findall(r'<svg [^>]*width="(\d+)"', html):
        assert int(width) <= 1400


def test_invalid_nodes_are_highlighted_and_unknown_periods_fall_back(admin_client, org):
    automation = factories.automation(org)
    save_graph(automation, {**GRAPH, "edges": [*GRAPH["edges"], {"from_node": "small", "from_port": "sideways",
                                                                 "to_node": "large", "to_port": "in"}]})
    html = admin_client.get(factories.admin_url(automation) + "?period=nope").content.decode()
    assert "invalid" in nodes_drawn(html)["small"] and "invalid" not in nodes_drawn(html)["ask"]
    assert 'data-period="7d"' in html and "No finished runs in this period." in html


def test_run_page_highlights_the_path_and_the_current_node(admin_client, answered):
    _automation, runs = answered
    done = admin_client.get(factories.admin_url(runs[0])).content.decode()
    assert nodes_drawn(done) == {"ask": "node root on-path", "small": "node on-path current", "large": "node"}
    taken = re.findall(r'<g class="edge on-path" data-from="([^"]+)" data-port="([^"]+)"', done)
    assert taken == [("ask", "button.s")]
    waiting = admin_client.get(factories.admin_url(runs[3])).content.decode()
    assert nodes_drawn(waiting) == {"ask": "node root on-path current", "small": "node", "large": "node"}
    assert 'class="edge on-path"' not in waiting


def test_graph_text_is_escaped_and_wide_layers_wrap_within_the_width():
    nodes = [{"key": "root", "kind": "randomizer", "config": {}}] + [
        {"key": f"<b{i}>", "kind": "message", "config": {}} for i in range(15)]
    edges = [{"from_node": "root", "from_port": f"p{i}", "to_node": f"<b{i}>"} for i in range(15)]
    drawn = str(svg.graph_svg({"nodes": nodes, "edges": edges, "root_node_key": "root"}))
    assert "<b0>" not in drawn and "&lt;b0&gt;" in drawn
    assert int(re.search(r'width="(\d+)"', drawn).group(1)) <= 1400
    assert drawn.count('<g class="node') == 16
