"""Two-factor sign-in set up from the profile and used to sign in (a code, then a recovery code), and the
signed-in sessions page signing another browser out, in a real Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.accounts.test_two_factor import code_for
from tests.e2e.conftest import PASSWORD, new_page, sign_up
from tests.e2e.test_accounts_browser import confirmation_link

pytestmark = pytest.mark.e2e


def sign_in_with_password(page: Page, service, username: str) -> None:
    page.goto(service.url + "/accounts/login/")
    page.fill("#id_login", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name=re.compile("sign out", re.I)).first.click()
    expect(page.get_by_role("link", name=re.compile("log in", re.I)).first).to_be_visible()


def test_two_factor_sign_in_with_a_code_then_a_recovery_code(service, browser, output_dir):
    page, console = new_page(browser)
    sign_up(page, service, "tess")
    page.goto(confirmation_link(service, "tess@example.org"))
    page.get_by_role("button", name=re.compile("confirm", re.I)).click()

    page.goto(service.url + "/accounts/profile/")
    security = page.locator("#security")
    expect(security).to_contain_text("Two-factor sign-in is off")
    security.get_by_role("link", name="Set up two-factor sign-in").click()
    page.fill("#id_password", PASSWORD)  # allauth asks for the password again before changing it
    page.get_by_role("button", name=re.compile("confirm", re.I)).click()

    expect(page.locator("img.totp-qr")).to_be_visible()
    assert page.locator("img.totp-qr").evaluate("img => img.naturalWidth") > 0  # the data: URL loaded
    page.screenshot(path=str(output_dir / "two-factor-setup.png"), caret="initial")
    secret = page.locator("#authenticator_secret").input_value()
    page.fill("#id_code", code_for(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()

    codes = page.locator(".recovery-codes__code")
    expect(codes).to_have_count(10)
    recovery = codes.nth(3).inner_text().strip()
    page.screenshot(path=str(output_dir / "two-factor-recovery-codes.png"), caret="initial")
    page.goto(service.url + "/accounts/profile/")
    expect(security).to_contain_text("Two-factor sign-in is on")
    security.screenshot(path=str(output_dir / "two-factor-profile.png"), caret="initial")

    sign_out(page)
    sign_in_with_password(page, service, "tess")
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    page.fill("#id_code", "000000" if code_for(secret) != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Incorrect code")).to_be_visible()
    page.screenshot(path=str(output_dir / "two-factor-sign-in.png"), caret="initial")
    page.fill("#id_code", code_for(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_contain_text("tess@imweb.localhost")

    sign_out(page)
    sign_in_with_password(page, service, "tess")
    page.fill("#id_code", recovery)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_contain_text("tess@imweb.localhost")
    page.goto(service.url + "/accounts/profile/")
    expect(security).to_contain_text("9 unused codes")

    assert console.errors == []


def test_sign_out_everywhere_else_sends_the_other_browser_to_sign_in(service, browser, output_dir):
    laptop, console = new_page(browser)
    sign_up(laptop, service, "sam")
    phone, _ = new_page(browser, width=390, height=800)
    sign_in_with_password(phone, service, "sam")
    expect(phone.locator("body")).to_contain_text("sam@imweb.localhost")
    phone.goto(service.url + "/accounts/profile/")

    laptop.goto(service.url + "/accounts/profile/")
    laptop.locator("#security").get_by_role("link", name="Signed-in sessions").click()
    sessions = laptop.locator(".sessions__item")
    expect(sessions).to_have_count(2)
    expect(laptop.locator(".sessions__item--current")).to_contain_text("This browser")
    expect(sessions.first).to_contain_text("Chrome on Linux")
    laptop.screenshot(path=str(output_dir / "signed-in-sessions.png"), caret="initial")

    laptop.get_by_role("button", name="Sign out everywhere else").click()
    expect(sessions).to_have_count(1)
    expect(laptop.get_by_role("button", name="Sign out everywhere else")).to_have_count(0)

    phone.reload()
    expect(phone).to_have_url(re.compile(r"/accounts/login/"))
    expect(phone.locator("#id_login")).to_be_visible()
    laptop.reload()
    expect(laptop.locator(".sessions__item--current")).to_be_visible()  # this browser stays signed in

    assert console.errors == []
