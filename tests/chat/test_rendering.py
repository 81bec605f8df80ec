"""Message rendering: the markdown subset, links, bidi controls, previews, and the hostile-body corpus."""

from __future__ import annotations

import time

import lxml.html
import pytest
from django.template import Context, Template

from chat.rendering import message_html, preview_text
from tests.chat.xss_corpus import XSS_CORPUS

REL = "nofollow noopener noreferrer"
ALLOWED = {
    "div": {"class", "dir", "hx-disable"},
    "p": set(),
    "br": set(),
    "strong": set(),
    "em": set(),
    "code": set(),
    "pre": set(),
    "a": {"href", "rel", "target"},
}


def inner(html: str) -> str:
    """The rendered body without its container."""
    prefix = '<div class="message-text" dir="auto" hx-disable>'
    assert html.startswith(prefix) and html.endswith("</div>")
    return html[len(prefix) : -len("</div>")]


def fragment(html: str) -> lxml.html.HtmlElement:
    return lxml.html.fragment_fromstring(str(html))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("plain words", "<p>plain words</p>"),
        ("**bold** and __bold__", "<p><strong>bold</strong> and <strong>bold</strong></p>"),
        ("*italic* and _italic_", "<p><em>italic</em> and <em>italic</em></p>"),
        ("***both***", "<p><em><strong>both</strong></em></p>"),
        ("use `a < b` here", "<p>use <code>a &lt; b</code> here</p>"),
        ("```\nx = 1 < 2\n```", "<pre><code>x = 1 &lt; 2\n</code></pre>"),
        ("```python\nprint()\n```", "<pre><code>print()\n</code></pre>"),
        ("    indented code", "<pre><code>indented code\n</code></pre>"),
        ("one\ntwo", "<p>one<br>\ntwo</p>"),
        ("one\n\ntwo", "<p>one</p>\n<p>two</p>"),
        (r"\*not italic\*", "<p>*not italic*</p>"),
        ("# not a heading", "<p># not a heading</p>"),
        ("- not\n- a list", "<p>- not<br>\n- a list</p>"),
        ("> not a quote", "<p>&gt; not a quote</p>"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "<p>| a | b |<br>\n|---|---|<br>\n| 1 | 2 |</p>"),
        ("~~not struck~~", "<p>~~not struck~~</p>"),
        ("a &amp; b &lt;", "<p>a &amp;amp; b &amp;lt;</p>"),
        ("<b>raw</b>", "<p>&lt;b&gt;raw&lt;/b&gt;</p>"),
        ("---", "<p>---</p>"),
    ],
)
def test_markdown_subset(body: str, expected: str) -> None:
    assert inner(message_html(body)) == expected


@pytest.mark.parametrize(
    ("body", "href"),
    [
        ("see https://example.org/a?b=1&c=2 now", "https://example.org/a?b=1&amp;c=2"),
        ("see http://example.org", "http://example.org"),
        ("write to someone@example.org", "mailto:someone@example.org"),
        ("mailto:someone@example.org", "mailto:someone@example.org"),
    ],
)
def test_urls_become_links_with_rel_and_target(body: str, href: str) -> None:
    html = inner(message_html(body))
    assert f'<a href="{href}" target="_blank" rel="{REL}">' in html
    (link,) = fragment(message_html(body)).iter("a")
    assert link.get("rel") == REL and link.get("target") == "_blank"


@pytest.mark.parametrize(
    "body",
    [
        "ftp://example.org/file",
        "//example.org/x",
        "setup.py and example.org and www.example.org",
        "[text](https://example.org)",
        "![image](https://example.org/i.png)",
        "<https://example.org>",
    ],
)
def test_only_schemed_urls_link_and_markdown_links_stay_text(body: str) -> None:
    tree = fragment(message_html(body))
    hrefs = [a.get("href") for a in tree.iter("a")]
    assert all(h.startswith(("http://", "https://")) for h in hrefs)
    assert "[text](" not in body or tree.text_content() == body
    assert not list(tree.iter("img"))


def test_requests_render_links_as_text() -> None:
    tree = fragment(message_html("see https://example.org and a@b.example", linkify=False))
    assert not list(tree.iter("a"))
    assert tree.text_content() == "see https://example.org and a@b.example"


def test_bidi_overrides_are_removed_and_body_is_direction_auto() -> None:
    html = message_html("file \u202egnp.exe\u202c and \u2067x\u2069 \u200fmark")
    tree = fragment(html)
    assert tree.get("dir") == "auto"
    text = tree.text_content()
    assert "gnp.exe" in text
    assert not any(ch in text for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "\u200f" in text  # a plain RTL mark cannot reorder anything and stays


def test_empty_and_none_bodies_render_an_empty_container() -> None:
    assert inner(message_html("")) == ""


@pytest.mark.parametrize(("name", "body"), XSS_CORPUS, ids=[name for name, _ in XSS_CORPUS])
def test_hostile_body_renders_only_allowed_markup(name: str, body: str) -> None:
    started = time.monotonic()
    html = message_html(body)
    assert time.monotonic() - started < 1.0, "rendering must stay fast on hostile input"
    tree = fragment(html)
    for element in tree.iter():
        assert isinstance(element.tag, str), f"comment or processing instruction survived: {element!r}"
        assert element.tag in ALLOWED, f"<{element.tag}> survived"
        assert set(element.attrib) <= ALLOWED[element.tag], f"attributes {dict(element.attrib)} on <{element.tag}>"
        if element.tag == "a":
            assert element.get("href", "").startswith(("http://", "https://", "mailto:"))
            assert element.get("rel") == REL and element.get("target") == "_blank"
    marker = next(word for word in body.replace("<", " ").replace(">", " ").split() if word.startswith("XSS"))
    assert marker in tree.text_content(), "the message text must still be shown"
    for linkify in (True, False):
        assert "<script" not in message_html(body, linkify=linkify)


def test_hostile_markup_is_shown_as_typed() -> None:
    body = '<img src=x onerror=alert(1)> {{ user.password }} <div hx-get="/x" hx-trigger="load">'
    assert fragment(message_html(body)).text_content() == body


@pytest.mark.parametrize(
    ("body", "limit", "expected"),
    [
        ("**bold** and *it* and `code`", 80, "bold and it and code"),
        ("line one\nline two\n\n```\ncode block\n```", 80, "line one line two code block"),
        ("<b>x</b> & y", 80, "<b>x</b> & y"),
        ("abcdefghij", 5, "abcd…"),
        ("abcde", 5, "abcde"),
        ("\u202eevil", 80, "evil"),
    ],
)
def test_preview_text(body: str, limit: int, expected: str) -> None:
    assert preview_text(body, limit) == expected


def test_filters_in_templates() -> None:
    template = Template(
        "{% load chat_rendering %}{{ body|message_html }}|{{ body|message_html_plain }}|{{ body|message_preview:8 }}"
    )
    linked, plain, preview = template.render(Context({"body": "**x** https://e.example <i>"})).split("|")
    assert '<a href="https://e.example"' in linked and "&lt;i&gt;" in linked
    assert "<a " not in plain and "<strong>x</strong>" in plain
    assert preview == "x https…"
