"""What a person sees when a limit or a fault holds them back: messages written faster than the per-person limit
stay queued on screen and go by themselves, once each and in order, when the server says they may; a tab over
the per-person socket limit says so; a web process that dies shows "Reconnecting" and the tab comes back by
itself, with what was written meanwhile. Nothing the person wrote is lost or doubled."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import new_page, sign_up
from tests.e2e.test_chat_browser import chatting, message, say
from tests.servers import Service

pytestmark = pytest.mark.e2e

BURST = 7


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # Three messages per four seconds: a burst of seven is refused (twice) before it all goes through. Three
    # sockets per person, and one web process, so that the fourth tab meets the limit and a kill stops the site.
    env = {"IMWEB_MESSAGE_RATE_LIMITS": "3/4", "IMWEB_MAX_SOCKETS_PER_PERSON": "3", "IMWEB_WEB_PROCESSES": "1"}
    service = Service(Path(tmp_path_factory.mktemp("svc")), env=env).start()
    yield service
    assert service.stop() == 0, service.log()


def test_messages_over_the_limit_wait_on_screen_and_go_by_themselves_once_each(service, browser):
    ada, ada_console, bo = chatting(service, browser, "ada", "bo", "hello 0")

    for n in range(1, BURST + 1):
        say(ada, f"burst {n}")
    # Some are held back, and say so, instead of vanishing or landing in the composer.
    expect(ada.locator(".message--pending .message__status", has_text="sending too fast").first).to_be_visible()
    expect(ada.locator("#composer-body")).to_have_value("")
    # All of them arrive, once each, in the order they were written, on both sides.
    for page in (ada, bo):
        expect(message(page, f"burst {BURST}")).to_be_visible(timeout=30_000)
        bodies = page.locator(".convo__messages .message[data-seq] .message__body").all_inner_texts()
        assert [b for b in bodies if b.startswith("burst")] == [f"burst {n}" for n in range(1, BURST + 1)]
    expect(ada.locator(".message--pending")).to_have_count(0)
    assert ada_console.errors == []


def test_messages_still_waiting_when_the_page_reloads_go_out_once_each_from_the_new_page(service, browser):
    eva, eva_console, bea = chatting(service, browser, "eva", "bea", "hi 0")
    for n in range(1, BURST + 1):
        say(eva, f"wait {n}")
    expect(eva.locator(".message--pending .message__status", has_text="sending too fast").first).to_be_visible()
    eva.reload()  # with some of them not stored yet
    for page in (eva, bea):
        expect(message(page, f"wait {BURST}")).to_be_visible(timeout=30_000)
        bodies = page.locator(".convo__messages .message[data-seq] .message__body").all_inner_texts()
        assert [b for b in bodies if b.startswith("wait")] == [f"wait {n}" for n in range(1, BURST + 1)]
    expect(eva.locator(".message--pending")).to_have_count(0)
    bea.reload()  # stored once each, not only shown once
    bodies = bea.locator(".convo__messages .message[data-seq] .message__body").all_inner_texts()
    assert [b for b in bodies if b.startswith("wait")] == [f"wait {n}" for n in range(1, BURST + 1)]
    assert eva_console.errors == []


def test_two_first_messages_to_someone_new_both_arrive_once_on_the_conversations_page(service, browser):
    fia, fia_console = new_page(browser)
    gus, _ = new_page(browser)
    sign_up(fia, service, "fia")
    sign_up(gus, service, "gus")
    fia.goto(service.url + "/chat/new?to=gus@imweb.localhost")
    say(fia, "first of two")
    say(fia, "second of two")  # at once: the first one's stored answer opens the conversation's own page
    expect(fia).to_have_url(re.compile(r"/c/\d+/$"))
    for text in ("first of two", "second of two"):
        expect(message(fia, text)).to_have_count(1)
    expect(fia.locator(".message--pending")).to_have_count(0, timeout=30_000)
    fia.reload()
    bodies = fia.locator(".convo__messages .message[data-seq] .message__body").all_inner_texts()
    assert bodies.count("first of two") == 1 and bodies.count("second of two") == 1
    assert fia_console.errors == []


def test_a_tab_over_the_socket_limit_says_why_and_works_once_another_is_closed(service, browser):
    first, _ = new_page(browser)
    sign_up(first, service, "cy")
    tabs = [first, *(first.context.new_page() for _ in range(2))]
    for tab in tabs[1:]:
        tab.goto(service.url + "/")
    for tab in tabs:
        expect(tab.locator("#roster")).to_be_visible()
    expect(first.locator("#connection-status")).to_be_hidden()

    extra = first.context.new_page()
    extra.goto(service.url + "/")
    expect(extra.locator("#connection-status")).to_have_text(re.compile("Too many imweb tabs are open"))
    for tab in tabs:
        expect(tab.locator("#connection-status")).to_be_hidden()

    tabs.pop().close()
    extra.reload()
    expect(extra.locator("#roster")).to_be_visible()
    # Live again: a contact request reaches this tab without a reload.
    other, _ = new_page(browser)
    sign_up(other, service, "dee")
    other.fill("#add-contact-jid", "cy@imweb.localhost")
    other.locator("form.add-contact").get_by_role("button", name="Add", exact=True).click()
    expect(extra.get_by_role("button", name="Accept dee@imweb.localhost")).to_be_visible()
    expect(extra.locator("#connection-status")).to_be_hidden()


def test_a_dead_web_process_shows_reconnecting_and_the_tab_catches_up_by_itself(service, browser):
    eve, eve_console, fay = chatting(service, browser, "eve", "fay", "before the fault")

    web = json.loads((service.var_dir / "supervisor.json").read_text())["children"]["web"]["pid"]
    os.kill(web, signal.SIGKILL)
    for page in (eve, fay):
        expect(page.locator("#connection-status")).to_have_text(re.compile("Reconnecting"), timeout=10_000)
    say(eve, "written while it was down")

    # The supervisor starts a new web process; both tabs reconnect, the banner goes, the message goes out once.
    for page in (eve, fay):
        expect(page.locator("#connection-status")).to_be_hidden(timeout=60_000)
        expect(message(page, "written while it was down")).to_be_visible(timeout=15_000)
        bodies = page.locator(".convo__messages .message[data-seq] .message__body").all_inner_texts()
        assert bodies.count("written while it was down") == 1, bodies
    expect(eve.locator(".message--pending")).to_have_count(0)
    assert [e for e in eve_console.errors if "WebSocket" not in e] == []
