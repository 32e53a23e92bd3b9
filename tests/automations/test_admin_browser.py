"""The admin in a real browser (Playwright driving Debian's chromium): the automation page fits a 1400 px
wide window with its entrypoints and bindings inline."""

import os
from pathlib import Path

import pytest

from tests import factories

CHROMIUM = os.environ.get("RELAY_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
WINDOW = {"width": 1400, "height": 900}

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads what the test wrote


@pytest.fixture
def browser_page():
    """Request it after the fixtures that write to the database: Playwright's sync API runs an event loop in
    this thread, and Django refuses database calls while one runs."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (./relayctl test does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser.new_page(viewport=WINDOW)
        finally:
            browser.close()


def log_in(page, live_server, admin_user, next_url: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", "password")  # pytest-django's admin_user
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_url}")


def busy_automation(org, account):
    """An automation as operators have them: several nodes with config, entrypoints with keywords and
    filters, a binding."""
    nodes = [(f"step_{i}", "message", {"blocks": [{"type": "text", "text": f"Message number {i} " * 6,
                                                   "buttons": [{"id": "a", "type": "branch", "label": "A"}]}]})
             for i in range(4)]
    automation = factories.automation(org, factories.flow(nodes, [("step_0", "button.a", "step_1")]))
    for i in range(3):
        factories.entrypoint(automation, config={"keywords": [f"price{i}", f"cost{i}", "how much is it", "menu"],
                                                 "match_mode": "contains"},
                             filters={"all": [{"field": "tags", "op": "contains", "value": "vip-customers"}]},
                             social_account=account)
    factories.entrypoint(automation, kind="webhook_inbound", webhook_slug="k3v9x0q2m7w4b8n1c5z6r2t0")
    factories.binding(automation, account, config={"note": "default reply for everything else"})
    return automation


@pytest.fixture
def automation(org, account):
    return busy_automation(org, account)


def test_the_automation_page_fits_a_1400_px_window(live_server, admin_user, automation, browser_page):
    url = factories.admin_url(automation)
    log_in(browser_page, live_server, admin_user, url)
    assert browser_page.locator(".inline-group").count() == 2  # entrypoints and bindings are on the page
    assert "price0" in browser_page.content()
    width = browser_page.evaluate("document.documentElement.scrollWidth")
    assert width <= WINDOW["width"], f"the automation page is {width} px wide"

    browser_page.click("summary:has-text('Raw graph JSON')")  # the collapsed raw graph, opened
    assert browser_page.locator("pre:has-text('Message number 3')").is_visible()
    width = browser_page.evaluate("document.documentElement.scrollWidth")
    assert width <= WINDOW["width"], f"with the raw graph open the automation page is {width} px wide"
