"""The strict CSP holds across the app: a walk through its main pages (home, a conversation, a room, profile,
search, the blocklist, the signed-out pages) in a real Chromium reports no CSP violation and no console error,
and /favicon.ico answers with an image."""

from __future__ import annotations

import re
import urllib.request

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ConsoleWatch, new_page, sign_up
from tests.e2e.test_chat_browser import DOMAIN, befriend, message, row, say

pytestmark = pytest.mark.e2e

# Every `securitypolicyviolation` event of every page the context opens is reported to the test, across
# navigations (a list on `window` would start empty again on each page).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolation({
    page: location.pathname,
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
  });
});
"""


class ViolationWatch:
    """The CSP violations and console errors of one browser context."""

    def __init__(self, page: Page, console: ConsoleWatch) -> None:
        self.violations: list[dict] = []
        self.console = console
        page.context.expose_binding("__cspViolation", lambda _source, report: self.violations.append(report))
        page.context.add_init_script(REPORT_VIOLATIONS)

    def assert_clean(self, where: str) -> None:
        assert self.violations == [], f"CSP violations ({where}): {self.violations}"
        assert self.console.errors == [], f"console errors ({where}): {self.console.errors}"


def watched_page(browser: Browser) -> tuple[Page, ViolationWatch]:
    page, console = new_page(browser)
    return page, ViolationWatch(page, console)


def settle(page: Page) -> None:
    """Let late work of the page (its WebSocket opening, htmx processing) happen before it is left."""
    page.wait_for_load_state("networkidle")


def test_a_walk_through_the_app_has_no_csp_violation_and_no_console_error(service, browser):
    walker, walk = watched_page(browser)
    friend, friend_walk = watched_page(browser)
    third, third_walk = watched_page(browser)

    # Signed out: the front page, log-in, sign-up, password reset.
    for path in ("/", "/accounts/login/", "/accounts/password/reset/"):
        walker.goto(service.url + path)
        settle(walker)
    sign_up(walker, service, "cspwalker")
    sign_up(friend, service, "cspfriend")
    sign_up(third, service, "cspthird")
    befriend(walker, "cspwalker", friend, "cspfriend")
    befriend(walker, "cspwalker", third, "cspthird")
    walk.assert_clean("home and contacts")

    # A conversation: messages both ways, a reaction, typing.
    walker.locator(f'#roster li[data-jid="cspfriend@{DOMAIN}"]').get_by_role("link", name="Message cspfriend").click()
    say(walker, "Hello from the **walk**")
    expect(walker).to_have_url(re.compile(r"/c/\d+/$"))
    row(friend, "cspwalker").locator("a").click()
    expect(message(friend, "Hello from the walk")).to_be_visible()
    say(friend, "hello back")
    answer = message(walker, "hello back")
    expect(answer).to_be_visible()
    answer.hover()
    answer.locator(".message__menu--react > summary").click()
    walker.get_by_role("button", name="React with 👍").click()
    expect(message(friend, "hello back").locator(".chip")).to_contain_text("1")

    # An edit, its box first made taller by dragging its corner (the browser then gives it an inline size, which
    # htmx must not copy onto the new message when the answer replaces it).
    mine = walker.locator(".message--mine[data-seq]").first
    mine.hover()
    mine.locator(".message__menu--edit > summary").click()
    edit_box = mine.locator("textarea[name=body]")
    corner = edit_box.bounding_box()
    walker.mouse.move(corner["x"] + corner["width"] - 3, corner["y"] + corner["height"] - 3)
    walker.mouse.down()
    walker.mouse.move(corner["x"] + corner["width"] - 3, corner["y"] + corner["height"] + 40, steps=5)
    walker.mouse.up()
    expect(edit_box).to_have_attribute("style", re.compile("height"))
    edit_box.fill("Hello from the walk, edited")
    mine.get_by_role("button", name="Save").click()
    expect(message(friend, "Hello from the walk, edited")).to_be_visible()
    settle(walker)
    walk.assert_clean("a conversation")

    # A room of three.
    walker.goto(service.url + "/")
    walker.locator(".room-create > summary").click()
    walker.locator(".room-create input[name=name]").fill("Walkers")
    walker.locator(".room-create").get_by_label("cspfriend").check()
    walker.locator(".room-create").get_by_label("cspthird").check()
    walker.get_by_role("button", name="Create room").click()
    expect(walker.locator("#pane-title")).to_have_text("#Walkers")
    say(walker, "welcome to the room")
    row(third, "Walkers").locator("a").click()
    expect(message(third, "welcome to the room")).to_be_visible()
    settle(walker)
    walk.assert_clean("a room")

    # Profile, search, the blocklist, the email page.
    walker.goto(service.url + "/accounts/profile/")
    expect(walker.locator("body")).to_contain_text("cspwalker")
    settle(walker)
    walker.fill("#topbar-search", "walk")
    walker.press("#topbar-search", "Enter")
    expect(walker.locator(".msgsearch-hit")).to_have_count(1)
    settle(walker)
    walker.goto(service.url + "/contacts/blocked")
    settle(walker)
    walker.goto(service.url + "/accounts/email/")
    settle(walker)
    walk.assert_clean("profile, search, blocklist, email")
    friend_walk.assert_clean("the friend's pages")
    third_walk.assert_clean("the third person's pages")


def test_favicon_ico_answers_with_an_image(service):
    # urllib follows a redirect; what arrives in the end must be the image, not the 404 page.
    with urllib.request.urlopen(service.url + "/favicon.ico", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("image/")
        assert response.read().lstrip().startswith((b"<svg", b"<?xml"))
