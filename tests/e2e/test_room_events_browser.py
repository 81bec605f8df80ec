"""Room events in real browsers: three people, an invitation, a topic and someone leaving each show up as a line
of the room's history, live in the other people's open tabs, and are still there after a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import new_page, sign_up
from tests.e2e.test_chat_browser import DOMAIN, befriend, row, say

pytestmark = pytest.mark.e2e


def line(page: Page, text: str):
    """A room event as the open conversation shows it: a line of its own, not a message bubble."""
    return page.locator(".convo__messages .message--event", has_text=text)


def room_menu(page: Page):
    """The open room's settings, opened (a push that redraws the header closes them)."""
    menu = page.locator("details.convo__room")
    if not menu.evaluate("details => details.open"):
        menu.locator("summary").click()
    return menu


def test_invite_topic_and_leaving_show_live_as_lines_and_stay_after_a_reload(service, browser):
    gil, gil_console = new_page(browser)
    hal, hal_console = new_page(browser)
    ivy, _ = new_page(browser)
    for page, name in ((gil, "gil"), (hal, "hal"), (ivy, "ivy")):
        sign_up(page, service, name)
    befriend(gil, "gil", hal, "hal")
    befriend(gil, "gil", ivy, "ivy")

    # Gil starts a room with Hal; both have it open.
    gil.locator(".room-create > summary").click()
    gil.locator(".room-create input[name=name]").fill("Crag")
    gil.locator(".room-create").get_by_label("hal").check()
    gil.get_by_role("button", name="Create room").click()
    expect(gil.locator("#pane-title")).to_have_text("#Crag")
    expect(line(gil, "gil created the room “Crag”")).to_be_visible()
    row(hal, "Crag").locator("a").click()
    expect(line(hal, "gil created the room “Crag”")).to_be_visible()
    say(hal, "who's coming?")
    expect(gil.locator(".message", has_text="who's coming?")).to_be_visible()

    # Gil invites Ivy: Hal's open tab shows it at once, below Hal's message.
    room_menu(gil).locator("select[name=jid]").select_option(f"ivy@{DOMAIN}")
    room_menu(gil).get_by_role("button", name="Invite").click()
    expect(line(hal, "gil invited ivy")).to_be_visible()
    expect(line(gil, "gil invited ivy")).to_be_visible()
    expect(hal.locator(".convo__messages .message[data-seq]").last).to_contain_text("gil invited ivy")

    # Gil sets the topic: everyone's tab shows it, and it counts as unread for nobody (Ivy has not opened it).
    expect(gil.locator(f'.members__item[data-jid="ivy@{DOMAIN}"]')).to_be_attached()  # the header was redrawn
    room_menu(gil).locator("input[name=topic]").fill("Bring a rope")
    room_menu(gil).get_by_role("button", name="Set topic").click()
    expect(line(hal, "gil changed the topic to “Bring a rope”")).to_be_visible()
    expect(row(ivy, "Crag").locator(".convrow__preview")).to_have_text("gil changed the topic to “Bring a rope”")
    expect(row(ivy, "Crag").locator(".convrow__unread")).to_be_hidden()
    expect(row(hal, "Crag").locator(".convrow__preview")).to_have_text("gil changed the topic to “Bring a rope”")
    row(ivy, "Crag").locator("a").click()
    expect(line(ivy, "gil invited ivy")).to_be_visible()
    expect(line(ivy, "gil changed the topic to “Bring a rope”")).to_be_visible()
    # A line is nobody's message: no tools, no status, whoever looks at it.
    for page in (gil, hal, ivy):
        expect(page.locator(".message--event .message__tools")).to_have_count(0)
        expect(page.locator(".message--event .message__status")).to_have_count(0)

    # Hal leaves: Gil's and Ivy's open tabs show it. (His header shows the topic first: it is redrawn by then.)
    expect(hal.locator(".convo__topic")).to_contain_text("Bring a rope")
    hal.once("dialog", lambda dialog: dialog.accept())
    room_menu(hal).get_by_role("button", name="Leave the room").click()
    expect(line(gil, "hal left")).to_be_visible()
    expect(line(ivy, "hal left")).to_be_visible()

    # After a reload the history tells the same story, in order.
    for page in (gil, ivy):
        page.reload()
        history = page.locator(".convo__messages .message[data-seq]")
        expect(history).to_have_count(5)
        expect(history).to_contain_text(
            [
                "gil created the room “Crag”",
                "who's coming?",
                "gil invited ivy",
                "gil changed the topic to “Bring a rope”",
                "hal left",
            ]
        )
        expect(page.locator(".convo__messages .message--event")).to_have_count(4)
    assert gil_console.errors == []
    assert hal_console.errors == []
