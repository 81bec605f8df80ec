"""Download your data, in a real browser against the real service (its Celery worker prepares the zip): the
progress shows while it is prepared, in every open tab of the person, then a Download link that gives a zip with
their conversation in it; a reload still shows it."""

from __future__ import annotations

import json
import re
import zipfile

import pytest
from playwright.sync_api import expect

from tests.e2e.test_chat_browser import chatting

pytestmark = pytest.mark.e2e

DOMAIN = "imweb.localhost"


def test_a_person_prepares_and_downloads_their_data_in_every_tab(service, browser, tmp_path, output_dir):
    page, console, _ = chatting(service, browser, "exa", "exb", "hello from the export test")
    page.goto(service.url + "/accounts/profile/")
    page.get_by_role("link", name="Download your data").click()
    other = page.context.new_page()  # a second tab of the same person, open before the request
    other.goto(service.url + "/accounts/data/")
    expect(other.locator("#export-status")).to_contain_text("You have not asked for an archive yet")

    page.get_by_role("button", name="Prepare my archive").click()
    download_link = page.get_by_role("link", name="Download your data", exact=True)
    expect(page.locator("#export-status progress").or_(download_link)).to_be_visible()
    expect(download_link).to_be_visible(timeout=30_000)
    expect(other.get_by_role("link", name="Download your data", exact=True)).to_be_visible(timeout=30_000)
    expect(page.locator("#export-status")).to_contain_text("Available until")

    page.reload()
    page.screenshot(path=output_dir / "export-ready.png", full_page=True)
    with page.expect_download() as pending:
        page.get_by_role("link", name="Download your data", exact=True).click()
    download = pending.value
    assert re.fullmatch(r"imweb-data-exa-\d{4}-\d{2}-\d{2}\.zip", download.suggested_filename)
    path = tmp_path / "export.zip"
    download.save_as(path)
    with zipfile.ZipFile(path) as archive:
        assert json.loads(archive.read("profile.json"))["jid"] == f"exa@{DOMAIN}"
        (conversation,) = [json.loads(archive.read(n)) for n in archive.namelist() if n.startswith("conversations/")]
        assert [m["body"] for m in conversation["messages"]] == ["hello from the export test"]
        assert "exb@example.org" not in archive.read("conversations/1.json").decode()
    assert console.errors == []
