"""Presence follows a person across the app: on Profile or a search results page they stay online to their
contacts and go away when idle there; and a message reaches them as Delivered whichever page they have open,
the first one of a new conversation included."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LEAVING, new_page, sign_up
from tests.e2e.test_chat_browser import DOMAIN, befriend, message, say
from tests.servers import wait_for

pytestmark = pytest.mark.e2e


def contact(page: Page, name: str):
    return page.locator(f'#roster li[data-jid="{name}@{DOMAIN}"]')


def idle_and_back(watcher: Page, person: Page, name: str) -> None:
    """`person`'s page, left alone past their idle minutes, makes them away on `watcher`'s screen; input makes
    them available again. Only the session of the page in view can do that: the chat page's is gone."""
    person.clock.fast_forward("06:00")  # past the default 5 idle minutes, with no input
    expect(contact(watcher, name)).to_have_attribute("data-show", "away")
    person.mouse.move(40, 40)
    person.mouse.move(80, 80)
    expect(contact(watcher, name)).to_have_attribute("data-show", "available")


def test_profile_and_search_pages_keep_a_person_online_and_idle_detection_works_there(service, browser):
    ola, ola_console = new_page(browser)
    pim, pim_console = new_page(browser)
    sign_up(ola, service, "ola")
    pim.clock.install()  # Pim's pages run on a clock the test can move forward
    sign_up(pim, service, "pim")
    befriend(ola, "ola", pim, "pim")

    pim.get_by_role("link", name="Profile").click()
    expect(pim).to_have_url(re.compile(r"/profile/$"))
    idle_and_back(ola, pim, "pim")

    pim.fill("#topbar-search", "lunch")
    pim.press("#topbar-search", "Enter")
    expect(pim).to_have_url(re.compile(r"/search/?\?q=lunch"))
    idle_and_back(ola, pim, "pim")

    # Leaving the app is still going offline.
    pim.close()
    expect(contact(ola, "pim")).to_have_attribute("data-show", "offline", timeout=LEAVING)
    assert ola_console.errors == []
    assert pim_console.errors == []


# Counts every moment a contact's row shows them offline on the watcher's page (rows are replaced whole on
# each presence change, so the list is watched, not one row).
WATCH_OFFLINE = """jid => {
  window.__offline = 0;
  const roster = document.getElementById("roster").parentNode;
  new MutationObserver(() => {
    if (roster.querySelector(`#roster li[data-jid="${jid}"][data-show="offline"]`)) window.__offline += 1;
  }).observe(roster, {subtree: true, childList: true, attributes: true});
}"""


def presence_sessions(service, username: str) -> int:
    """How many tabs or pages of this person hold a presence session, read from the service's database."""
    with closing(sqlite3.connect(f"file:{service.var_dir / 'imweb.sqlite3'}?mode=ro", uri=True)) as db:
        query = (
            "SELECT COUNT(*) FROM accounts_presencesession s JOIN accounts_user u ON u.id = s.user_id"
            " WHERE u.username = ?"
        )
        return db.execute(query, (username,)).fetchone()[0]


def test_moving_between_pages_never_shows_a_person_offline_to_their_contacts(service, browser):
    uma, uma_console = new_page(browser)
    vic, vic_console = new_page(browser)
    sign_up(uma, service, "uma")
    sign_up(vic, service, "vic")
    befriend(uma, "uma", vic, "vic")
    expect(contact(uma, "vic")).to_have_attribute("data-show", "available")
    uma.evaluate(WATCH_OFFLINE, f"vic@{DOMAIN}")

    vic.get_by_role("link", name="Profile").click()
    expect(vic).to_have_url(re.compile(r"/profile/$"))
    vic.go_back()
    expect(vic.locator("#roster")).to_be_visible()
    vic.reload()
    expect(vic.locator("#roster")).to_be_visible()
    vic.goto(service.url + "/contacts/blocked")
    vic.goto(service.url + "/")
    expect(vic.locator("#roster")).to_be_visible()
    # Once every page left behind has closed its session (after its grace), only the last page's is open ...
    wait_for(lambda: presence_sessions(service, "vic") == 1, 20, "the sessions of the pages left behind closed")
    # ... and Uma never saw Vic offline on the way.
    expect(contact(uma, "vic")).to_have_attribute("data-show", "available")
    assert uma.evaluate("window.__offline") == 0
    assert uma_console.errors == [] and vic_console.errors == []


def test_the_first_message_of_a_new_conversation_shows_delivered_while_the_recipient_is_online(service, browser):
    quin, quin_console = new_page(browser)
    rae, rae_console = new_page(browser)
    sign_up(quin, service, "quin")
    sign_up(rae, service, "rae")
    befriend(quin, "quin", rae, "rae")

    # Rae is on her chat page, with no conversation open; Quin starts one.
    quin.get_by_role("link", name="Message rae").click()
    say(quin, "first of a new chat")
    expect(message(quin, "first of a new chat").locator(".message__status")).to_have_text("Delivered")
    say(quin, "and a second")
    expect(message(quin, "and a second").locator(".message__status")).to_have_text("Delivered")
    assert quin_console.errors == []
    assert rae_console.errors == []


def test_a_message_reaches_someone_on_their_profile_page_as_delivered(service, browser):
    sam, sam_console = new_page(browser)
    tia, _ = new_page(browser)
    sign_up(sam, service, "sam")
    sign_up(tia, service, "tia")
    befriend(sam, "sam", tia, "tia")
    tia.get_by_role("link", name="Profile").click()
    expect(tia).to_have_url(re.compile(r"/profile/$"))
    expect(contact(sam, "tia")).to_have_attribute("data-show", "available")

    sam.get_by_role("link", name="Message tia").click()
    say(sam, "are you there?")
    expect(message(sam, "are you there?").locator(".message__status")).to_have_text("Delivered")

    # Once she opens it, it is read.
    tia.goto(service.url + "/")
    tia.locator("#conversations .convrow a").first.click()
    expect(tia.locator(".message[data-seq]", has_text="are you there?")).to_be_visible()
    expect(message(sam, "are you there?").locator(".message__status")).to_have_text("Read")
    assert sam_console.errors == []
