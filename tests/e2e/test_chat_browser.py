"""People chatting in real browsers: live messages, typing, read markers, history after a reload, scrolling
back, unread counts in the list and the title, and a room of three."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import new_page, sign_up

pytestmark = pytest.mark.e2e

DOMAIN = "imweb.localhost"
# Records notifications instead of showing them (the permission counts as granted), so a test can read them.
NOTIFICATION_RECORDER = """
window.__notes = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notes.push({ title: title, body: (options || {}).body }); }
};
"""


def befriend(asker: Page, asker_name: str, answerer: Page, answerer_name: str) -> None:
    """Contacts are made through the UI: one asks, the other accepts; both then see each other online."""
    asker.fill("#add-contact-jid", f"{answerer_name}@{DOMAIN}")
    asker.locator("form.add-contact").get_by_role("button", name="Add", exact=True).click()
    answerer.get_by_role("button", name=f"Accept {asker_name}@{DOMAIN}").click()
    expect(asker.locator(f'#roster li[data-jid="{answerer_name}@{DOMAIN}"]')).to_have_attribute(
        "data-show", "available"
    )


def row(page: Page, title: str):
    return page.locator("#conversations .convrow", has=page.locator(".convrow__title", has_text=title))


def say(page: Page, text: str) -> None:
    page.locator("#composer-body").fill(text)
    page.locator("#composer-body").press("Enter")


def message(page: Page, text: str):
    return page.locator(".convo__messages .message[data-seq]", has=page.get_by_text(text, exact=True))


def chatting(service, browser, first: str, second: str, opening: str):
    """Two people who signed up, became contacts and have a conversation open on both screens, the first having
    said `opening`: (first's page, its console, second's page)."""
    one, one_console = new_page(browser)
    two, _ = new_page(browser)
    sign_up(one, service, first)
    sign_up(two, service, second)
    befriend(one, first, two, second)
    one.locator(f'#roster li[data-jid="{second}@{DOMAIN}"]').get_by_role("link", name=f"Message {second}").click()
    say(one, opening)
    row(two, first).locator("a").click()
    expect(message(two, opening)).to_be_visible()
    return one, one_console, two


def test_two_people_chat_live_with_typing_read_markers_and_history(service, browser, output_dir):
    anna, anna_console = new_page(browser)
    ben, ben_console = new_page(browser)
    sign_up(anna, service, "anna")
    sign_up(ben, service, "ben")
    befriend(anna, "anna", ben, "ben")

    # Anna opens a conversation from the contact list; her first message creates it.
    anna.get_by_role("link", name="Message ben").click()
    expect(anna.locator("#pane-title")).to_have_text(f"ben@{DOMAIN}")
    say(anna, "Hello Ben, **lunch**?")
    expect(anna).to_have_url(re.compile(r"/c/\d+/$"))
    expect(message(anna, "lunch")).to_be_visible()

    # Ben, on his home page, sees it arrive in his list with an unread badge and the count in the title.
    expect(row(ben, "anna").locator(".convrow__unread")).to_have_text(re.compile(r"^1"))
    expect(ben).to_have_title("(1) imweb")
    row(ben, "anna").locator("a").click()
    expect(message(ben, "lunch")).to_be_visible()
    expect(ben.locator(".message strong")).to_have_text("lunch")  # the markdown subset is rendered
    expect(ben).to_have_title("imweb")

    # Anna sees that Ben read it; then sees him typing, then his answer.
    expect(anna.locator(".message--mine .message__status").last).to_have_text("Read")
    ben.locator("#composer-body").press_sequentially("Sure, at noon")
    expect(anna.locator(".convo__typing")).to_have_text("ben is typing…")
    ben.locator("#composer-body").press("Enter")
    expect(message(anna, "Sure, at noon")).to_be_visible()
    expect(anna.locator(".convo__typing")).to_have_text("")
    expect(message(ben, "Sure, at noon").locator(".message__status")).to_have_text("Read")

    # Shift+Enter makes a new line; a reply quotes what it answers.
    message(anna, "Sure, at noon").hover()
    message(anna, "Sure, at noon").get_by_role("button", name="Reply").click()
    anna.locator("#composer-body").press_sequentially("Great")
    anna.locator("#composer-body").press("Shift+Enter")
    anna.locator("#composer-body").press_sequentially("see you")
    anna.locator("#composer-body").press("Enter")
    answer = ben.locator(".message[data-seq]").last
    expect(answer.locator(".message__quote")).to_contain_text("Sure, at noon")
    expect(answer.locator(".message__body")).to_contain_text("Great")
    expect(answer.locator(".message__body")).to_contain_text("see you")

    # Edits, reactions and deletions show live on the other side.
    mine = anna.locator(".message--mine[data-seq]").first
    mine.hover()
    mine.locator(".message__menu--edit > summary").click()
    mine.locator("textarea[name=body]").fill("Hello Ben, **lunch** at noon?")
    mine.get_by_role("button", name="Save").click()
    first_for_ben = ben.locator(".message[data-seq]").first
    expect(first_for_ben.locator(".message__body")).to_have_text("Hello Ben, lunch at noon?")
    expect(first_for_ben.locator(".message__edited")).to_have_text("edited")
    first_for_ben.hover()
    first_for_ben.locator(".message__menu--react > summary").click()
    first_for_ben.get_by_role("button", name="React with 🎉").click()
    expect(anna.locator(".message--mine[data-seq]").first.locator(".chip")).to_contain_text("🎉 1")
    say(anna, "oops, wrong chat")
    oops = message(anna, "oops, wrong chat")
    expect(message(ben, "oops, wrong chat")).to_be_visible()
    oops.hover()
    anna.once("dialog", lambda dialog: dialog.accept())
    oops.get_by_role("button", name="Delete").click()
    expect(ben.locator(".message[data-seq]").last.locator(".message__tombstone")).to_have_text("message deleted")

    anna.mouse.move(640, 600)  # away from the messages, so no hover toolbar shows
    anna.screenshot(path=str(output_dir / "chat.png"), caret="initial")

    # A refused message keeps its text in the composer, with the precise reason next to it.
    too_long = "x" * 10_001
    anna.locator("#composer-body").fill(too_long)
    expect(anna.locator("#composer-counter")).to_have_text("10,001 / 10,000")
    anna.locator("#composer-body").press("Enter")
    expect(anna.locator("#composer-error")).to_have_text(
        "This message is 10,001 characters long; the limit is 10,000 characters."
    )
    expect(anna.locator("#composer-body")).to_have_value(too_long)
    anna.locator("#composer-body").fill("")

    # Ben reloads: the whole conversation is still there, in order.
    ben.reload()
    bodies = ben.locator(".convo__messages .message[data-seq] .message__body")
    expect(bodies).to_have_count(3)  # and a tombstone, which has no body
    expect(bodies.first).to_contain_text("Hello Ben")
    expect(bodies.last).to_contain_text("see you")

    # On a phone-sized screen one pane shows at a time, and the tabs move between them.
    ben.set_viewport_size({"width": 360, "height": 740})
    expect(ben.locator("#pane")).to_be_visible()
    expect(ben.locator("#conversations")).to_be_hidden()
    ben.get_by_role("button", name=re.compile("^Chats")).click()
    expect(ben.locator("#conversations")).to_be_visible()
    expect(ben.locator("#pane")).to_be_hidden()
    ben.get_by_role("button", name="Contacts").click()
    expect(ben.locator("#roster")).to_be_visible()
    ben.get_by_role("button", name="Conversation").click()
    expect(ben.locator("#composer-body")).to_be_in_viewport()
    ben.screenshot(path=str(output_dir / "chat-narrow.png"), caret="initial")

    assert anna_console.errors == []
    assert ben_console.errors == []


def test_a_room_of_three_unread_counts_and_scrolling_back(service, browser):
    dora, dora_console = new_page(browser)
    eli, _ = new_page(browser)
    fay, fay_console = new_page(browser)
    for page, name in ((dora, "dora"), (eli, "eli"), (fay, "fay")):
        sign_up(page, service, name)
    befriend(dora, "dora", eli, "eli")
    befriend(dora, "dora", fay, "fay")

    # Dora creates a room with both; everyone sees it appear in their list.
    dora.locator(".room-create > summary").click()
    dora.locator(".room-create input[name=name]").fill("Climbing")
    dora.locator(".room-create").get_by_label("eli").check()
    dora.locator(".room-create").get_by_label("fay").check()
    dora.get_by_role("button", name="Create room").click()
    expect(dora.locator("#pane-title")).to_have_text("#Climbing")
    for page in (eli, fay):
        row(page, "Climbing").locator("a").click()
        expect(page.locator("#pane-title")).to_have_text("#Climbing")

    # All three talk; each sees everyone's messages. Enough of them that the newest page does not hold all.
    for n in range(1, 19):
        for page, name in ((dora, "dora"), (eli, "eli"), (fay, "fay")):
            say(page, f"{name} {n}")
    for page in (dora, eli, fay):
        expect(page.locator(".message--pending")).to_have_count(0, timeout=60_000)
        for name in ("dora", "eli", "fay"):
            expect(message(page, f"{name} 18")).to_be_visible(timeout=30_000)
    expect(dora.locator(".message--mine .message__status").last).to_have_text("Read by 2", timeout=30_000)

    # Fay reloads: the newest page, then scrolling up brings the first messages back, in order.
    fay.reload()
    expect(fay.locator(".convo__messages .message[data-seq]")).to_have_count(50)
    fay.locator(".convo__messages .message[data-seq]").first.scroll_into_view_if_needed()
    # 54 messages and, first, the line saying Dora created the room.
    expect(fay.locator(".convo__messages .message[data-seq]")).to_have_count(55)
    expect(fay.locator(".convo__messages .message[data-seq]").first).to_contain_text("dora created the room")
    # The three first messages were typed at the same moment in three tabs: any of them may be stored first.
    expect(fay.locator(".convo__messages .message[data-seq]").nth(1)).to_contain_text(
        re.compile(r"\b(dora|eli|fay) 1\b")
    )

    # Eli opens his direct conversation with Dora instead: the room's new messages count as unread there,
    # and they notify him.
    # (He has read the room up to its newest message first: the tab in front and in focus, nothing unread.)
    eli.bring_to_front()
    expect(row(eli, "Climbing").locator(".convrow__unread")).to_be_hidden()
    eli.context.add_init_script(NOTIFICATION_RECORDER)
    eli.locator('#roster li[data-jid="dora@imweb.localhost"]').get_by_role("link", name="Message dora").click()
    expect(eli.locator("#pane-title")).to_have_text(f"dora@{DOMAIN}")
    say(dora, "anyone up for Saturday?")
    say(fay, "me!")
    expect(row(eli, "Climbing").locator(".convrow__unread")).to_have_text(re.compile(r"^2\b"))
    expect(eli).to_have_title("(2) imweb")
    # (Messages close together may share one notification, which names the newest seen at that moment.)
    eli.wait_for_function("() => window.__notes.length > 0")
    notes = eli.evaluate("window.__notes")
    assert {note["title"] for note in notes} == {"#Climbing"}
    assert set(note["body"] for note in notes) <= {"dora: anyone up for Saturday?", "fay: me!"}

    assert dora_console.errors == []
    assert fay_console.errors == []


def test_what_was_on_screen_when_the_tab_closed_is_not_left_unread(service, browser):
    gil, _, hal = chatting(service, browser, "gil", "hal", "hi hal")
    say(hal, "one")
    gil.bring_to_front()
    expect(message(gil, "one")).to_be_visible()
    expect(row(gil, "hal").locator(".convrow__unread")).to_be_hidden()

    # Hal writes while Gil's window is in the background: it stays unread for him ...
    hal.bring_to_front()
    say(hal, "two")
    expect(message(gil, "two")).to_be_visible()
    expect(row(gil, "hal").locator(".convrow__unread")).to_have_text(re.compile(r"^1\b"))
    # ... until he comes back to it; closing the tab at once still counts it as read.
    gil.bring_to_front()
    context = gil.context
    gil.close()
    again = context.new_page()
    again.goto(service.url + "/")
    expect(row(again, "hal")).to_be_visible()
    expect(row(again, "hal").locator(".convrow__unread")).to_be_hidden()
    expect(again).to_have_title("imweb")
