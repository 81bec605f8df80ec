"""Two people in two browsers: consent, live presence and status, going offline, and blocking."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LEAVING, new_page, sign_up

pytestmark = pytest.mark.e2e


def contact(page: Page, jid: str):
    return page.locator(f'#roster li[data-jid="{jid}"]')


def open_offline_group(page: Page) -> None:
    """Offline contacts are collapsed at the bottom of the list."""
    page.locator('#roster details[data-group="Offline"] > summary').click()


def add(page: Page, jid: str) -> None:
    page.fill("#add-contact-jid", jid)
    page.locator("form.add-contact").get_by_role("button", name="Add", exact=True).click()


def test_two_people_add_each_other_see_presence_live_and_block(service, browser, output_dir):
    anna, anna_console = new_page(browser)
    ben, ben_console = new_page(browser)
    sign_up(anna, service, "anna")
    sign_up(ben, service, "ben")

    # Anna asks Ben; Ben sees the request live (no reload) and accepts.
    add(anna, "ben@imweb.localhost")
    expect(anna.locator("#contact-feedback")).to_contain_text("Request sent to ben@imweb.localhost")
    expect(contact(anna, "ben@imweb.localhost")).to_contain_text("waiting for them to accept")
    expect(ben.locator("#requests")).to_contain_text("anna@imweb.localhost")
    ben.get_by_role("button", name="Accept anna@imweb.localhost").click()

    # Both now see each other online, on both sides, without reloading.
    expect(contact(anna, "ben@imweb.localhost")).to_have_attribute("data-show", "available")
    expect(contact(ben, "anna@imweb.localhost")).to_have_attribute("data-show", "available")
    expect(ben.locator("#requests")).to_be_hidden()

    # Ben goes "away: at lunch"; Anna sees it live.
    ben.select_option("#my-presence-show", "away")
    ben.fill("#my-presence-status", "at lunch")
    ben.locator("#my-presence").get_by_role("button", name="Set").click()
    expect(contact(anna, "ben@imweb.localhost")).to_have_attribute("data-show", "away")
    expect(contact(anna, "ben@imweb.localhost")).to_contain_text("at lunch")
    # A reload re-renders everything from the database: the same state comes back.
    anna.reload()
    expect(contact(anna, "ben@imweb.localhost")).to_contain_text("at lunch")
    anna.screenshot(path=str(output_dir / "contacts.png"), caret="initial")

    # Ben closes the page: Anna sees him offline (the socket close is the signal).
    ben.context.close()
    # After a short grace (a page going away is usually followed by the next page: no Offline blink).
    expect(contact(anna, "ben@imweb.localhost")).to_have_attribute("data-show", "offline", timeout=LEAVING)
    expect(contact(anna, "ben@imweb.localhost")).to_contain_text(re.compile("Last seen"))

    # Anna blocks Ben. Ben comes back, removes Anna and asks again: he is told no such account exists,
    # and nothing reaches Anna. A later request from Cleo does show, so Anna's page is live and Ben's never came.
    open_offline_group(anna)
    contact(anna, "ben@imweb.localhost").locator("summary").first.click()
    anna.once("dialog", lambda dialog: dialog.accept())
    contact(anna, "ben@imweb.localhost").get_by_role("button", name="Block").click()
    expect(anna.locator("#contact-feedback")).to_contain_text("Blocked ben@imweb.localhost")

    ben, ben_console = new_page(browser)
    ben.goto(service.url + "/accounts/login/")
    ben.fill("#id_login", "ben")
    ben.fill("#id_password", "correct horse battery staple")
    ben.get_by_role("button", name=re.compile("log in|sign in", re.I)).click()
    expect(contact(ben, "anna@imweb.localhost")).to_have_attribute("data-show", "unknown")
    open_offline_group(ben)
    contact(ben, "anna@imweb.localhost").locator("summary").first.click()
    ben.once("dialog", lambda dialog: dialog.accept())
    contact(ben, "anna@imweb.localhost").get_by_role("button", name="Remove").click()
    expect(contact(ben, "anna@imweb.localhost")).to_have_count(0)
    add(ben, "anna@imweb.localhost")
    expect(ben.locator("#contact-feedback")).to_contain_text("There is no account anna@imweb.localhost")

    cleo, _ = new_page(browser)
    sign_up(cleo, service, "cleo")
    add(cleo, "anna@imweb.localhost")
    expect(anna.locator("#requests")).to_contain_text("cleo@imweb.localhost")
    expect(anna.locator("#requests")).not_to_contain_text("ben@imweb.localhost")

    assert anna_console.errors == []
    assert ben_console.errors == []


def test_groups_collapse_with_online_counts(service, browser):
    dana, _ = new_page(browser)
    eli, _ = new_page(browser)
    sign_up(dana, service, "dana")
    sign_up(eli, service, "eli")
    add(dana, "eli@imweb.localhost")
    eli.get_by_role("button", name="Accept dana@imweb.localhost").click()
    expect(contact(dana, "eli@imweb.localhost")).to_have_attribute("data-show", "available")

    row = contact(dana, "eli@imweb.localhost")
    row.locator("summary").first.click()
    row.locator('input[name="groups"]').fill("Climbing, Friends")
    row.locator('input[name="groups"]').press("Enter")
    climbing = dana.locator('#roster details[data-group="Climbing"]')
    expect(climbing).to_contain_text("1/1")
    expect(dana.locator('#roster details[data-group="Friends"]')).to_contain_text("1/1")

    eli.context.close()
    expect(climbing).to_contain_text("0/1", timeout=LEAVING)
    expect(dana.locator('#roster details[data-group="Offline"]')).to_contain_text("eli")


def test_an_idle_browser_goes_away_automatically_and_comes_back_on_input(service, browser):
    fay, _ = new_page(browser)
    gus, _ = new_page(browser)
    sign_up(fay, service, "fay")
    gus.clock.install()  # Gus's page runs on a clock the test can move forward
    sign_up(gus, service, "gus")
    add(fay, "gus@imweb.localhost")
    gus.get_by_role("button", name="Accept fay@imweb.localhost").click()
    expect(contact(fay, "gus@imweb.localhost")).to_have_attribute("data-show", "available")

    gus.clock.fast_forward("06:00")  # past the default 5 idle minutes, with no input

    expect(contact(fay, "gus@imweb.localhost")).to_have_attribute("data-show", "away")
    expect(gus.locator("#my-presence-state")).to_contain_text("Away (idle)")
    gus.mouse.move(40, 40)
    gus.mouse.move(80, 80)
    expect(contact(fay, "gus@imweb.localhost")).to_have_attribute("data-show", "available")


def test_a_second_tab_follows_presence_chosen_in_the_first(service, browser):
    first, console = new_page(browser)
    sign_up(first, service, "hana")
    second = first.context.new_page()  # same browser profile: the same signed-in user
    second.goto(service.url)
    expect(second.locator("#my-presence-state")).to_have_attribute("data-show", "available")

    first.select_option("#my-presence-show", "dnd")

    expect(second.locator("#my-presence-state")).to_have_attribute("data-show", "dnd")
    expect(second.locator("#my-presence-show")).to_have_value("dnd")
    assert console.errors == []


def test_a_status_typed_while_a_change_is_in_flight_is_the_one_saved(service, browser):
    page, console = new_page(browser)
    sign_up(page, service, "ivo")
    held = []  # the first presence request is held back until the status has been typed and Set clicked

    def hold_first(route):
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/contacts/presence", hold_first)
    with page.expect_request("**/contacts/presence"):
        page.select_option("#my-presence-show", "away")
    page.fill("#my-presence-status", "at lunch")
    page.locator("#my-presence").get_by_role("button", name="Set").click()  # queued behind the first request

    # The first change reaches the server now; its push lands while the typed status is still unsaved.
    answer = held[0].fetch()
    expect(page.locator("#my-presence-state")).to_have_attribute("data-show", "away")
    held[0].fulfill(response=answer)

    expect(page.locator("#my-presence-state")).to_have_attribute("data-status", "at lunch")
    expect(page.locator("#my-presence-status")).to_have_value("at lunch")
    assert console.errors == []
