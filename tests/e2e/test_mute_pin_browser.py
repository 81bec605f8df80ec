"""Mute, pin and mark as unread in real browsers: one person with two tabs and two people writing to them. What
one tab does shows in the other at once and stays after a reload; a muted conversation makes no notification
while another does; the row menus work from the keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ConsoleWatch, new_page, sign_up
from tests.e2e.test_chat_browser import NOTIFICATION_RECORDER, befriend, chatting, row, say

pytestmark = pytest.mark.e2e


def choose(page: Page, title: str, action: str) -> None:
    """Open a row's "⋯" menu and pick `action`."""
    menu = row(page, title).locator(".convrow__menu")
    menu.locator("summary").click()
    menu.get_by_role("button", name=action, exact=True).click()


@pytest.fixture(scope="module")
def people(service, browser):
    """Ann in two tabs of one browser (both on the home page, notifications recorded), Ben and Cat each in a
    conversation with her: (ann's first tab, her second, ben's page, cat's page, the consoles of Ann's tabs)."""
    ben, _, ann = chatting(service, browser, "ben", "ann", "hi ann")
    cat, _ = new_page(browser)
    sign_up(cat, service, "cat")
    befriend(cat, "cat", ann, "ann")
    cat.locator('#roster li[data-jid="ann@imweb.localhost"]').get_by_role("link", name="Message ann").click()
    say(cat, "hello from cat")
    expect(row(ann, "cat")).to_be_visible()
    ann.context.add_init_script(NOTIFICATION_RECORDER)
    ann.goto(ann.url.split("/c/")[0] + "/")
    second = ann.context.new_page()
    consoles = [ConsoleWatch(ann), ConsoleWatch(second)]
    second.goto(ann.url)
    for page in (ann, second):
        expect(row(page, "ben")).to_be_visible()
        expect(row(page, "cat")).to_be_visible()
    return ann, second, ben, cat, consoles


def test_muting_in_one_tab_shows_in_the_other_and_silences_only_that_conversation(people):
    ann, second, ben, cat, consoles = people

    choose(ann, "ben", "Mute")

    for page in (ann, second):
        expect(row(page, "ben").locator(".convrow__muted")).to_be_visible()
        expect(row(page, "ben").locator(".convrow__muted")).to_have_attribute("title", "Muted")
        expect(row(page, "cat").locator(".convrow__muted")).to_be_hidden()
    say(ben, "are you there?")
    expect(row(second, "ben").locator(".convrow__unread")).to_have_text(re.compile(r"^1\b"))  # counted on its row
    say(cat, "ping")
    second.wait_for_function("() => window.__notes.length > 0")
    expect(row(second, "cat").locator(".convrow__unread")).to_have_text(re.compile(r"^2\b"))
    expect(second).to_have_title("(2) imweb")  # Cat's two, not Ben's muted one
    assert {note["title"] for note in second.evaluate("window.__notes")} == {"cat"}

    second.reload()
    expect(row(second, "ben").locator(".convrow__muted")).to_be_visible()
    choose(second, "ben", "Unmute")
    expect(row(ann, "ben").locator(".convrow__muted")).to_be_hidden()
    assert all(console.errors == [] for console in consoles)


def test_pinning_moves_the_row_to_the_top_in_both_tabs_and_survives_a_reload(people):
    ann, second, _, cat, consoles = people
    say(cat, "newest")  # Cat's conversation is the most recent one
    expect(second.locator("#convlist-chats .convrow").first).to_contain_text("cat")

    choose(second, "ben", "Pin")

    for page in (ann, second):
        expect(page.locator("#convlist-pinned-section")).to_be_visible()
        expect(page.locator("#convlist-pinned .convrow")).to_have_count(1)
        expect(page.locator("#conversations .convrow").first).to_contain_text("ben")
    say(cat, "still newer")  # a new message moves Cat to the top of the others, not above the pinned
    expect(row(ann, "cat").locator(".convrow__preview")).to_contain_text("still newer")
    expect(ann.locator("#conversations .convrow").first).to_contain_text("ben")
    ann.reload()
    expect(ann.locator("#convlist-pinned .convrow")).to_contain_text("ben")
    expect(ann.locator("#conversations .convrow").first).to_contain_text("ben")
    assert all(console.errors == [] for console in consoles)


def test_mark_as_unread_from_the_keyboard_shows_a_dot_until_the_conversation_is_opened(people):
    ann, second, _, _, consoles = people
    row(second, "ben").locator("a").click()  # read what Ben wrote
    expect(second.locator("#pane-title")).to_contain_text("ben")
    second.goto(second.url.split("/c/")[0] + "/")
    expect(row(ann, "ben").locator(".convrow__unread")).to_be_hidden()

    summary = row(ann, "ben").locator(".convrow__menu summary")
    summary.focus()
    summary.press("Enter")
    mark = row(ann, "ben").get_by_role("button", name="Mark as unread")
    expect(mark).to_be_visible()
    mark.focus()
    mark.press("Enter")

    for page in (ann, second):
        expect(row(page, "ben").locator(".convrow__dot")).to_be_visible()
    second.reload()
    expect(row(second, "ben").locator(".convrow__dot")).to_be_visible()
    row(second, "ben").locator("a").click()  # opening it
    expect(second.locator("#pane-title")).to_contain_text("ben")
    expect(row(second, "ben").locator(".convrow__dot")).to_be_hidden()
    expect(row(ann, "ben").locator(".convrow__dot")).to_be_hidden()  # the other tab, live
    assert all(console.errors == [] for console in consoles)
