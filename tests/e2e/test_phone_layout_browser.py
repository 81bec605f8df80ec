"""A phone (375x740): on every page of the app the top bar stays one line, the person's name shows (shortened
with an ellipsis when long), nothing makes the page scroll sideways; the account links live in a menu and the
search icon opens into the field."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PASSWORD, new_page
from tests.e2e.test_dashboard_browser import create_operator

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 740}
LONG_NAME = "Maximiliana Bartholomew-Featherstonehaugh"
# The bar's visible parts, each on the same line: every one overlaps every other vertically.
TOP_BAR = """() => {
  const bar = document.querySelector(".topbar__inner");
  const parts = [...bar.children].filter((el) => el.getClientRects().length).map((el) => el.getBoundingClientRect());
  const name = document.querySelector(".topbar__name");
  const box = name.getBoundingClientRect();
  return {
    height: bar.getBoundingClientRect().height,
    oneLine: Math.max(...parts.map((r) => r.top)) < Math.min(...parts.map((r) => r.bottom)),
    nameWidth: box.width,
    nameInside: box.left >= 0 && box.right <= innerWidth,
    whole: name.scrollWidth <= name.clientWidth,
    ellipsis: getComputedStyle(name).textOverflow === "ellipsis",
    overflow: document.documentElement.scrollWidth - innerWidth,
  };
}"""


def check(page: Page, where: str) -> None:
    page.wait_for_load_state("load")
    bar = page.evaluate(TOP_BAR)
    assert bar["oneLine"], f"{where}: the top bar wraps ({bar})"
    assert bar["height"] <= 60, f"{where}: the top bar is {bar['height']}px tall"
    shown = bar["whole"] or (bar["ellipsis"] and bar["nameWidth"] >= 60)  # all of it, or a good part and "…"
    assert shown and bar["nameInside"], f"{where}: the name is cut ({bar})"
    assert bar["overflow"] <= 0, f"{where}: the page is {bar['overflow']}px wider than the screen"


def test_every_page_fits_a_phone_with_a_one_line_top_bar(service, browser):
    create_operator(service, "opal")
    page, console = new_page(browser, **PHONE)
    page.goto(service.url + "/accounts/login/")
    page.fill("#id_login", "opal")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.locator(".topbar__name")).to_have_text("opal")
    check(page, "home")

    # A long name: shortened, never pushed off the bar.
    page.locator(".topbar__menu-button").click()
    page.get_by_role("link", name="Profile and settings").click()
    expect(page).to_have_url(re.compile(r"/accounts/profile/$"))
    page.fill("#id_display_name", LONG_NAME)
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator(".topbar__name")).to_have_text(LONG_NAME)
    check(page, "profile")

    # A conversation: a room started alone.
    page.goto(service.url + "/")
    page.get_by_text("New room", exact=True).click()
    page.locator(".room-create input[name=name]").fill("Pocket")
    page.get_by_role("button", name="Create room").click()
    expect(page.locator("#pane-title")).to_have_text("#Pocket")
    check(page, "a conversation")
    page.get_by_role("button", name="Back to conversations").click()
    page.get_by_role("button", name="New chat").click()
    check(page, "the New chat panel")

    # Search: the icon opens into the field (the name steps aside), Enter searches.
    page.locator("#topbar-search").click()
    expect(page.locator("#topbar-search")).to_be_focused()
    assert page.locator("#topbar-search").bounding_box()["width"] > 150
    page.locator("#topbar-search").fill("pocket")
    page.locator("#topbar-search").press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=pocket"))
    check(page, "search")

    for path in ["/chat/new", "/contacts/blocked", "/dashboard/"]:
        page.goto(service.url + path)
        check(page, path)
    dashboard_pages = page.evaluate(
        "() => [...new Set([...document.querySelectorAll('main a[href^=\"/dashboard/\"]')].map((a) => a.pathname))]"
    )
    for path in dashboard_pages[:6]:
        page.goto(service.url + path)
        check(page, path)

    # Sign out from the menu.
    page.locator(".topbar__menu-button").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".topbar").get_by_role("link", name="Log in")).to_be_visible()
    assert console.errors == []
