"""The history reads like a messenger's in a real browser: a person's consecutive messages form one group (name
and avatar once), a pause of five minutes or the other person starts a new one, days are separated ("Today",
"Yesterday", a date, in the browser's local time), the viewer's own messages carry no name, a message arriving
live joins its group on both screens, and a new picture shows beside its owner's messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ConsoleWatch, sign_up
from tests.e2e.test_chat_browser import befriend, chatting, message, row, say
from tests.servers import BASE_DIR, Service

pytestmark = pytest.mark.e2e

PARIS = "Europe/Paris"

# Stores messages as `send_message` does, then dates them: {"sender", "to", "body", "at"} each, in order.
SEED = """
import json, os, uuid
from datetime import datetime
from accounts.models import User
from chat import actions
from chat.models import Message
for item in json.loads(os.environ["TIMELINE_SEED"]):
    sender = User.objects.get(username=item["sender"])
    to = User.objects.get(username=item["to"]).jid
    stored = actions.send_message(sender, to=to, body=item["body"], client_id=uuid.uuid4())
    Message.objects.filter(pk=stored.pk).update(created_at=datetime.fromisoformat(item["at"]))
"""

# What each line of the open conversation shows, top to bottom: a day separator as "— label —", a message as
# (body, its sender's name shown, an avatar shown, its time shown).
LAYOUT = """list => Array.from(list.children).map(node => {
  const shown = element => !!element && element.checkVisibility({visibilityProperty: true});
  if (node.classList.contains("timeline__day")) return "— " + node.textContent.trim() + " —";
  if (!node.classList.contains("message")) return null;
  const body = node.querySelector(".message__body, .message__event");
  return [body ? body.textContent.trim() : "", shown(node.querySelector(".message__sender")),
          shown(node.querySelector(".message__avatar .avatar")), shown(node.querySelector(".message__time"))];
}).filter(line => line !== null)"""


def seed(service: Service, items: list[dict[str, str]]) -> None:
    """Messages written (and dated) on the server side, the way an operator's shell would."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "IMWEB_VAR_DIR"}
    }
    env |= {"IMWEB_VAR_DIR": str(service.var_dir), **service.extra_env, "TIMELINE_SEED": json.dumps(items)}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def paris_page(browser: Browser) -> tuple[Page, ConsoleWatch]:
    """A browser whose clock says Wednesday 2 December 2026, 15:00, in Paris."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=PARIS)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.clock.set_fixed_time(datetime(2026, 12, 2, 15, 0, tzinfo=ZoneInfo(PARIS)))
    return page, ConsoleWatch(page)


def layout(page: Page) -> list:
    lines = page.locator(".convo__messages").evaluate(LAYOUT)
    return [line if isinstance(line, str) else tuple(line) for line in lines]


def test_history_groups_by_person_and_pause_with_day_separators_in_local_time(service, browser, output_dir):
    ann, ann_console = paris_page(browser)
    ben, _ = paris_page(browser)
    sign_up(ann, service, "ann")
    sign_up(ben, service, "ben")
    befriend(ann, "ann", ben, "ben")
    at = [
        ("ben", "last year", "2025-11-30T10:00:00+00:00"),
        ("ben", "a monday", "2026-11-30T10:00:00+00:00"),
        ("ann", "late last night", "2026-12-01T22:30:00+00:00"),  # 23:30 in Paris: yesterday
        ("ann", "past midnight", "2026-12-01T23:02:00+00:00"),  # 00:02 in Paris: today (still the 1st in UTC)
        ("ben", "morning one", "2026-12-02T08:00:00+00:00"),
        ("ben", "morning two", "2026-12-02T08:01:00+00:00"),
        ("ben", "morning three", "2026-12-02T08:03:00+00:00"),
        ("ben", "after a pause", "2026-12-02T08:09:00+00:00"),  # six minutes later: a new group
        ("ann", "my answer", "2026-12-02T08:10:00+00:00"),
        ("ann", "and more", "2026-12-02T08:11:00+00:00"),
    ]
    seed(service, [{"sender": s, "to": "ben" if s == "ann" else "ann", "body": b, "at": t} for s, b, t in at])
    ann.reload()
    row(ann, "ben").locator("a").click()
    expect(message(ann, "and more")).to_be_visible()

    # Name and avatar once per group, no name (nor avatar) on Ann's own, the follow-ups' time only on hover.
    assert layout(ann) == [
        "— Sunday 30 November 2025 —",
        ("last year", True, True, True),
        "— Monday 30 November —",
        ("a monday", True, True, True),
        "— Yesterday —",
        ("late last night", False, False, True),
        "— Today —",
        ("past midnight", False, False, True),
        ("morning one", True, True, True),
        ("morning two", False, False, False),
        ("morning three", False, False, False),
        ("after a pause", True, True, True),
        ("my answer", False, False, True),
        ("and more", False, False, False),
    ]
    expect(message(ann, "morning one").locator(".message__sender")).to_have_text("ben")
    expect(row(ann, "ben").locator(".convrow__time")).to_have_text("09:11")  # the list too is in Paris time
    expect(message(ann, "past midnight").locator(".message__time")).to_have_text("00:02")  # Paris time
    message(ann, "morning two").hover()
    expect(message(ann, "morning two").locator(".message__time")).to_be_visible()
    expect(message(ann, "morning two").locator(".message__time")).to_have_text("09:01")
    ann.screenshot(path=str(output_dir / "timeline-history.png"))

    # Ben sees the same groups from his side: his own without a name, Ann's with hers and her initial.
    ben.reload()
    row(ben, "ann").locator("a").click()
    expect(message(ben, "and more")).to_be_visible()
    assert layout(ben)[4:9] == [
        "— Yesterday —",
        ("late last night", True, True, True),
        "— Today —",
        ("past midnight", True, True, True),
        ("morning one", False, False, True),
    ]
    expect(message(ben, "my answer").locator(".message__avatar")).to_have_text("A")
    assert ann_console.errors == []


def test_live_messages_join_their_group_on_both_screens_and_a_new_picture_shows_beside_them(
    service, browser, tmp_path, output_dir
):
    cat, cat_console, dan = chatting(service, browser, "cat", "dan", "first from cat")
    say(cat, "second from cat")
    expect(message(dan, "second from cat")).to_be_visible()
    expect(message(cat, "second from cat")).to_be_visible()
    for page, cat_named in ((cat, False), (dan, True)):
        assert layout(page) == [
            "— Today —",
            ("first from cat", cat_named, cat_named, True),
            ("second from cat", False, False, False),
        ]
    expect(message(dan, "first from cat").locator(".message__avatar .avatar--initials")).to_have_text("C")

    # The other person answers: a new group, with his name and avatar on Cat's screen, none on his own.
    say(dan, "hello cat")
    expect(message(cat, "hello cat").locator(".message__sender")).to_be_visible()
    expect(message(cat, "hello cat").locator(".message__avatar")).to_have_text("D")
    expect(message(dan, "hello cat").locator(".message__sender")).to_be_hidden()
    expect(message(dan, "hello cat").locator(".message__time")).to_be_visible()  # it starts his group
    say(dan, "how are you?")
    expect(message(cat, "how are you?")).to_be_visible()
    assert layout(cat)[3:] == [("hello cat", True, True, True), ("how are you?", False, False, False)]
    dan.evaluate("window.__samePage = true")  # gone if the page reloads

    # Cat sets a picture on her Profile, in another tab: Dan's open conversation shows it at once at the head of
    # her group (not on the follow-up), and so does a reload, which draws the same groups from the history.
    settings = cat.context.new_page()
    settings.goto(service.url + "/accounts/profile/")
    picture = tmp_path / "cat.png"
    Image.new("RGB", (200, 200), (30, 140, 90)).save(picture)
    settings.set_input_files("#id_avatar", str(picture))
    settings.get_by_role("button", name=re.compile("upload", re.I)).click()
    expect(settings.get_by_text("Your avatar was updated.")).to_be_visible()
    head = message(dan, "first from cat").locator(".message__avatar img.avatar")
    expect(head).to_be_visible()
    expect(head).to_have_attribute("src", re.compile(r"/cat\b"))
    assert head.evaluate("img => img.complete && img.naturalWidth") > 0
    expect(message(dan, "second from cat").locator(".message__avatar img.avatar")).to_be_hidden()
    assert dan.evaluate("window.__samePage") is True

    dan.reload()
    expect(message(dan, "first from cat").locator(".message__avatar img.avatar")).to_be_visible()
    assert layout(dan) == [
        "— Today —",
        ("first from cat", True, True, True),
        ("second from cat", False, False, False),
        ("hello cat", False, False, True),
        ("how are you?", False, False, False),
    ]
    cat.screenshot(path=str(output_dir / "timeline-live-sender.png"))
    dan.screenshot(path=str(output_dir / "timeline-live-receiver.png"))
    assert cat_console.errors == []
