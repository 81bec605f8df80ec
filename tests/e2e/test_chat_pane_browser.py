"""The conversation pane in a real browser: the emoji picker opens inside the conversation (never under the chat
list) and leaves the message in view when it can; contacts ticked for a new room while its list loads stay
ticked; and a refusal under the composer goes once the text is fixed or removed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import new_page, sign_up
from tests.e2e.test_chat_browser import befriend, chatting, message, row, say

pytestmark = pytest.mark.e2e


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not displayed"
    return found


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def overlap(one: dict[str, float], other: dict[str, float]) -> bool:
    return (
        one["x"] < other["x"] + other["width"]
        and other["x"] < one["x"] + one["width"]
        and one["y"] < other["y"] + other["height"]
        and other["y"] < one["y"] + one["height"]
    )


def open_picker(page: Page, text: str) -> dict[str, float]:
    """Open the React menu of the message `text`; the picker's box, checked to be inside the conversation's
    visible part (and so inside the pane, never under the chat list or the contacts)."""
    target = message(page, text)
    target.hover()
    target.locator(".message__menu--react > summary").click()
    expect(page.locator("#react-picker")).to_be_visible()
    picker = box(page, "#react-picker")
    assert inside(picker, box(page, "#pane")), (picker, box(page, "#pane"))
    assert inside(picker, box(page, "#message-scroll")), (picker, box(page, "#message-scroll"))
    return picker


def test_the_emoji_picker_opens_inside_the_conversation_and_its_first_emoji_can_be_clicked(service, browser):
    pia, pia_console, pete = chatting(service, browser, "pia", "pete", "hello there")
    say(pete, "hi")  # short: its tools and picker are wider than the message itself
    expect(message(pia, "hi")).to_be_visible()

    # On someone else's short message: the picker fits in the pane, above the message rather than over it, and
    # the first emoji takes the click (Playwright's click fails when another element would receive it).
    picker = open_picker(pia, "hi")
    assert not overlap(picker, message(pia, "hi").bounding_box())
    pia.locator("#react-picker .picker__emoji").first.click()
    expect(message(pete, "hi").locator(".chip")).to_have_text(re.compile(r"1$"))
    expect(message(pia, "hi").locator(".chip")).to_have_attribute("aria-pressed", "true")

    # The first message of the conversation has no room above it: the picker goes below, still in the pane.
    open_picker(pete, "hello there")
    pete.locator("#react-picker .picker__emoji").first.click()
    expect(message(pia, "hello there").locator(".chip")).to_have_text(re.compile(r"1$"))

    # On a phone-sized screen too.
    pia.set_viewport_size({"width": 360, "height": 740})
    expect(pia.locator("#pane")).to_be_visible()
    open_picker(pia, "hi")
    pia.locator("#react-picker .picker__emoji").nth(1).click()
    expect(message(pete, "hi").locator(".chip")).to_have_count(2)
    assert pia_console.errors == []


# Resolves once the new room's contact list has been swapped in and settled.
LIST_SWAPPED = """() => {
  window.__roomListSwapped = new Promise(function (resolve) {
    document.querySelector(".room-create__slot").addEventListener("htmx:afterSettle", function () {
      resolve(true);
    }, { once: true });
  });
}"""


def test_contacts_ticked_while_the_new_room_list_loads_stay_ticked(service, browser):
    rhea, rhea_console = new_page(browser)
    sam, _ = new_page(browser)
    tia, _ = new_page(browser)
    for page, name in ((rhea, "rhea"), (sam, "sam"), (tia, "tia")):
        sign_up(page, service, name)
    befriend(rhea, "rhea", sam, "sam")
    befriend(rhea, "rhea", tia, "tia")
    rhea.reload()  # the form's list, as the page brings it, already holds both

    # The list the form re-reads when it opens is held back while Rhea ticks Sam.
    held = []
    rhea.route(
        re.compile(r"/rooms/new$"),
        lambda route: held.append(route) if route.request.method == "GET" else route.continue_(),
    )
    form = rhea.locator(".room-create")
    with rhea.expect_request(lambda request: request.url.endswith("/rooms/new") and request.method == "GET"):
        form.locator("summary").click()
    form.locator("input[name=name]").fill("Trip")
    form.get_by_label("sam").check()
    assert len(held) == 1, "the list's request was not held"
    rhea.evaluate(LIST_SWAPPED)
    held[0].continue_()
    rhea.evaluate("window.__roomListSwapped")

    # The new list is in; Sam's tick survived it. Tia is ticked after; the room gets exactly both.
    expect(form.get_by_label("sam")).to_be_checked()
    expect(form.get_by_label("tia")).not_to_be_checked()
    form.get_by_label("tia").check()
    rhea.get_by_role("button", name="Create room").click()
    expect(rhea.locator("#pane-title")).to_have_text("#Trip")
    expect(rhea.locator(".convo__count")).to_have_text("3 members")
    for page in (sam, tia):
        row(page, "Trip").locator("a").click()
        expect(page.locator("#pane-title")).to_have_text("#Trip")
    assert rhea_console.errors == []


def test_a_refusal_under_the_composer_goes_once_the_text_is_fixed_or_removed(service, browser):
    uma, uma_console, vic = chatting(service, browser, "uma", "vic", "hi Vic")
    composer = uma.locator("#composer-body")
    error = uma.locator("#composer-error")
    too_long = "x" * 10_001
    refused = "This message is 10,001 characters long; the limit is 10,000 characters."

    # Still too long after an edit: the refusal still holds, and stays.
    composer.fill(too_long)
    composer.press("Enter")
    expect(error).to_have_text(refused)
    composer.press("End")
    composer.press("x")
    composer.press("Backspace")
    expect(composer).to_have_value(too_long)
    expect(error).to_have_text(refused)

    # Cut down to the limit: it goes.
    composer.press("Backspace")
    expect(error).to_be_empty()
    expect(uma.locator("#composer-counter")).to_have_text("10,000 / 10,000")

    # Refused again, then the text removed: it goes too.
    composer.fill(too_long)
    composer.press("Enter")
    expect(error).to_have_text(refused)
    composer.fill("")
    expect(error).to_be_empty()

    # Refused again, then another message written over it and sent: it goes, and the message arrives.
    composer.fill(too_long)
    composer.press("Enter")
    expect(error).to_have_text(refused)
    say(uma, "short and sweet")
    expect(error).to_be_empty()
    expect(message(vic, "short and sweet")).to_be_visible()
    assert uma_console.errors == []
