"""Swagger UI (/v1/docs) and Redoc (/v1/redoc) in a real browser: they render every operation of
/v1/schema, log no console error, and fetch nothing but this server's own assets (drf-spectacular-sidecar
under STATIC_URL: no CDN, no fonts, no validator)."""

import pytest
from rest_framework.test import APIClient

REDOC_ATTRIBUTION_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def operation_ids():
    schema = APIClient().get("/v1/schema", {"format": "json"}).json()
    return {op["operationId"] for item in schema["paths"].values() for op in item.values()}


@pytest.fixture
def docs(browser_session):
    """The browser session, also recording every URL requested and the ones the page's
    Content-Security-Policy refused (never sent)."""
    browser_session.requests = []
    browser_session.refused = []
    browser_session.page.on("request", lambda request: browser_session.requests.append(request.url))
    browser_session.page.on("requestfailed", lambda request: request.failure == "csp"
                            and browser_session.refused.append(request.url))
    return browser_session


def sent_elsewhere(session) -> list[str]:
    """Requests that left for another host (blob: and data: URLs stay in the page)."""
    own = (session.base_url + "/", "blob:" + session.base_url, "data:")
    return [url for url in session.requests if not url.startswith(own) and url not in session.refused]


def test_root_redirects_to_swagger_ui_which_renders_every_operation(docs, operation_ids):
    page = docs.open("/")
    assert page.url == docs.base_url + "/v1/docs"
    page.wait_for_selector(".opblock", timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert page.locator(".opblock").count() == len(operation_ids) >= 40
    assert set(page.locator(".opblock-summary-operation-id").all_inner_texts()) == operation_ids
    assert page.locator(".auth-wrapper .authorize").count() == 1  # the bearer scheme's Authorize button
    assert docs.problems == []
    assert docs.refused == [] and sent_elsewhere(docs) == []
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in url for url in docs.requests)


def test_redoc_renders_every_operation(docs, operation_ids):
    page = docs.open("/v1/redoc")
    page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
    page.wait_for_load_state("networkidle")
    sections = page.locator("[data-section-id^='operation/']")
    rendered = {sections.nth(i).get_attribute("data-section-id").split("/", 1)[1] for i in range(sections.count())}
    assert rendered == operation_ids
    # Redoc's bundle always asks cdn.redoc.ly for its attribution logo; the page's policy refuses it in the
    # browser (no request sent; Redoc then drops the image), which the console reports.
    assert docs.refused == [REDOC_ATTRIBUTION_LOGO]
    assert [problem for problem in docs.problems if REDOC_ATTRIBUTION_LOGO not in problem] == []
    assert sent_elsewhere(docs) == []
    assert any("/static/drf_spectacular_sidecar/redoc/" in url for url in docs.requests)
