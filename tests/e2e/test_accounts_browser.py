"""A new user signs up, verifies their email, logs out and in, and edits their profile, in a real Chromium."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, new_page, sign_up
from tests.servers import wait_for

pytestmark = pytest.mark.e2e


def confirmation_link(service, address: str) -> str:
    def find() -> str | None:
        for mail in service.emails():
            if f"To: {address}" in mail:
                match = re.search(r"https?://\S+/accounts/confirm-email/\S+", mail)
                if match:
                    return match.group(0)
        return None

    return wait_for(find, 15, f"a confirmation email to {address}")  # type: ignore[return-value]


def png_file(tmp_path) -> str:
    path = tmp_path / "me.png"
    Image.new("RGB", (320, 320), (30, 120, 200)).save(path)
    return str(path)


def test_sign_up_verify_log_out_log_in_and_edit_profile(service, browser, output_dir, tmp_path):
    page, console = new_page(browser)

    page.goto(service.url)
    expect(page.get_by_text("XMPP").first).to_be_visible()
    page.get_by_role("link", name=re.compile("sign up", re.I)).first.click()

    page.fill("#id_username", "Zoe")
    page.fill("#id_email", "zoe@example.org")
    page.fill("#id_password1", PASSWORD)
    page.get_by_role("button", name=re.compile("sign up", re.I)).click()

    # Signed in, lowercase username, and asked to confirm the email address.
    expect(page.get_by_text("Please confirm your email address")).to_be_visible()
    expect(page.locator("body")).to_contain_text("zoe@imweb.localhost")

    page.goto(confirmation_link(service, "zoe@example.org"))
    page.get_by_role("button", name=re.compile("confirm", re.I)).click()
    page.goto(service.url)
    expect(page.get_by_text("Please confirm your email address")).to_have_count(0)

    page.get_by_role("button", name=re.compile("sign out", re.I)).click()
    expect(page.get_by_role("link", name=re.compile("log in", re.I)).first).to_be_visible()

    page.get_by_role("link", name=re.compile("log in", re.I)).first.click()
    page.fill("#id_login", "zoe")
    page.fill("#id_password", "not my password")
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    expect(page.get_by_role("alert").first).to_contain_text(re.compile("not correct", re.I))
    page.fill("#id_login", "zoe")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    expect(page.locator("body")).to_contain_text("zoe@imweb.localhost")

    page.get_by_role("link", name=re.compile("profile", re.I)).first.click()
    page.fill("#id_display_name", "Zoë Zimmer")
    page.fill("#id_status_message", "at lunch")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status").filter(has_text=re.compile("saved", re.I))).to_be_visible()
    # The top bar refreshed itself over htmx, without a page load.
    expect(page.locator("header")).to_contain_text("Zoë Zimmer")
    expect(page.locator("header")).to_contain_text("at lunch")

    page.set_input_files("#id_avatar", png_file(tmp_path))
    page.get_by_role("button", name=re.compile("upload", re.I)).click()
    expect(page.get_by_text("Your avatar was updated.")).to_be_visible()
    avatar = page.locator("header img.avatar").first
    expect(avatar).to_be_visible()
    assert avatar.evaluate("img => img.naturalWidth") == 256

    page.goto(service.url)
    expect(page.locator("header")).to_contain_text("at lunch")
    page.screenshot(path=str(output_dir / "signed-in.png"), caret="initial")

    assert console.errors == []


def test_the_signed_in_shell_fits_a_360px_phone(service, browser, output_dir):
    page, console = new_page(browser, width=360, height=740)
    sign_up(page, service, "mobile")

    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 360, f"the page scrolls sideways at 360 px ({scroll_width} px wide)"
    page.screenshot(path=str(output_dir / "signed-in-mobile.png"), caret="initial")
    assert console.errors == []


def test_avatar_upload_of_a_non_image_shows_the_error_next_to_the_field(service, browser, tmp_path):
    page, _ = new_page(browser)
    sign_up(page, service, "yann")
    page.goto(service.url + "/accounts/profile/")

    fake = tmp_path / "fake.png"
    fake.write_bytes(b"this is not a picture")
    page.set_input_files("#id_avatar", str(fake))
    page.get_by_role("button", name=re.compile("upload", re.I)).click()

    expect(page.get_by_text("not an image we can read")).to_be_visible()
    described_by = page.get_attribute("#id_avatar", "aria-describedby") or ""
    assert any("not an image we can read" in (page.text_content(f"#{part}") or "") for part in described_by.split()), (
        described_by
    )
