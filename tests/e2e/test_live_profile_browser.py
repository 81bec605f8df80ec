"""A new display name or avatar reaches every open screen without a reload: the contact's list row, the
conversation's row and title, the sender's name on messages already shown, and the person's own other tabs."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.test_chat_browser import DOMAIN, chatting, message, row, say

pytestmark = pytest.mark.e2e


def test_a_new_name_and_picture_show_live_on_every_screen(service, browser, tmp_path):
    uma, uma_console, vic = chatting(service, browser, "uma", "vic", "hi from uma")
    say(vic, "hi back")
    expect(message(uma, "hi back")).to_be_visible()
    expect(vic.locator("#pane-title")).to_have_text("uma")
    uma_in_vics_contacts = vic.locator(f'#roster li[data-jid="uma@{DOMAIN}"]')
    vic.evaluate("window.__samePage = true")  # gone if the page reloads

    # Uma renames herself in a second tab, on her Profile.
    settings = uma.context.new_page()
    settings.goto(service.url + "/accounts/profile/")
    settings.fill("#id_display_name", "Uma Ultra")
    settings.get_by_role("button", name="Save profile").click()
    expect(settings.get_by_role("status").filter(has_text=re.compile("saved", re.I))).to_be_visible()

    # Vic's screen, as it is: the conversation's title and row, the contact list, and her message already shown.
    expect(vic.locator("#pane-title")).to_have_text("Uma Ultra")
    expect(row(vic, "Uma Ultra")).to_have_count(1)
    expect(uma_in_vics_contacts.locator(".contact__name-text")).to_have_text("Uma Ultra")
    expect(message(vic, "hi from uma").locator(".message__sender")).to_have_text("Uma Ultra")
    expect(message(vic, "hi back").locator(".message__sender")).to_have_text("vic")  # only hers changed
    # Her own chat tab follows too: the sidebar, the top bar and her messages.
    expect(uma.locator(".sidebar__me .sidebar__name")).to_have_text("Uma Ultra")
    expect(uma.locator(".topbar__name")).to_have_text("Uma Ultra")
    expect(message(uma, "hi from uma").locator(".message__sender")).to_have_text("Uma Ultra")

    # A picture, then none: Vic's contact list and Uma's own sidebar show it live.
    picture = tmp_path / "uma.png"
    Image.new("RGB", (320, 320), (200, 60, 120)).save(picture)
    settings.set_input_files("#id_avatar", str(picture))
    settings.get_by_role("button", name=re.compile("upload", re.I)).click()
    expect(settings.get_by_text("Your avatar was updated.")).to_be_visible()
    expect(uma_in_vics_contacts.locator("img.avatar")).to_be_visible()
    expect(uma.locator(".sidebar__me img.avatar")).to_be_visible()
    assert uma.locator(".sidebar__me img.avatar").evaluate("img => img.complete && img.naturalWidth") == 256

    settings.get_by_role("button", name=re.compile("remove", re.I)).click()
    expect(uma_in_vics_contacts.locator(".avatar--initials")).to_have_text("U")
    expect(uma.locator(".sidebar__me .avatar--initials")).to_have_text("U")

    # Nothing was reloaded: the messages are the ones that were on screen all along.
    assert vic.evaluate("window.__samePage") is True
    assert uma_console.errors == []
