"""Search in a real browser: B finds an old message from the top bar, refines the search live as they type,
and the hit opens the conversation scrolled to that message and highlighted."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import sign_up
from tests.e2e.test_xss_browser import befriend, open_page, start_conversation, stored, type_and_send

pytestmark = pytest.mark.e2e

NEWER = 15  # messages each side sends after the old one: enough to scroll it far out of view


def test_search_finds_an_old_message_and_opens_it_in_context(service, browser, output_dir):
    anna, anna_watch = open_page(browser, service)
    ben, ben_watch = open_page(browser, service)
    sign_up(anna, service, "sanna")
    sign_up(ben, service, "sben")
    befriend(anna, ben, "sanna", "sben")

    conversation = start_conversation(anna, service, "sben")  # seq 1
    type_and_send(anna, "The **pineapple** plan is on for Friday", 2)
    ben.goto(f"{service.url}/c/{conversation}/")
    count = 2
    for i in range(NEWER):
        count += 1
        type_and_send(anna, f"newer note {i} from anna", count)
        count += 1
        type_and_send(ben, f"newer answer {i} from ben", count)
    for watch in (anna_watch, ben_watch):
        watch.requests.clear()

    # From the top bar: Enter opens the search page with the hit.
    ben.fill("#topbar-search", "pineapple")
    ben.press("#topbar-search", "Enter")
    expect(ben).to_have_url(re.compile(r"/search\?q=pineapple$"))
    hits = ben.locator(".msgsearch-hit")
    expect(hits).to_have_count(1)
    expect(hits.locator(".msgsearch-hit__where")).to_have_text("sanna")
    expect(hits.locator(".msgsearch-hit__who")).to_have_text("sanna")
    expect(hits.locator("mark")).to_have_text("pineapple")

    # Live as they type: a word that is in no message empties the list; a prefix of two words finds it again.
    ben.press("#msgsearch-q", "End")
    ben.locator("#msgsearch-q").press_sequentially(" mango", delay=20)
    expect(ben.locator(".msgsearch-results__empty")).to_contain_text("No messages match")
    expect(ben).to_have_url(re.compile(r"q=pineapple(\+|%20)mango$"))
    ben.fill("#msgsearch-q", "")
    ben.locator("#msgsearch-q").press_sequentially("pinea fri", delay=20)
    expect(hits).to_have_count(1)
    expect(hits.locator("mark")).to_have_text(["pineapple", "Friday"])
    ben.screenshot(path=str(output_dir / "search.png"))

    # The hit opens the conversation around that message, scrolled to it and highlighted.
    hits.locator("a").click()
    expect(ben).to_have_url(re.compile(rf"/c/{conversation}/around/2$"))
    target = ben.locator(f"#msg-{conversation}-2")
    expect(target).to_have_class(re.compile(r"\bmessage--highlight\b"))
    expect(target).to_be_in_viewport()
    expect(target).to_contain_text("The pineapple plan is on for Friday")
    expect(ben.locator(f"#msg-{conversation}-{count}")).not_to_be_in_viewport()
    assert stored(ben).count() > 2
    anna_watch.check()
    ben_watch.check()
