"""Files in a conversation, in real browsers: an image pasted into the composer and one dropped on the
conversation reach the other person as thumbnails, live and after a reload, and open full size in the viewer; a
large file shows its upload's progress and a message waits for it; a file too large or of a refused type says why
on its chip, and what was written stays in the composer."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.test_chat_browser import chatting, message
from tests.servers import Service

pytestmark = pytest.mark.e2e

LIMIT = 3 * 1024 * 1024  # small, so that a file near it uploads quickly

# Puts a PNG made from base64 into the composer the way a paste of a screenshot does.
PASTE = """([data, name]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const files = new DataTransfer();
  files.items.add(new File([bytes], name, { type: "image/png" }));
  const input = document.getElementById("composer-body");
  input.focus();
  input.dispatchEvent(new ClipboardEvent("paste", { clipboardData: files, bubbles: true, cancelable: true }));
}"""

# Drags a PNG over the conversation (the drop zone shows), or lets it go there.
DRAG = """([data, name, kind]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const files = new DataTransfer();
  files.items.add(new File([bytes], name, { type: "image/png" }));
  const target = document.getElementById("message-scroll");
  const kinds = kind === "drop" ? ["dragover", "drop"] : ["dragenter", "dragover"];
  for (const type of kinds) {
    target.dispatchEvent(new DragEvent(type, { dataTransfer: files, bubbles: true, cancelable: true }));
  }
}"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(Path(tmp_path_factory.mktemp("svc")), env={"IMWEB_MAX_FILE_BYTES": str(LIMIT)}).start()
    yield service
    assert service.stop() == 0, service.log()


def png(width: int, height: int, colour: str) -> str:
    """A PNG of one colour, base64-encoded for the page."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def in_conversation(page: Page) -> None:
    """The first message opened the conversation's own page: uploads go to that conversation."""
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))
    expect(page.locator("#composer")).to_have_attribute("data-conversation", re.compile(r"^\d+$"))


def chip(page: Page, name: str):
    return page.locator("#attach-tray .attach-chip", has=page.locator(".attach-chip__name", has_text=name))


def thumbnails(page: Page):
    return page.locator(".convo__messages .message[data-seq] .attachment--image img.attachment__thumb")


