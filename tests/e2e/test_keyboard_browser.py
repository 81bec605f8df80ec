"""The chat page from the keyboard, in a real browser: Up in the empty composer edits your last message (Enter
saves and the other person sees the new text live, Shift+Enter is a new line, Esc cancels and changes
nothing), Esc drops a reply being written, Ctrl+K opens a quick switcher that filters the conversations by
title and opens the one chosen, and "?" lists the shortcuts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ConsoleWatch
from tests.e2e.test_chat_browser import chatting, message, row, say
from tests.e2e.test_search_panel_browser import shell

pytestmark = pytest.mark.e2e

ROOM = """
from accounts.models import User
from chat import actions
owner = User.objects.get(username="kbda")
actions.create_room(owner, "Gardening club", members=[User.objects.get(username="kbdb").jid])
"""


def test_up_edits_the_last_message_enter_saves_it_live_and_esc_cancels(service, browser):
    ann, ann_console, ben = chatting(service, browser, "kbdc", "kbdd", "first words")
    ben_console = ConsoleWatch(ben)
    say(ann, "a typo heer")
    expect(message(ben, "a typo heer")).to_be_visible()
    composer = ann.locator("#composer-body")
    edit = message(ann, "a typo heer").locator(".message__edit textarea")

    # Up in the empty composer: the last own message's edit box, the cursor at the end of its text.
    composer.focus()
    composer.press("ArrowUp")
    expect(edit).to_be_focused()
    assert edit.evaluate("area => [area.selectionStart, area.selectionEnd, area.value.length]") == [11, 11, 11]

    # Esc: nothing changes, the box closes, the composer has the focus again.
    ann.keyboard.type(" junk")
    ann.keyboard.press("Escape")
    expect(edit).to_be_hidden()
    expect(composer).to_be_focused()
    assert edit.input_value() == "a typo heer"
    expect(message(ann, "a typo heer").locator(".message__edited")).to_have_count(0)

    # Again, fixed: Shift+Enter is a new line, Enter saves, and the other side sees it live.
    composer.press("ArrowUp")
    expect(edit).to_be_focused()
    ann.keyboard.press("Backspace")
    ann.keyboard.press("Backspace")
    ann.keyboard.type("re")
    ann.keyboard.press("Shift+Enter")
    ann.keyboard.type("and a second line")
    expect(edit).to_be_visible()  # not saved yet
    ann.keyboard.press("Enter")
    edited = ben.locator(".convo__messages .message", has_text="a typo here")
    expect(edited.locator(".message__body")).to_contain_text("and a second line")
    expect(edited.locator(".message__edited")).to_be_visible()
    expect(message(ben, "a typo heer")).to_have_count(0)
    expect(composer).to_be_focused()

    # Esc in the composer drops the reply being written.
    message(ann, "first words").hover()
    message(ann, "first words").get_by_role("button", name="Reply").click()
    expect(ann.locator("#composer-reply")).to_be_visible()
    expect(composer).to_be_focused()
    composer.press("Escape")
    expect(ann.locator("#composer-reply")).to_be_hidden()
    assert not ann_console.errors and not ben_console.errors


def test_ctrl_k_opens_a_conversation_by_typing_part_of_its_title(service, browser):
    ann, ann_console, _ben = chatting(service, browser, "kbda", "kbdb", "hello there")
    shell(service, ROOM)  # a room ann owns, ben in it, made as the room form makes it
    expect(row(ann, "Gardening club")).to_be_visible()  # told live
    room_href = row(ann, "Gardening club").locator("a").get_attribute("href")

    # Esc closes it and gives the focus back.
    ann.locator("#composer-body").focus()
    ann.keyboard.press("Control+k")
    switcher = ann.get_by_role("dialog", name="Go to a conversation")
    expect(switcher).to_be_visible()
    expect(switcher).to_have_attribute("aria-modal", "true")
    expect(switcher.get_by_role("option")).to_have_count(2)
    ann.keyboard.press("Escape")
    expect(switcher).to_be_hidden()
    expect(ann.locator("#composer-body")).to_be_focused()

    # "?" lists the shortcuts.
    ann.locator("#pane-title").click()
    ann.keyboard.press("?")
    help = ann.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help).to_contain_text("Ctrl+K")
    expect(help).to_contain_text("Edit your last message")
    ann.keyboard.press("Escape")
    expect(help).to_be_hidden()

    ann.keyboard.press("Control+k")
    expect(switcher).to_be_visible()
    ann.keyboard.type("garden")
    options = switcher.get_by_role("option")
    expect(options).to_have_count(1)
    expect(options).to_have_text(re.compile(r"Gardening club"))
    expect(options).to_have_attribute("aria-selected", "true")
    ann.keyboard.press("Enter")
    expect(ann).to_have_url(re.compile(re.escape(room_href) + "$"))
    expect(ann.locator("#pane-title")).to_contain_text("Gardening club")
    assert not ann_console.errors
