"""Hostile files: web pages, SVG with script, XML, programs, files named like pictures that are not, and
decompression bombs are refused with a reason that names the file; what is accepted is served inert."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from chat.models import Attachment
from tests.chat.test_files import content, picture, post_file, signed_in

pytestmark = pytest.mark.django_db

PROGRAMS = "imweb does not share programs, which could harm the computer that opens them."
WEB_PAGE = "imweb does not share web pages or SVG images, which could run scripts."


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims to be `width` x `height` with next to no pixel data: a bomb's first bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def refusal(client, name: str, data: bytes) -> tuple[int, str]:
    response = post_file(client, name, data)
    return response.status_code, response.json().get("error", "")


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.html", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
         f"notes.html is an HTML page; {WEB_PAGE}"),
        ("page.txt", b"  <html><head><script>fetch('/')</script></head></html>",
         f"page.txt is an HTML page; {WEB_PAGE}"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
         f"drawing.svg is an SVG image; {WEB_PAGE}"),
        ("logo", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
         f"logo is an SVG image; {WEB_PAGE}"),
        ("feed.xml", b"<?xml version='1.0'?><rss><channel/></rss>", f"feed.xml is an XML document; {WEB_PAGE}"),
        ("plain words.html", b"only words, but a browser would open it as a page",
         f"plain words.html is an HTML page; {WEB_PAGE}"),
    ],
)  # fmt: skip
def test_web_pages_svg_and_xml_are_refused(alice, name, data, expected):
    assert refusal(signed_in(alice), name, data) == (415, expected)
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "content_is"),
    [
        ("report.png", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "a PDF document"),
        ("cat.jpg", b"this is not a cat, it is text", "text"),
        ("funny.gif", b"<html><script>alert(document.cookie)</script></html>", "an HTML page"),
        ("icon.webp", bytes(range(256)) * 8, "not a format imweb knows"),
        ("scan.png", picture("BMP"), "a BMP picture"),
    ],
)
def test_a_file_named_like_a_picture_that_is_not_one_is_refused(alice, name, data, content_is):
    assert refusal(signed_in(alice), name, data) == (415, f"{name} is not a picture: its content is {content_is}.")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("setup.exe", b"MZ\x90\x00\x03" + bytes(400)),
        ("tool", b"\x7fELF\x02\x01\x01" + bytes(400)),
        ("invoice.pdf.bat", b"del /q C:\\*\r\n"),  # text, but Windows runs it on a double click
        ("page.hta", b"just words"),
    ],
)
def test_programs_are_refused(alice, name, data):
    status, error = refusal(signed_in(alice), name, data)
    assert status == 415
    assert error == f"{name} is a program; {PROGRAMS}"


def test_an_unknown_binary_is_refused_saying_what_is_shared(alice):
    status, error = refusal(signed_in(alice), "data.bin", bytes(range(256)) * 16)
    assert status == 415
    assert error.startswith("data.bin is not a kind of file imweb shares")


def test_a_picture_with_too_many_pixels_is_refused(alice):
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, format="PNG")  # 48 megapixels, a few kilobytes compressed
    client = signed_in(alice)

    bomb = refusal(client, "bomb.png", out.getvalue())
    huge_header = refusal(client, "bigger.png", png_header_only(30_000, 30_000))  # past Pillow's own limit

    for status, error in (bomb, huge_header):
        assert status == 413
        assert "is a picture too large to show: more than 40 million pixels." in error
    assert not Attachment.objects.exists()


def test_a_damaged_picture_is_refused(alice):
    data = picture("PNG", (200, 200))
    damaged = data[:60] + bytes(len(data) - 60)  # the pixel data (and its checksum) overwritten

    status, error = refusal(signed_in(alice), "broken.png", damaged)

    assert status == 400
    assert error == "broken.png is a damaged or incomplete picture; please try another file."


def test_an_empty_file_is_refused(alice):
    assert refusal(signed_in(alice), "empty.txt", b"") == (400, "empty.txt is empty; there is nothing in it to share.")


def test_a_name_cannot_hide_its_extension_with_direction_marks(alice):
    body = post_file(signed_in(alice), "photo\u202egnp.txt", b"words").json()

    assert body["name"] == "photognp.txt"
    assert "\u202e" not in signed_in(alice).get(body["url"])["Content-Disposition"]


def test_markup_deep_inside_a_text_file_is_served_as_an_inert_download(alice):
    data = b"x" * 10_000 + b"<html><script>alert(1)</script></html>"
    body = post_file(signed_in(alice), "log.txt", data).json()

    response = signed_in(alice).get(body["url"])

    assert response.status_code == 200 and content(response) == data
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_picture_carrying_markup_is_shown_as_a_picture_only(alice):
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="GIF", comment=b"<script>alert(1)</script>")
    body = post_file(signed_in(alice), "trick.gif", out.getvalue()).json()

    response = signed_in(alice).get(body["url"])

    assert body["kind"] == "image"
    assert response["Content-Type"] == "image/gif"  # never text/html, and never sniffed into it
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
