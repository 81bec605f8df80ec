"""A newcomer's contacts in real browsers: blocking a stranger from Requests takes both kinds of request away
in every open tab and for good; Message is offered for anyone (a person found, a contact who has not answered,
any typed address); a contact just added is in sight at once, at the top, not folded into Offline."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LEAVING, new_page, sign_up
from tests.e2e.test_chat_browser import message as sent
from tests.e2e.test_chat_browser import say

pytestmark = pytest.mark.e2e

DOMAIN = "imweb.localhost"
REMOTE_ADDRESS = "someone@prosody.example"


def contact(page: Page, jid: str):
    return page.locator(f'#roster li[data-jid="{jid}"]')


def add(page: Page, jid: str) -> None:
    page.fill("#add-contact-jid", jid)
    page.locator("form.add-contact").get_by_role("button", name="Add", exact=True).click()


def request_row(page: Page, title: str):
    return page.locator("#convlist-requests .convrow", has=page.locator(".convrow__title", has_text=title))


def message_an_address(page: Page, address: str) -> None:
    """The contact list's "Message an address" form (a plain GET form: it works without JavaScript too)."""
    page.locator("#roster summary", has_text="Message an address").click()
    page.fill("#message-address-to", address)
    page.locator("#roster form.roster__message-form").get_by_role("button", name="Message").click()


def test_blocking_from_requests_takes_both_kinds_away_in_every_tab_and_for_good(service, browser, output_dir):
    anna, anna_console = new_page(browser)
    sign_up(anna, service, "anna")
    anna_tab2 = anna.context.new_page()  # the same person in a second tab
    anna_tab2.goto(service.url + "/")
    ben, ben_console = new_page(browser)
    sign_up(ben, service, "ben")
    cleo, _ = new_page(browser)
    sign_up(cleo, service, "cleo")

    # Ben asks Anna to be a contact and writes to her; Cleo only writes. (The ways to start these chats from the
    # page are the next test's; going straight to the address keeps this one about blocking.)
    add(ben, f"anna@{DOMAIN}")
    expect(ben.locator("#contact-feedback")).to_contain_text(f"Request sent to anna@{DOMAIN}")
    ben.goto(f"{service.url}/chat/new?to=anna@{DOMAIN}")
    say(ben, "hi Anna, it's Ben")
    expect(sent(ben, "hi Anna, it's Ben")).to_be_visible()
    cleo.goto(f"{service.url}/chat/new?to=anna@{DOMAIN}")
    say(cleo, "cheap watches")
    expect(sent(cleo, "cheap watches")).to_be_visible()
    say(cleo, "very cheap")
    expect(sent(cleo, "very cheap")).to_be_visible()

    for page in (anna, anna_tab2):
        expect(page.locator("#requests")).to_contain_text(f"ben@{DOMAIN}")
        expect(request_row(page, "ben")).to_be_visible()
        expect(request_row(page, "cleo").locator(".convrow__unread")).to_have_attribute("data-unread", "2")
        expect(page.locator("#convlist-requests-count")).to_have_text("2")
    anna.screenshot(path=str(output_dir / "requests-before-block.png"), caret="initial")

    # A first message, blocked from the conversation list's Requests folder in the first tab.
    anna.once("dialog", lambda dialog: dialog.accept())
    request_row(anna, "cleo").get_by_role("button", name=f"Block cleo@{DOMAIN}").click()
    expect(anna.locator(".messages")).to_contain_text(f"Blocked cleo@{DOMAIN}")
    for page in (anna, anna_tab2):
        expect(request_row(page, "cleo")).to_have_count(0)
        expect(page.locator("#convlist-requests-count")).to_have_text("1")
        expect(request_row(page, "ben")).to_be_visible()

    # A contact request (who also wrote), blocked from the contacts' Requests in the second tab.
    anna_tab2.locator("#requests").get_by_role("button", name=f"Block ben@{DOMAIN}").click()
    expect(anna_tab2.locator("#contact-feedback")).to_contain_text(f"Blocked ben@{DOMAIN}")
    for page in (anna_tab2, anna):
        expect(page.locator("#requests")).to_be_hidden()
        expect(page.locator("#convlist-requests-section")).to_be_hidden()
        expect(page.locator("#conversations .convrow--request")).to_have_count(0)

    # Still gone after a reload, Accept buttons and unread badges with them.
    anna.reload()
    expect(anna.locator("body")).to_contain_text(f"anna@{DOMAIN}")
    expect(anna.locator("#requests")).to_be_hidden()
    expect(anna.locator("#convlist-requests-section")).to_be_hidden()
    expect(anna.get_by_role("button", name=re.compile(r"^Accept"))).to_have_count(0)
    expect(anna.locator("#conversations")).not_to_contain_text("cheap watches")
    anna.screenshot(path=str(output_dir / "requests-after-block.png"), caret="initial")

    assert anna_console.errors == []
    assert ben_console.errors == []


