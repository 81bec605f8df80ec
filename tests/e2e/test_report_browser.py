"""Reporting in a real browser: Bob reports a message Alice sent him from the chat page and blocks her; an
operator finds it in the dashboard's queue and removes the message, which turns into "removed by an operator"
on Bob's open screen without a reload."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, new_page
from tests.e2e.test_chat_browser import DOMAIN, chatting, message, say
from tests.servers import BASE_DIR

pytestmark = pytest.mark.e2e


def create_operator(service, username: str) -> None:
    """A superuser in the running service's database, made as an operator makes one (`createsuperuser`)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}}
    env.update(
        {
            "IMWEB_VAR_DIR": str(service.var_dir),
            "DJANGO_SUPERUSER_USERNAME": username,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": f"{username}@example.org",
        }
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_bob_reports_and_blocks_and_the_operator_removes_the_message(service, browser, output_dir):
    alice, _, bob = chatting(service, browser, "ronja", "birk", "send me your password now")
    say(bob, "who is this?")
    own = message(bob, "who is this?")
    own.hover()
    # Report is only on what others sent (the copy of Bob's own message has it, hidden).
    expect(own.get_by_role("link", name="Report")).to_have_count(0)
    reported = message(bob, "send me your password now")
    reported.hover()
    reported.get_by_role("link", name="Report").click()

    expect(bob.get_by_role("heading", name="Report a message")).to_be_visible()
    expect(bob.locator(".report-quote")).to_have_text("send me your password now")
    bob.get_by_label("Abuse or harassment").check()
    bob.get_by_label("Anything the operators should know?").fill("phishing")
    bob.get_by_label(f"Also block ronja@{DOMAIN}").check()
    bob.screenshot(path=str(output_dir / "report-form.png"), full_page=True)
    bob.get_by_role("button", name="Submit report").click()
    expect(bob.get_by_role("status")).to_contain_text("Thanks: the operators will look at it.")
    expect(bob).to_have_url(re.compile(r"/c/\d+/$"))
    expect(message(bob, "send me your password now")).to_be_visible()

    create_operator(service, "vesla")
    desk, desk_console = new_page(browser)
    desk.goto(service.url + "/accounts/login/?next=/dashboard/reports/")
    desk.fill("#id_login", "vesla")
    desk.fill("#id_password", PASSWORD)
    desk.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    entry = desk.locator(".report", has_text="send me your password now")
    expect(entry).to_contain_text("Abuse or harassment")
    expect(entry).to_contain_text("phishing")
    expect(entry).to_contain_text(f"birk@{DOMAIN}")
    expect(entry.get_by_role("link", name=f"ronja@{DOMAIN}")).to_be_visible()
    expect(entry.get_by_role("button", name="Suspend")).to_be_visible()
    desk.screenshot(path=str(output_dir / "report-queue.png"), full_page=True)
    entry.get_by_role("button", name="Remove the message").click()
    expect(desk.get_by_role("status")).to_contain_text("Remove the message: done.")
    expect(desk.locator(".report", has_text="send me your password now")).to_have_count(0)

    # Live on both screens: the tombstone replaces the text without a reload.
    tombstone = bob.locator(".convo__messages .message .message__tombstone")
    expect(tombstone).to_have_text("message removed by an operator")
    expect(bob.get_by_text("send me your password now")).to_have_count(0)
    expect(alice.locator(".convo__messages .message .message__tombstone")).to_have_text(
        "message removed by an operator"
    )
    assert desk_console.errors == []
