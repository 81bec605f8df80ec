"""Browser-test fixtures: imweb started the way `make run` starts it, and the system Chromium via Playwright."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.servers import Service

CHROMIUM = "/usr/bin/chromium"
# How long to wait for a closed page to count as gone: its presence outlives it by a short grace
# (chat.consumers.LEAVING_GRACE_SECONDS), so that moving between pages shows no Offline blink.
LEAVING = 15_000
PASSWORD = "correct horse battery staple"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # A short path: the embedded Valkey's unix socket lives in it.
    service = Service(Path(tmp_path_factory.mktemp("svc"))).start()
    yield service
    code = service.stop()
    assert code == 0, f"the supervisor exited with {code}:\n{service.log()}"
    assert "all processes stopped" in service.log()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API runs an event loop, which must not outlive the browser tests
    # (Django refuses database access from a thread with a running loop).
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleWatch:
    """Collects console errors (CSP violations show up there) and page errors of one page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium logs every 4xx answer; 422 is how forms return a validation message, which tests expect.
        if message.type == "error" and "status of 422" not in message.text:
            self.errors.append(message.text)


def new_page(browser: Browser, *, width: int = 1280, height: int = 800) -> tuple[Page, ConsoleWatch]:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    page = context.new_page()
    return page, ConsoleWatch(page)


def sign_up(page: Page, service: Service, username: str) -> None:
    """Create an account through the sign-up form; the page ends signed in on the home page."""
    page.goto(service.url + "/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.org")
    page.fill("#id_password1", PASSWORD)
    page.get_by_role("button", name=re.compile("sign up", re.I)).click()
    expect(page.locator("body")).to_contain_text(f"{username.lower()}@imweb.localhost")
