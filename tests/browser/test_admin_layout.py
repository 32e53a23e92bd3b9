"""The automation page in a real browser at 1400 px, logged in as staff, with its entrypoints and bindings
inline (the entrypoint rows alone made it 1850 px wide): nothing overflows the window, with the raw graph
closed or open."""

import pytest
from django.contrib.admin.utils import quote

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads what the test wrote

USERNAME, PASSWORD = "staff", "a-layout-test-password"
WINDOW = {"width": 1400, "height": 900}


@pytest.fixture
def busy_automation(django_user_model):
    """An automation as operators have them: several nodes with config, entrypoints with keywords and
    filters (a webhook one with its slug), a binding. Requested before the browser: Playwright's sync API
    runs an event loop in this thread, and Django refuses database calls while one runs."""
    django_user_model.objects.create_superuser(USERNAME, "staff@example.com", PASSWORD)
    org = factories.organization()
    account = factories.social_account(org)
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
    return f"/admin/automations/automation/{quote(automation.pk)}/change/"


def test_the_automation_page_fits_a_1400_px_window(busy_automation, browser_session, artifacts):
    browser_session.page.set_viewport_size(WINDOW)
    browser_session.log_in(USERNAME, PASSWORD)
    page = browser_session.open(busy_automation)
    assert page.locator("#entrypoints-group tr.has_original").count() == 4
    assert page.locator("#bindings-group tr.has_original").count() == 1
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=artifacts / "automation-page-1400.png", full_page=True)
    assert width <= WINDOW["width"], f"the automation page is {width} px wide"

    page.click("summary:has-text('Raw graph JSON')")  # the collapsed raw graph, opened
    assert page.locator("pre:has-text('Message number 3')").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WINDOW["width"], f"with the raw graph open the automation page is {width} px wide"
    assert not browser_session.problems, browser_session.problems
