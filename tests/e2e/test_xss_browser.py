"""Every hostile body of tests/chat/xss_corpus.py, typed into the real composer and shown in a real Chromium:
as text only. No dialog opens, no request leaves for anything but the app's own pages, static files and socket,
no console error (a CSP violation would be one), and only the allowed markup exists inside message bodies;
both when the messages arrive live over the WebSocket and when the page is loaded again."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.chat.xss_corpus import XSS_CORPUS
from tests.e2e.conftest import ConsoleWatch, new_page, sign_up

pytestmark = pytest.mark.e2e

DOMAIN = "imweb.localhost"
# What the app's own pages load: the page itself, its static files, htmx fragments of the conversation.
ALLOWED_PATHS = re.compile(
    r"^/(|static/.+|c/\d+/(messages|around/\d+)?|chat/new|search|_/topbar|contacts/.*|favicon\.ico)$"
)
# Bodies with no markdown in them: the reader sees exactly what was typed.
SHOWN_AS_TYPED = {
    "script tag",
    "img onerror",
    "svg onload",
    "htmx get on load",
    "htmx on",
    "django template syntax",
    "iframe",
    "meta refresh",
    "noscript mutation",
}
# A sender may send 20 messages per 10 s: three senders share the corpus, each well within it.
SENDERS = 3
ALLOWED_MARKUP = """() => {
  const allowed = {P: [], BR: [], STRONG: [], EM: [], CODE: [], PRE: [], A: ["href", "rel", "target"]};
  const bad = [];
  const boxes = document.querySelectorAll(".message__body > .message-text");
  for (const box of boxes) {
    if (box.getAttribute("dir") !== "auto") bad.push("a body without dir=auto");
    for (const el of box.querySelectorAll("*")) {
      if (!(el.tagName in allowed)) { bad.push("<" + el.tagName + ">"); continue; }
      for (const attr of el.attributes) {
        if (!allowed[el.tagName].includes(attr.name)) bad.push(el.tagName + " " + attr.name + "=" + attr.value);
      }
      if (el.tagName === "A" && !/^(https?:|mailto:)/i.test(el.getAttribute("href") || "")) {
        bad.push("link to " + el.getAttribute("href"));
      }
    }
  }
  return {count: boxes.length, bad: bad};
}"""


class Watch:
    """Everything a page does that hostile content could cause: dialogs, requests, console errors."""

    def __init__(self, page: Page, console: ConsoleWatch, origin: str) -> None:
        self.origin = origin
        self.console = console
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self._dialog)
        page.on("request", lambda request: self.requests.append(request.url))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def check(self) -> None:
        assert self.dialogs == []
        outside = []
        for url in self.requests:
            parts = urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}" != self.origin or not ALLOWED_PATHS.match(parts.path):
                outside.append(url)
        assert outside == []
        assert self.console.errors == []


def open_page(browser, service) -> tuple[Page, Watch]:
    page, console = new_page(browser)
    return page, Watch(page, console, service.url)


def befriend(asker: Page, answerer: Page, asker_name: str, answerer_name: str) -> None:
    asker.fill("#add-contact-jid", f"{answerer_name}@{DOMAIN}")
    asker.locator("form.add-contact").get_by_role("button", name="Add", exact=True).click()
    answerer.get_by_role("button", name=f"Accept {asker_name}@{DOMAIN}").click()
    row = asker.locator(f'#roster li[data-jid="{answerer_name}@{DOMAIN}"]')
    expect(row).to_have_attribute("data-show", "available")


def stored(page: Page):
    """Messages the server has confirmed (a pending one has no seq yet)."""
    return page.locator("#pane article.message[data-seq]")


def type_and_send(page: Page, body: str, expected: int) -> None:
    page.fill("#composer-body", body)
    page.locator("#composer").get_by_role("button", name="Send").click()
    expect(stored(page)).to_have_count(expected)


def start_conversation(page: Page, service, to: str) -> int:
    """Send a first message to `to` from the composer of a new conversation; returns the conversation id."""
    page.goto(f"{service.url}/chat/new?to={to}@{DOMAIN}")
    page.fill("#composer-body", f"hello from {to}'s test")
    page.locator("#composer").get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))  # once stored, the page opens the new conversation
    expect(stored(page)).to_have_count(1)
    return int(re.search(r"/c/(\d+)/$", page.url).group(1))


def assert_all_shown_as_text(page: Page, bodies: list[tuple[str, str]], *, links: bool) -> None:
    expect(stored(page)).to_have_count(len(bodies) + 1)
    texts = page.locator("#pane .message__body").all_inner_texts()
    for name, body in bodies:
        marker = next(word for word in re.split(r"[\s<>]", body) if word.startswith("XSS"))
        assert any(marker in text for text in texts), f"{name}: {marker} not shown"
    for name, body in bodies:
        if name in SHOWN_AS_TYPED:
            assert body in texts, f"{name} is not shown exactly as typed"
    result = page.evaluate(ALLOWED_MARKUP)
    assert result["count"] == len(bodies) + 1
    assert result["bad"] == []
    hrefs = page.locator("#pane .message-text a").evaluate_all("links => links.map(a => a.href)")
    if links:
        # Typed URLs become links (https://evil.example/x.js too: visiting it is the reader's choice), never
        # with another scheme, and each opens in a new tab without a referrer or a handle on this page.
        assert hrefs and all(h.startswith(("https://", "mailto:")) for h in hrefs), hrefs
        rels = page.locator("#pane .message-text a").evaluate_all("links => links.map(a => a.rel + ' ' + a.target)")
        assert set(rels) == {"nofollow noopener noreferrer _blank"}
    else:
        assert hrefs == []


def test_hostile_messages_render_as_inert_text_live_and_after_reload(service, browser, output_dir):
    reader, reader_watch = open_page(browser, service)
    sign_up(reader, service, "xreader")
    senders = []
    for i in range(SENDERS):
        page, watch = open_page(browser, service)
        sign_up(page, service, f"xsender{i}")
        senders.append((f"xsender{i}", page, watch))
    # The first sender is a contact (links clickable); the others are strangers, whose messages wait in Requests.
    befriend(senders[0][1], reader, senders[0][0], "xreader")
    for watch in [reader_watch] + [watch for _, _, watch in senders]:
        watch.requests.clear()  # signing up and adding a contact are not under test; from here on, all is

    share = -(-len(XSS_CORPUS) // SENDERS)
    for index, (_, page, watch) in enumerate(senders):
        bodies = XSS_CORPUS[index * share : (index + 1) * share]
        conversation = start_conversation(page, service, "xreader")
        reader.goto(f"{service.url}/c/{conversation}/")
        expect(stored(reader)).to_have_count(1)
        for count, (_, body) in enumerate(bodies, start=2):
            type_and_send(page, body, count)
        # Live: every message reached the open page over the WebSocket.
        assert_all_shown_as_text(reader, bodies, links=index == 0)
        assert_all_shown_as_text(page, bodies, links=True)  # the sender's own copy
        # Loaded again: the same, rendered by the page instead of pushed.
        reader.reload()
        reader.wait_for_load_state("networkidle")
        assert_all_shown_as_text(reader, bodies, links=index == 0)
        watch.check()
        reader_watch.check()
    reader.screenshot(path=str(output_dir / "xss-corpus.png"), full_page=True)
