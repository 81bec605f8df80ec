"""The profile page's Notifications settings: the sound switch is kept in this browser and the chat page plays
the sound for a new message after a reload; desktop notifications are asked for only on a click, and the
state shown follows the browser's answer (allowed, or blocked with how to undo it)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import new_page, sign_up
from tests.e2e.test_chat_browser import befriend, say

pytestmark = pytest.mark.e2e

DOMAIN = "imweb.localhost"
# Records the sounds played instead of playing them.
SOUND_RECORDER = """
window.__sounds = [];
window.Audio = class {
  constructor(src) { this.src = src; }
  play() { window.__sounds.push(this.src); return Promise.resolve(); }
};
"""
# A browser that has not been asked yet and answers `answer` when it is; counts the times it was asked.
NOTIFICATION_ASKER = """
window.__asked = 0;
window.Notification = class {
  static permission = "default";
  static requestPermission() { window.__asked += 1; Notification.permission = "%s"; return Promise.resolve("%s"); }
};
"""


def test_sound_switched_on_in_settings_plays_on_the_chat_page_after_a_reload(service, browser):
    uli, uli_console = new_page(browser)
    vic, _ = new_page(browser)
    sign_up(uli, service, "uli")
    sign_up(vic, service, "vic")
    befriend(uli, "uli", vic, "vic")
    # The chat list's head holds no sound or notification switch any more.
    expect(uli.locator(".chats__head input[type=checkbox]")).to_have_count(0)

    uli.get_by_role("link", name="Profile").click()
    sound = uli.get_by_label("Sound for new messages")
    expect(sound).not_to_be_checked()
    sound.check()
    uli.reload()
    expect(uli.get_by_label("Sound for new messages")).to_be_checked()

    uli.context.add_init_script(SOUND_RECORDER)
    uli.goto(service.url + "/")
    assert uli.evaluate("localStorage.getItem('imweb.sound')") == "1"
    vic.get_by_role("link", name="Message uli").click()
    say(vic, "hello")  # (a conversation's very first message makes no sound: the list did not know it yet)
    expect(uli.locator("#conversations")).to_contain_text("hello")
    say(vic, "ding?")
    uli.wait_for_function("() => window.__sounds.length > 0")
    assert uli.evaluate("window.__sounds")[0].endswith("/audio/notify.wav")

    # Off again: the next message is silent.
    uli.goto(service.url + "/accounts/profile/")
    uli.get_by_label("Sound for new messages").uncheck()
    uli.goto(service.url + "/")
    say(vic, "quiet now")
    expect(uli.locator("#conversations")).to_contain_text("quiet now")
    assert uli.evaluate("window.__sounds") == []
    assert uli_console.errors == []


@pytest.mark.parametrize("answer", ["granted", "denied"])
def test_desktop_notifications_are_asked_for_on_a_click_and_the_answer_shows(service, browser, answer):
    page, console = new_page(browser)
    page.context.add_init_script(NOTIFICATION_ASKER % (answer, answer))
    sign_up(page, service, f"wen{answer[0]}")
    page.goto(service.url + "/accounts/profile/")
    state = page.locator("#notify-state")
    expect(state).to_have_text("Not asked yet.")
    assert page.evaluate("window.__asked") == 0  # opening the page asks nothing

    page.get_by_role("button", name="Allow notifications").click()
    if answer == "granted":
        expect(state).to_contain_text("Allowed")
    else:
        expect(state).to_contain_text("Blocked in this browser. To allow them, open the site settings")
    expect(page.get_by_role("button", name="Allow notifications")).to_be_hidden()
    assert page.evaluate("window.__asked") == 1
    assert console.errors == []