def test_pasted_and_dropped_images_reach_the_other_person_as_thumbnails_and_open_in_the_viewer(
    service, browser, output_dir
):
    ada, ada_console, bo = chatting(service, browser, "ada", "bo", "photos coming")
    in_conversation(ada)

    # A pasted image becomes a chip with a local preview, uploaded; Enter sends it with no text.
    ada.evaluate(PASTE, [png(640, 400, "red"), "red.png"])
    expect(chip(ada, "red.png")).to_have_class(re.compile(r"attach-chip--done"))
    expect(chip(ada, "red.png").locator(".attach-chip__preview")).to_be_visible()
    ada.locator("#composer-body").press("Enter")
    expect(ada.locator("#attach-tray")).to_be_hidden()
    expect(thumbnails(bo)).to_have_count(1, timeout=30_000)  # live, once the thumbnail is made

    # Files dragged over the conversation show the drop zone; dropped, they join the tray.
    ada.evaluate(DRAG, [png(600, 300, "blue"), "blue.png", "enter"])
    expect(ada.locator(".attach-drop")).to_be_visible()
    expect(ada.locator(".attach-drop")).to_contain_text("Drop files to share them")
    ada.evaluate(DRAG, [png(600, 300, "blue"), "blue.png", "drop"])
    expect(ada.locator(".attach-drop")).to_be_hidden()
    expect(chip(ada, "blue.png")).to_have_class(re.compile(r"attach-chip--done"))
    ada.locator("#composer-body").fill("and a blue one")
    ada.locator("#composer-body").press("Enter")
    expect(message(bo, "and a blue one").locator(".attachment__thumb")).to_be_visible(timeout=30_000)
    expect(thumbnails(bo)).to_have_count(2)

    # Stored, not only pushed: a reload shows both.
    bo.reload()
    expect(thumbnails(bo)).to_have_count(2)
    expect(thumbnails(bo).last).to_have_js_property("complete", True)
    (output_dir / "attachments").mkdir(parents=True, exist_ok=True)
    bo.screenshot(path=str(output_dir / "attachments" / "conversation.png"), caret="initial")

    # The viewer shows the full image (wider than any thumbnail), its name and a download; arrows move on.
    thumbnails(bo).first.click()
    viewer = bo.locator("#viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".viewer__name")).to_have_text("red.png")
    expect(viewer.locator(".viewer__download")).to_have_attribute("href", re.compile(r"^/files/[\w-]+/red\.png$"))
    expect(viewer.locator(".viewer__image")).to_have_js_property("naturalWidth", 640)
    bo.screenshot(path=str(output_dir / "attachments" / "viewer.png"), caret="initial")
    bo.keyboard.press("ArrowRight")
    expect(viewer.locator(".viewer__name")).to_have_text("blue.png")
    expect(viewer.locator(".viewer__image")).to_have_js_property("naturalWidth", 600)
    bo.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert ada_console.errors == []


def test_a_large_file_shows_its_progress_and_a_message_written_meanwhile_waits_for_it(service, browser):
    cy, cy_console, di = chatting(service, browser, "cy", "di", "the notes")
    in_conversation(cy)
    # A slow uplink (1 MB/s), so that the upload of 2.5 MB takes a few seconds.
    cdp = cy.context.new_cdp_session(cy)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 1_000_000},
    )
    notes = ("meeting notes, line after line\n" * 90_000).encode()[:2_500_000]
    cy.locator("#attach-input").set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": notes})
    progress = chip(cy, "notes.txt").locator("progress")
    expect(progress).to_be_visible()
    expect(progress).to_have_attribute("value", re.compile(r"^[1-9]\d?$"))  # part of the way

    # Sent while it uploads: the composer says it waits, then the message goes with the file.
    cy.locator("#composer-body").fill("here they are")
    cy.locator("#composer-body").press("Enter")
    expect(cy.locator("#attach-status")).to_have_text("Sending when the upload finishes…")
    card = message(di, "here they are").locator(".attachment--file")
    expect(card).to_be_visible(timeout=30_000)
    expect(card.locator(".attachment__name")).to_have_text("notes.txt")
    expect(card.locator(".attachment__meta")).to_contain_text("2.4 MB")
    expect(cy.locator("#attach-status")).to_have_text("")
    assert cy_console.errors == []


def test_a_refused_file_says_why_on_its_chip_and_keeps_the_text(service, browser):
    eva, _, fay = chatting(service, browser, "eva", "fay", "a file for you")
    in_conversation(eva)
    uploads: list[str] = []
    eva.on("request", lambda request: uploads.append(request.url) if request.method == "POST" else None)
    eva.locator("#composer-body").fill("the plan, attached")
    eva.locator("#attach-input").set_input_files(
        [
            {"name": "holiday.mov", "mimeType": "video/quicktime", "buffer": b"\0" * (2 * LIMIT)},
            {"name": "plan.html", "mimeType": "text/html", "buffer": b"<!doctype html><script>alert(1)</script>"},
        ]
    )
    # Too large: said at once, nothing uploaded. The wrong type: the server's reason.
    too_large = chip(eva, "holiday.mov")
    expect(too_large).to_have_class(re.compile(r"attach-chip--refused"))
    expect(too_large.locator(".attach-chip__error")).to_have_text("holiday.mov is 6 MB; files can be up to 3 MB.")
    web_page = chip(eva, "plan.html")
    expect(web_page).to_have_class(re.compile(r"attach-chip--refused"))
    expect(web_page.locator(".attach-chip__error")).to_contain_text("imweb does not share web pages")
    assert [url for url in uploads if url.endswith("/files/")] == [service.url + "/files/"]
    expect(eva.locator("#composer-body")).to_have_value("the plan, attached")

    # Refused chips go with their remove button; the text is still there, and sends on its own.
    too_large.get_by_role("button", name=re.compile("Remove holiday.mov")).click()
    web_page.get_by_role("button", name=re.compile("Remove plan.html")).click()
    expect(eva.locator("#attach-tray")).to_be_hidden()
    expect(eva.locator("#composer-body")).to_have_value("the plan, attached")
    eva.locator("#composer-body").press("Enter")
    expect(message(fay, "the plan, attached")).to_be_visible()