def test_anyone_can_be_messaged_from_the_finder_or_by_address(service, browser, output_dir):
    dan, dan_console = new_page(browser)
    sign_up(dan, service, "dan")
    eve, _ = new_page(browser)
    sign_up(eve, service, "eve")

    # The finder offers Message beside Add for a person found; the first message waits in Eve's Requests.
    dan.fill("#add-contact-jid", "eve")
    result = dan.locator("#search-results .search-result", has_text=f"eve@{DOMAIN}")
    expect(result.get_by_role("button", name=f"Add eve@{DOMAIN}")).to_be_visible()
    dan.screenshot(path=str(output_dir / "finder-message.png"), caret="initial")
    result.get_by_role("link", name=f"Message eve@{DOMAIN}").click()
    expect(dan.locator("#pane-title")).to_have_text(re.compile(f"eve@{DOMAIN}|eve"))
    say(dan, "hello Eve, we met at the meetup")
    expect(sent(dan, "hello Eve, we met at the meetup")).to_be_visible()
    expect(eve.locator("#convlist-requests")).to_contain_text("hello Eve, we met at the meetup")

    # Any full address, on another server too, from the finder...
    dan.goto(service.url + "/")
    dan.fill("#add-contact-jid", REMOTE_ADDRESS)
    dan.locator("#search-results").get_by_role("link", name=f"Message {REMOTE_ADDRESS}").click()
    expect(dan).to_have_url(re.compile(r"/chat/new\?to=someone%40prosody\.example$"))
    expect(dan.locator("#pane-title")).to_have_text(REMOTE_ADDRESS)
    expect(dan.locator("#composer-body")).to_be_visible()

    # ...or from "Message an address" in the contact list.
    dan.goto(service.url + "/")
    message_an_address(dan, REMOTE_ADDRESS)
    expect(dan.locator("#pane-title")).to_have_text(REMOTE_ADDRESS)
    expect(dan.locator("#composer-body")).to_be_visible()

    assert dan_console.errors == []


def test_a_contact_just_added_is_in_sight_at_once_in_every_tab(service, browser, output_dir):
    finn, finn_console = new_page(browser)
    sign_up(finn, service, "finn")
    finn_tab2 = finn.context.new_page()
    finn_tab2.goto(service.url + "/")
    gus, _ = new_page(browser)
    sign_up(gus, service, "gus")
    hal, _ = new_page(browser)
    sign_up(hal, service, "hal")

    # Finn already has a contact who is offline, so the folded Offline group exists.
    add(finn, f"gus@{DOMAIN}")
    gus.get_by_role("button", name=f"Accept finn@{DOMAIN}").click()
    expect(contact(finn, f"gus@{DOMAIN}")).to_have_attribute("data-show", "available")
    gus.context.close()
    expect(contact(finn, f"gus@{DOMAIN}")).to_have_attribute("data-show", "offline", timeout=LEAVING)
    expect(finn.locator('#roster details[data-group="Offline"]')).not_to_have_attribute("open", "")

    # Finn adds Hal: Hal's row is visible at once, first in the list, in both tabs, with a way to write to him.
    add(finn, f"hal@{DOMAIN}")
    expect(finn.locator("#contact-feedback")).to_contain_text(f"Request sent to hal@{DOMAIN}")
    for page in (finn, finn_tab2):
        row = contact(page, f"hal@{DOMAIN}")
        expect(row).to_be_visible()
        expect(row).to_contain_text("waiting for them to accept")
        expect(page.locator("#roster li.contact").first).to_have_attribute("data-jid", f"hal@{DOMAIN}")
        expect(page.locator("#roster .roster__group--waiting")).to_contain_text("Waiting for an answer")
        expect(row.get_by_role("link", name="Message hal")).to_be_visible()
    finn.screenshot(path=str(output_dir / "contact-just-added.png"), caret="initial")

    # Once Hal accepts, he leaves the waiting group for the list proper, live.
    hal.get_by_role("button", name=f"Accept finn@{DOMAIN}").click()
    for page in (finn, finn_tab2):
        expect(contact(page, f"hal@{DOMAIN}")).to_have_attribute("data-show", "available")
        expect(page.locator("#roster .roster__group--waiting")).to_have_count(0)

    assert finn_console.errors == []
