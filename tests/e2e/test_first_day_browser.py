"""A whole first day, the way three newcomers live it in real browsers, with a screenshot at each step
(test-output/first-day/): Maya, Noah and Lena sign up, Maya makes her profile hers, finds Noah by name and asks
him, he accepts; they chat (grouped messages, a reply, a reaction); Lena, a stranger to Noah, writes to him and he
blocks her from his Requests; Maya becomes Lena's contact and starts a room with both; Noah mutes it and is not
disturbed by it while a direct message still reaches him; Maya finds an old message with the search panel and
jumps to it; last, the room on a phone. Every step is done with the page's own controls (no typed URLs, no
reloads), and across every page the three of them open there is no CSP violation and no console error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PASSWORD
from tests.e2e.test_chat_browser import DOMAIN, message, row, say
from tests.e2e.test_csp_walk_browser import ViolationWatch, settle, watched_page

pytestmark = pytest.mark.e2e

# Records each desktop notification a page shows (the browser's permission is granted in its context).
RECORD_NOTIFICATIONS = """
window.__notified = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notified.push(title + ": " + ((options && options.body) || "")); }
  close() {}
};
"""


class Day:
    """The walk's screenshots, numbered in the order they are taken."""

    def __init__(self, output_dir: Path) -> None:
        self.dir = output_dir / "first-day"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def shot(self, page: Page, name: str) -> None:
        self.count += 1
        page.screenshot(path=str(self.dir / f"{self.count:02d}-{name}.png"), caret="initial")


def sign_up_from_the_front_page(page: Page, service, username: str) -> None:
    page.goto(service.url + "/")
    page.get_by_role("link", name=re.compile("sign up|create an account", re.I)).first.click()
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.org")
    page.fill("#id_password1", PASSWORD)
    page.get_by_role("button", name=re.compile("sign up", re.I)).click()
    expect(page.locator("body")).to_contain_text(f"{username}@{DOMAIN}")


def line(page: Page, text: str):
    """The message whose own text is `text` (a reply quoting it is another message)."""
    body = page.locator(".message__body", has=page.get_by_text(text, exact=True))
    return page.locator(".convo__messages .message[data-seq]", has=body)


def contact(page: Page, username: str):
    return page.locator(f'#roster li[data-jid="{username}@{DOMAIN}"]')


def new_chat(page: Page, who: str, pick: str) -> None:
    """ "New chat" at the top of the chat list: type part of a name, pick the suggestion."""
    page.get_by_role("button", name="New chat").click()
    page.locator("#new-chat-to").press_sequentially(who, delay=20)
    page.locator(f'#new-chat-people a[data-jid="{pick}@{DOMAIN}"]').click()


