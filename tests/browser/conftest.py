"""Browser tests: Playwright (PyPI) driving the system's Chromium (Playwright's own browser download is
not used). Screenshots go to test-artifacts/browser/ (git-ignored), kept after the run."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RELAY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which(CHROMIUM)
    assert path, (f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` (./relayctl test does this "
                  "when it runs as root), or point RELAY_CHROMIUM at a Chromium binary")
    return path


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class BrowserSession:
    """One page with every console error, page error and failed request recorded."""

    def __init__(self, page, base_url):
        self.page = page
        self.base_url = base_url
        self.problems = []
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", lambda request: self.problems.append(f"request failed: {request.url}"))
        page.on("response", lambda response: response.status >= 400
                and self.problems.append(f"HTTP {response.status}: {response.url}"))

    def open(self, path):
        response = self.page.goto(self.base_url + path)
        assert response.status == 200, (path, response.status)
        return self.page

    def log_in(self, username, password):
        page = self.open("/admin/login/?next=/admin/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url(self.base_url + "/admin/")


@pytest.fixture
def browser_session(chromium_path, live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            yield BrowserSession(page, live_server.url)
        finally:
            browser.close()
