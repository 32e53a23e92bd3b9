"""The admin's pictures in a real browser (Chromium through Playwright), logged in as staff: the
automation page's graph has one box per node with its visits, the charts render, the run page
highlights the run's path and current node, the pictures fit in 1400 px, and nothing on the pages
logs an error. Screenshots of each picture are kept in test-artifacts/browser/."""

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.utils import timezone

from automations.graph.service import save_graph
from automations.models import AutomationRun
from automations.runtime.resume import resume_waiting
from automations.runtime.runner import load_run
from automations.runtime.runs import stop_run
from tests import factories
from tests.automations.test_insights_api import started

pytestmark = pytest.mark.django_db(transaction=True)

USERNAME, PASSWORD = "staff", "a-browser-test-password"


def buttons(text, *ids):
    return {"blocks": [{"type": "text", "text": text,
                        "buttons": [{"id": i, "type": "branch", "label": i.title()} for i in ids]}]}


def say(text):
    return {"blocks": [{"type": "text", "text": text}]}


GRAPH = factories.flow(
    [("ask", "message", buttons("Small or large?", "small", "large")),
     ("small", "message", say("Small is 5 EUR")),
     ("large", "message", say("Large is 9 EUR")),
     ("upsell", "message", buttons("Add a drink?", "yes", "no")),
     ("thanks", "end", {}),
     ("declined", "end", {"reason": "declined_upsell"})],
    [("ask", "button.small", "small"), ("ask", "button.large", "large"), ("small", "next", "thanks"),
     ("large", "next", "upsell"), ("upsell", "button.yes", "thanks"), ("upsell", "button.no", "declined")])


@pytest.fixture
def shop(django_user_model):
    """24 runs over the last week: answered both ways, upsold or not, stopped, still waiting."""
    django_user_model.objects.create_superuser(USERNAME, "staff@example.com", PASSWORD)
    org = factories.organization()
    account = factories.social_account(org)
    automation = factories.automation(org, name="Price bot", status="active")
    save_graph(automation, GRAPH)
    assert not automation.graph_errors, automation.graph_errors
    runs = [started(automation, account) for _ in range(24)]
    for run in runs[:8]:
        assert resume_waiting(load_run(run.pk), "button.small")
    for run in runs[8:18]:
        assert resume_waiting(load_run(run.pk), "button.large")
    for run in runs[8:13]:
        assert resume_waiting(load_run(run.pk), "button.yes")
    for run in runs[13:16]:
        assert resume_waiting(load_run(run.pk), "button.no")
    for run in runs[18:21]:
        assert stop_run(AutomationRun.objects.get(pk=run.pk))
    now = timezone.now()
    for index, run in enumerate(runs):  # spread the starts over the week for the chart
        AutomationRun.objects.filter(pk=run.pk).update(started_at=now - timedelta(days=index % 7, hours=index % 5))
    upselling = runs[16]  # ask → large → upsell, waiting there
    return {"automation": f"/admin/automations/automation/{quote(automation.pk)}/change/",
            "run": f"/admin/automations/automationrun/{quote(upselling.pk)}/change/"}


def check_width(locator):
    box = locator.bounding_box()
    assert box and 0 < box["width"] <= 1400 and box["height"] > 0, box


def test_automation_page_draws_graph_and_charts(shop, browser_session, artifacts):
    browser_session.log_in(USERNAME, PASSWORD)
    page = browser_session.open(shop["automation"])
    graph = page.locator("svg.relay-graph")
    check_width(graph)
    assert graph.locator("g.node").count() == 6
    assert graph.locator("g.node.root").get_attribute("data-node-key") == "ask"
    visits = {node.get_attribute("data-node-key"): int(node.get_attribute("data-visits"))
              for node in graph.locator("g.node").all()}
    assert visits == {"ask": 24, "small": 8, "large": 10, "upsell": 10, "thanks": 13, "declined": 3}
    assert graph.locator('g.node[data-node-key="ask"]').get_attribute("data-dropoff") == "3"  # the stopped runs
    assert graph.locator("g.edge:not(.edge-label)").count() == 6
    assert graph.locator('g.node[data-node-key="ask"] rect').first.is_visible()
    runs_chart = page.locator("svg.relay-runs-chart")
    check_width(runs_chart)
    bars = runs_chart.locator("g.bar")
    assert bars.count() in (7, 8)
    assert sum(int(bar.get_attribute("data-started")) for bar in bars.all()) == 24
    assert runs_chart.locator("g.bar rect.completed").count() > 0
    exits = page.locator("svg.relay-exit-chart")
    check_width(exits)
    reasons = {r.get_attribute("data-reason"): int(r.get_attribute("data-count"))
               for r in exits.locator("g.reason").all()}
    assert reasons == {"completed": 13, "declined_upsell": 3, "admin_stopped": 3}
    page.screenshot(path=artifacts / "automation-page.png", full_page=True)
    graph.screenshot(path=artifacts / "automation-graph.png")
    runs_chart.screenshot(path=artifacts / "runs-over-time.png")
    exits.screenshot(path=artifacts / "exit-reasons.png")
    # another period re-draws from the same queries
    page = browser_session.open(shop["automation"] + "?period=24h")
    assert page.locator("svg.relay-runs-chart g.bar").count() in (24, 25)
    assert not browser_session.problems, browser_session.problems


def test_run_page_highlights_the_path_and_current_node(shop, browser_session, artifacts):
    browser_session.log_in(USERNAME, PASSWORD)
    page = browser_session.open(shop["run"])
    graph = page.locator("svg.relay-graph")
    check_width(graph)
    assert graph.locator("g.node").count() == 6
    on_path = {n.get_attribute("data-node-key") for n in graph.locator("g.node.on-path").all()}
    assert on_path == {"ask", "large", "upsell"}
    assert graph.locator("g.node.current").get_attribute("data-node-key") == "upsell"
    taken = {(e.get_attribute("data-from"), e.get_attribute("data-port"))
             for e in graph.locator("g.edge.on-path:not(.edge-label)").all()}
    assert taken == {("ask", "button.large"), ("large", "next")}
    # drawn as highlighted by the browser, not only classed: the stylesheet inside the SVG applies
    stroke = graph.locator('g.node[data-node-key="large"] rect').evaluate("r => getComputedStyle(r).stroke")
    plain = graph.locator('g.node[data-node-key="small"] rect').evaluate("r => getComputedStyle(r).stroke")
    current = graph.locator('g.node[data-node-key="upsell"] rect').evaluate("r => getComputedStyle(r).stroke")
    assert stroke == "rgb(21, 101, 192)" and plain != stroke and current == "rgb(255, 111, 0)"
    graph.screenshot(path=artifacts / "run-path.png")
    page.screenshot(path=artifacts / "run-page.png", full_page=True)
    assert not browser_session.problems, browser_session.problems


def test_scheduler_health_page_renders(shop, browser_session, artifacts):
    browser_session.log_in(USERNAME, PASSWORD)
    page = browser_session.open("/admin/automations/schedulertick/")
    assert page.locator("#backlog-by-kind td.count").count() == 6
    assert "No tick recorded yet" in page.locator("#tick-state").inner_text()
    page.screenshot(path=artifacts / "scheduler-health.png", full_page=True)
    assert not browser_session.problems, browser_session.problems