def test_a_first_day_for_three_newcomers_with_a_screenshot_at_each_step(service, browser, output_dir):
    day = Day(output_dir)
    maya, maya_watch = watched_page(browser)
    noah, noah_watch = watched_page(browser)
    lena, lena_watch = watched_page(browser)
    watches: list[ViolationWatch] = [maya_watch, noah_watch, lena_watch]
    for page in (maya, noah, lena):
        page.context.add_init_script(RECORD_NOTIFICATIONS)

    # 1. Sign up from the front page; the welcome says what to do first.
    maya.goto(service.url + "/")
    settle(maya)
    day.shot(maya, "front-page")
    sign_up_from_the_front_page(maya, service, "maya")
    expect(maya.locator(".welcome")).to_contain_text("Share your address")
    day.shot(maya, "welcome")
    sign_up_from_the_front_page(noah, service, "noah")
    sign_up_from_the_front_page(lena, service, "lena")

    # 2. Maya makes the profile hers, from the welcome's own link.
    maya.get_by_role("link", name="Add a display name, a status and a picture").click()
    maya.fill("#id_display_name", "Maya Lind")
    maya.get_by_role("button", name="Save profile").click()
    expect(maya.locator("#profile-form")).to_contain_text("Saved")
    day.shot(maya, "profile")
    maya.get_by_role("link", name="imweb").first.click()
    expect(maya.locator("#roster")).to_be_visible()

    # 3. She finds Noah by typing his name, and asks him; he sees her request live and accepts it.
    maya.locator("#add-contact-jid").press_sequentially("noa", delay=20)
    found = maya.locator("#search-results .search-result", has_text=f"noah@{DOMAIN}")
    expect(found).to_be_visible()
    day.shot(maya, "finder")
    found.get_by_role("button", name=re.compile("^Add")).click()
    expect(contact(maya, "noah")).to_be_visible()
    expect(noah.locator("#requests")).to_contain_text("Maya Lind")
    day.shot(noah, "contact-request")
    noah.get_by_role("button", name=f"Accept maya@{DOMAIN}").click()
    expect(contact(maya, "noah")).to_have_attribute("data-show", "available")
    expect(contact(noah, "maya")).to_have_attribute("data-show", "available")

    # 4. They chat: "New chat" picks Noah; his answer, a reply and a reaction; consecutive lines are grouped.
    new_chat(maya, "noa", "noah")
    for text in ("Hi Noah! Welcome to imweb", "Lunch on Friday? There's a picnic in the park"):
        say(maya, text)
        expect(message(maya, text)).to_be_visible()
    row(noah, "Maya Lind").locator("a").click()
    expect(message(noah, "Hi Noah! Welcome to imweb")).to_be_visible()
    say(noah, "Hey Maya, thanks")
    picnic = line(noah, "Lunch on Friday? There's a picnic in the park")
    picnic.hover()
    picnic.get_by_role("button", name="Reply").click()
    say(noah, "Friday works, I'll bring the bread")
    answer = message(maya, "Friday works, I'll bring the bread")
    expect(answer.locator(".message__quote")).to_contain_text("picnic")
    answer.hover()
    answer.locator(".message__menu--react > summary").click()
    maya.get_by_role("button", name="React with 👍").click()
    expect(message(noah, "Friday works, I'll bring the bread").locator(".chip")).to_contain_text("1")
    expect(line(maya, "Lunch on Friday? There's a picnic in the park")).to_have_class(re.compile("message--follow"))
    maya.mouse.move(5, 5)
    day.shot(maya, "conversation")

    # 5. Lena, whom Noah does not know, writes to him; it waits in his Requests, and he blocks her from there.
    new_chat_to_address(lena, f"noah@{DOMAIN}")
    say(lena, "hi, want cheap sunglasses?")
    expect(message(lena, "hi, want cheap sunglasses?")).to_be_visible()
    requests = noah.locator("#convlist-requests .convrow", has_text="lena")
    expect(requests).to_be_visible()
    day.shot(noah, "requests")
    noah.once("dialog", lambda dialog: dialog.accept())
    requests.get_by_role("button", name=f"Block lena@{DOMAIN}").click()
    expect(requests).to_have_count(0)
    expect(noah.locator("#convlist-requests-section")).to_be_hidden()

    # 6. Maya and Lena become contacts; Maya starts a room with both of her contacts from "New room".
    maya.fill("#add-contact-jid", f"lena@{DOMAIN}")
    maya.locator("form.add-contact").get_by_role("button", name="Add", exact=True).click()
    lena.get_by_role("button", name=f"Accept maya@{DOMAIN}").click()
    expect(contact(maya, "lena")).to_have_attribute("data-show", "available")
    maya.locator(".chats__new").get_by_text("New room", exact=True).click()
    maya.locator(".chats__new input[name=name]").fill("Picnic")
    maya.locator(".chats__new input[name=topic]").fill("Friday, noon, by the lake")
    maya.locator(".chats__new").get_by_label("noah").check()
    maya.locator(".chats__new").get_by_label("lena").check()
    maya.get_by_role("button", name="Create room").click()
    expect(maya.locator("#pane-title")).to_have_text("#Picnic")
    say(maya, "Welcome to the picnic room")
    row(lena, "Picnic").locator("a").click()
    expect(message(lena, "Welcome to the picnic room")).to_be_visible()
    say(lena, "I'll bring lemonade")
    expect(message(maya, "I'll bring lemonade")).to_be_visible()
    expect(maya.locator(".convo__messages .message--event").first).to_contain_text("created the room “Picnic”")
    day.shot(maya, "room")

    # 7. Noah mutes the room from its row: a muted badge, its unread count on its row only (not in the title),
    # and no notification for what is said there; a direct message still notifies him.
    noah.bring_to_front()
    menu = row(noah, "Picnic").locator(".convrow__menu")
    menu.locator("summary").click()
    menu.get_by_role("button", name="Mute", exact=True).click()
    expect(row(noah, "Picnic").locator(".convrow__muted")).to_be_visible()
    say(lena, "Who has a blanket?")
    expect(row(noah, "Picnic").locator(".convrow__preview")).to_contain_text("Who has a blanket?")
    expect(row(noah, "Picnic").locator(".convrow__unread")).to_have_text(re.compile(r"^[1-9]"))
    expect(noah).to_have_title("imweb")
    day.shot(noah, "muted")
    row(noah, "Picnic").locator("a").click()  # he reads the room; Maya then writes to him directly
    expect(message(noah, "Who has a blanket?")).to_be_visible()
    maya.bring_to_front()
    row(maya, "noah").locator("a").click()
    say(maya, "See you Friday!")
    noah.wait_for_function("() => window.__notified.some(note => note.includes('See you Friday!'))")
    notes = noah.evaluate("window.__notified")
    assert not [note for note in notes if "blanket" in note or note.startswith("#Picnic") or "Picnic" in note], notes

    # 8. Maya looks for the picnic message with the search panel over the conversation and jumps back to it.
    maya.locator(".convo__head").get_by_role("link", name="Search").click()
    expect(maya.locator("#search-panel-q")).to_be_focused()
    maya.locator("#search-panel-q").press_sequentially("picnic park", delay=20)
    hit = maya.locator("#search-panel .msgsearch-hit").first
    expect(hit).to_contain_text("Lunch on Friday?")
    day.shot(maya, "search")
    hit.locator("a").click()
    expect(line(maya, "Lunch on Friday? There's a picnic in the park")).to_have_class(re.compile("message--highlight"))
    day.shot(maya, "search-jump")

    # 9. The rest of the app, for each of them: profile and settings, the blocklist, the search page.
    noah.get_by_role("link", name="Blocked people and servers").click()
    expect(noah.locator("body")).to_contain_text(f"lena@{DOMAIN}")
    day.shot(noah, "blocklist")
    for page in (maya, noah, lena):
        page.get_by_role("link", name="Profile", exact=True).click()
        expect(page.locator("#profile-form")).to_be_visible()
        settle(page)
        page.fill("#topbar-search", "Friday")
        page.press("#topbar-search", "Enter")
        expect(page).to_have_url(re.compile(r"/search/?\?q=Friday"))
        settle(page)
    # 10. On a phone: one pane at a time, the top bar on one line.
    maya.set_viewport_size({"width": 375, "height": 740})
    maya.get_by_role("link", name="imweb").first.click()
    row(maya, "Picnic").locator("a").click()
    expect(line(maya, "Who has a blanket?")).to_be_visible()
    bar = maya.locator(".topbar").bounding_box()
    assert bar is not None and bar["height"] < 80, bar
    assert maya.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    day.shot(maya, "phone")
    for watch, who in zip(watches, ("maya", "noah", "lena"), strict=True):
        watch.assert_clean(f"{who}'s day")


def new_chat_to_address(page: Page, address: str) -> None:
    """ "New chat" to a full address (not a contact): typed whole, then Chat."""
    page.get_by_role("button", name="New chat").click()
    page.locator("#new-chat-to").fill(address)
    page.get_by_role("button", name="Chat", exact=True).click()
    expect(page.locator("#pane-title")).to_have_text(address)
