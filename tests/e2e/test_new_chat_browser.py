""" "New chat" and "New room" in one place at the top of the chat list: a contact picked from the suggestions opens
the conversation already there, a new address opens a blank one whose first message sends, a bad address is
explained under the field without leaving the page, "New room" creates a room, and without JavaScript "New chat"
is a plain page with the same form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, new_page, sign_up
from tests.e2e.test_chat_browser import befriend, chatting, message, say

pytestmark = pytest.mark.e2e

DOMAIN = "imweb.localhost"


def test_new_chat_opens_a_contact_s_conversation_a_new_address_and_explains_a_bad_one(service, browser):
    nia, nia_console, _ = chatting(service, browser, "nia", "oto", "hi oto")
    pax, _ = new_page(browser)
    sign_up(pax, service, "pax")
    nia.goto(service.url + "/")

    # A contact is suggested as their name is typed; picking them opens the conversation they already share.
    nia.get_by_role("button", name="New chat").click()
    nia.locator("#new-chat-to").press_sequentially("ot")
    suggestion = nia.locator(f'#new-chat-people a[data-jid="oto@{DOMAIN}"]')
    expect(suggestion).to_contain_text("Contact")
    suggestion.click()
    expect(nia).to_have_url(re.compile(r"/c/\d+/$"))
    expect(message(nia, "hi oto")).to_be_visible()

    # A bad address: the reason under the field, and the page stays where it is.
    at = nia.url
    nia.get_by_role("button", name="New chat").click()
    nia.locator("#new-chat-to").fill("not an address")
    nia.locator("#new-chat-to").press("Enter")
    expect(nia.locator("#new-chat-error")).to_contain_text("“not an address” is nobody's name here")
    expect(nia.locator("#new-chat-to")).to_have_attribute("aria-invalid", "true")
    assert nia.url == at
    nia.locator("#new-chat-to").fill(f"nobody@{DOMAIN}")
    expect(nia.locator("#new-chat-error")).to_have_count(0)  # typing again clears it
    nia.locator("#new-chat-to").press("Enter")
    expect(nia.locator("#new-chat-error")).to_have_text(f"There is no account nobody@{DOMAIN}.")
    assert nia.url == at

    # Someone who is not a contact, by their full address: a blank conversation, and the first message sends.
    nia.locator("#new-chat-to").fill(f"pax@{DOMAIN}")
    nia.get_by_role("button", name="Chat", exact=True).click()
    expect(nia.locator("#pane-title")).to_have_text(f"pax@{DOMAIN}")
    say(nia, "hello pax")
    expect(nia).to_have_url(re.compile(r"/c/\d+/$"))
    expect(message(nia, "hello pax")).to_be_visible()
    expect(nia.locator(".message--pending")).to_have_count(0)
    expect(pax.locator("body")).to_contain_text("hello pax")  # waiting in Pax's Requests
    assert nia_console.errors == []


def test_new_room_sits_beside_new_chat_and_new_chat_works_without_javascript(service, browser):
    rue, rue_console = new_page(browser)
    sol, _ = new_page(browser)
    sign_up(rue, service, "rue")
    sign_up(sol, service, "sol")
    befriend(rue, "rue", sol, "sol")

    # The same control: "New room" opens the room form (and closes "New chat").
    rue.get_by_role("button", name="New chat").click()
    expect(rue.locator("#new-chat-to")).to_be_focused()
    head = rue.locator(".chats__new")
    head.get_by_text("New room", exact=True).click()
    expect(rue.locator("#new-chat-panel")).to_be_hidden()
    head.locator("input[name=name]").fill("Boulder")
    head.get_by_label("sol").check()
    rue.get_by_role("button", name="Create room").click()
    expect(rue.locator("#pane-title")).to_have_text("#Boulder")
    assert rue_console.errors == []

    # Without JavaScript "New chat" is a link to a plain page with the same form.
    plain = browser.new_context(java_script_enabled=False)
    page = plain.new_page()
    sign_up(page, service, "tam")
    page.get_by_role("link", name="New chat").click()
    expect(page).to_have_url(re.compile(r"/chat/new$"))
    page.get_by_label("Who?").fill("not an address")
    page.get_by_role("button", name="Chat", exact=True).click()
    expect(page.locator("#new-chat-error")).to_contain_text("nobody's name here")
    page.get_by_label("Who?").fill("sol")
    page.get_by_role("button", name="Chat", exact=True).click()
    expect(page.locator("#pane-title")).to_have_text(f"sol@{DOMAIN}")
    plain.close()


def test_a_draft_outlives_the_page_until_it_is_sent_and_signing_out_drops_it(service, browser):
    uma, uma_console = new_page(browser)
    sign_up(uma, service, "uma")
    sign_up(new_page(browser)[0], service, "vic")
    uma.goto(service.url + f"/chat/new?to=vic@{DOMAIN}")
    composer = uma.locator("#composer-body")

    # Typed while the first message opens the conversation's own page: the words are there on that page.
    say(uma, "hello vic")
    composer.fill("half a thought")
    expect(uma).to_have_url(re.compile(r"/c/\d+/$"))
    expect(message(uma, "hello vic")).to_be_visible()
    expect(composer).to_have_value("half a thought")

    # A reload, and a visit elsewhere and back, keep it; sending it drops it.
    uma.reload()
    expect(composer).to_have_value("half a thought")
    conversation = uma.url
    uma.goto(service.url + "/accounts/profile/")
    uma.goto(conversation)
    expect(composer).to_have_value("half a thought")
    composer.press("Enter")
    expect(message(uma, "half a thought")).to_be_visible()
    uma.reload()
    expect(message(uma, "half a thought")).to_be_visible()
    expect(composer).to_have_value("")

    # Signing out forgets what this browser kept: the next person at it sees none of it.
    composer.fill("not for the next person")
    uma.reload()
    expect(composer).to_have_value("not for the next person")
    uma.locator(".topbar__links .topbar__signout button").click()
    expect(uma.get_by_role("link", name=re.compile("log in", re.I)).first).to_be_visible()
    uma.goto(service.url + "/accounts/login/")
    uma.fill("#id_login", "uma")
    uma.fill("#id_password", PASSWORD)
    uma.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    expect(uma.locator("body")).to_contain_text(f"uma@{DOMAIN}")
    uma.goto(conversation)
    expect(message(uma, "half a thought")).to_be_visible()
    expect(composer).to_have_value("")
    assert uma_console.errors == []
