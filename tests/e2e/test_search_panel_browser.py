"""Search in place, in a real browser: the conversation's Search button (or "/") opens a panel over the
conversation, hits load as you type with no page load, show who, when and where with the matched words marked
and the message's HTML as text; a hit already on screen is jumped to in place, an old one opens the
conversation around it, highlighted; Esc closes the panel and gives the focus back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ConsoleWatch
from tests.e2e.test_chat_browser import chatting, message
from tests.servers import BASE_DIR, Service

pytestmark = pytest.mark.e2e

FILLER = 60  # newer messages than the old one: more than a page of history (chat.views.PAGE_SIZE)

# Messages stored as the composer stores them, written from the server side: {"sender", "to", "body"} each.
SEED = """
import json, os, uuid
from accounts.models import User
from chat import actions
for item in json.loads(os.environ["SEARCH_SEED"]):
    sender = User.objects.get(username=item["sender"])
    to = User.objects.get(username=item["to"]).jid
    actions.send_message(sender, to=to, body=item["body"], client_id=uuid.uuid4())
"""


def shell(service: Service, code: str, env: dict[str, str] | None = None) -> None:
    """Run `code` in `manage.py shell` against the service's database, the way an operator's shell would."""
    full = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "IMWEB_VAR_DIR"}
    }
    full |= {"IMWEB_VAR_DIR": str(service.var_dir), **service.extra_env, **(env or {})}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR, env=full, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def seed(service: Service, items: list[dict[str, str]]) -> None:
    """Many messages at once, written from the server side (no rate limit for the shell)."""
    shell(service, SEED, {"IMWEB_MESSAGE_RATE_LIMITS": "100000/1", "SEARCH_SEED": json.dumps(items)})


def panel(page: Page):
    return page.locator("#search-panel")


def hits(page: Page):
    return panel(page).locator(".msgsearch-hit")


def test_a_hit_opens_an_old_message_in_its_conversation_and_shows_html_as_text(service, browser):
    _ann, ann_console, ben = chatting(service, browser, "spana", "spanb", "hello from ann")
    ben_console = ConsoleWatch(ben)
    items = [{"sender": "spana", "to": "spanb", "body": "the <b>pineapple</b> plan is on"}]
    items += [{"sender": "spana", "to": "spanb", "body": f"filler note {i}"} for i in range(FILLER)]
    seed(service, items)
    ben.reload()
    expect(message(ben, f"filler note {FILLER - 1}")).to_be_visible()
    conversation = ben.locator("#pane").get_attribute("data-conversation")
    expect(message(ben, "the <b>pineapple</b> plan is on")).to_have_count(0)  # not on the first page
    ben.evaluate("window.__samePage = true")

    button = ben.locator(".convo__head").get_by_role("link", name="Search")
    expect(button).to_have_attribute("title", re.compile(r"Ctrl\+Shift\+F"))
    button.click()
    expect(panel(ben)).to_be_visible()
    expect(ben.locator("#search-panel-q")).to_be_focused()
    ben.locator("#search-panel-q").press_sequentially("pinea", delay=20)

    expect(hits(ben)).to_have_count(1)
    hit = hits(ben).first
    expect(hit.locator(".msgsearch-hit__where")).to_have_text("spana")
    expect(hit.locator(".msgsearch-hit__who")).to_have_text("spana")
    expect(hit.locator(".msgsearch-hit__when")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    expect(hit.locator("mark")).to_have_text("pineapple")
    expect(hit.locator(".msgsearch-hit__snippet")).to_have_text("the <b>pineapple</b> plan is on")
    expect(hit.locator(".msgsearch-hit__snippet b")).to_have_count(0)
    assert ben.evaluate("window.__samePage") is True  # the results came without a page load
    assert ben.url.endswith(f"/c/{conversation}/")

    hit.locator("a").click()
    expect(ben).to_have_url(re.compile(rf"/c/{conversation}/around/2$"))
    target = ben.locator(f"#msg-{conversation}-2")
    expect(target).to_have_class(re.compile(r"\bmessage--highlight\b"))
    expect(target).to_be_in_viewport()
    expect(target.locator(".message__body")).to_have_text("the <b>pineapple</b> plan is on")
    assert not ann_console.errors and not ben_console.errors


def test_a_hit_on_screen_is_jumped_to_in_place_and_esc_gives_the_focus_back(service, browser):
    _ann, ann_console, ben = chatting(service, browser, "spanc", "spand", "the mango is ripe")
    ben_console = ConsoleWatch(ben)
    conversation = ben.locator("#pane").get_attribute("data-conversation")
    ben.evaluate("window.__samePage = true")

    ben.locator("#pane-title").click()  # the focus is on no field: "/" opens the panel
    ben.keyboard.press("/")
    expect(panel(ben)).to_be_visible()
    expect(ben.get_by_role("radio", name="In this conversation")).to_be_checked()
    ben.locator("#search-panel-q").press_sequentially("mang", delay=20)
    expect(hits(ben)).to_have_count(1)
    hits(ben).locator("a").click()

    expect(panel(ben)).to_be_hidden()
    target = message(ben, "the mango is ripe")
    expect(target).to_have_class(re.compile(r"\bmessage--highlight\b"))
    expect(target).to_be_focused()
    assert ben.evaluate("window.__samePage") is True
    assert ben.url.endswith(f"/c/{conversation}/")

    # Opened from the button, Esc closes it and the button has the focus again; the words are still there.
    button = ben.locator(".convo__head").get_by_role("link", name="Search")
    button.click()
    expect(ben.locator("#search-panel-q")).to_be_focused()
    expect(ben.locator("#search-panel-q")).to_have_value("mang")
    ben.keyboard.press("Escape")
    expect(panel(ben)).to_be_hidden()
    expect(button).to_be_focused()

    # From the composer, Ctrl+Shift+F opens it too, and the close button gives the focus back there.
    ben.locator("#composer-body").focus()
    ben.keyboard.press("Control+Shift+F")
    expect(panel(ben)).to_be_visible()
    panel(ben).get_by_role("button", name="Close the search").click()
    expect(panel(ben)).to_be_hidden()
    expect(ben.locator("#composer-body")).to_be_focused()
    assert not ann_console.errors and not ben_console.errors
