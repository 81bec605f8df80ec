"""Message bodies as safe HTML: a small markdown subset, linkified URLs, then an allow-list sanitiser.

A body is untrusted text from anyone (a local user, a bot, a remote XMPP server). It becomes HTML in two steps:

1. markdown-it-py with every rule off except bold, italic, inline code, fenced and indented code blocks,
   backslash escapes, line breaks and linkified URLs. Raw HTML is off, so `<script>` is escaped text; headings,
   lists, quotes, tables, images, `[text](url)` links and `&entities;` are not parsed and show as typed.
   Only http, https and mailto URLs become links (markdown-it's own check would also accept ftp, or a bare
   `//host`).
2. nh3 (ammonia) re-parses that HTML and keeps only the tags and attributes listed below, so a mistake in the
   first step still cannot put an element, an event handler, a style or an htmx attribute on the page.

The result is wrapped in `<div class="message-text" dir="auto" hx-disable>`: `dir="auto"` lets a right-to-left
message lay itself out without moving the page around it, and `hx-disable` tells htmx to ignore anything
inside, a second guard against `hx-*` attributes.

Bidirectional controls: the explicit embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are
removed from the displayed HTML. They make text display in an order other than the order it is stored in
("Trojan source", `gnp.exe` shown as `exe.png`), and nothing in a chat message needs them: `dir="auto"` and
the Unicode bidi algorithm lay out mixed-direction text. The stored body keeps them (the API, XMPP peers and
edits see exactly what was sent); the marks U+200E/U+200F/U+061C, which cannot reorder anything beyond a
neighbour, stay.

Both functions are pure, so their results are kept for the last few thousand bodies (a new message is shown
in several places at once: its own fragment, list rows, a reply's quote). Most messages are plain words,
which neither markdown nor linkify would change: those take a shortcut that gives the same HTML without
parsing (tests/chat/test_rendering.py holds the two to each other).
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.token import Token

LINK_REL = "nofollow noopener noreferrer"
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "code", "pre", "a"})
ALLOWED_ATTRIBUTES = {"a": {"href"}}

# Explicit bidi embeddings/overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI, FSI, PDI).
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
# An absolute URL with an allowed scheme, as markdown-it hands it over (already percent-encoded, so a tab or
# newline hidden inside "java\tscript:" cannot smuggle another scheme past this test).
_ALLOWED_URL = re.compile(r"(?:https?://|mailto:)[^\s]", re.IGNORECASE)


def _validate_link(url: str) -> bool:
    return bool(_ALLOWED_URL.match(url))


def _parser(*, linkify: bool) -> MarkdownIt:
    # "zero" starts with every syntax rule off; we turn on only the subset we render.
    md = MarkdownIt("zero", {"html": False, "breaks": True, "linkify": linkify, "typographer": False})
    rules = ["emphasis", "backticks", "fence", "code", "newline", "escape"]
    if linkify:
        rules.append("linkify")
        # Only text with a scheme ("https://...", "mailto:...") or a bare e-mail address becomes a link: a fuzzy
        # match would turn file names such as "setup.py" (.py is a country domain) into links.
        md.linkify.set({"fuzzy_link": False, "fuzzy_email": True})
    md.enable(rules)
    md.validateLink = _validate_link
    return md


_LINKING = _parser(linkify=True)
_PLAIN = _parser(linkify=False)

# One sanitiser for both: it decides which tags survive, and adds rel/target to every link itself.
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags={"script", "style"},
    attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
    link_rel=LINK_REL,
    set_tag_attribute_values={"a": {"target": "_blank"}},
    url_schemes=set(LINK_SCHEMES),
    url_relative="deny",
    strip_comments=True,
)


def strip_bidi_controls(text: str) -> str:
    """`text` without explicit bidi embeddings, overrides and isolates (see the module docstring)."""
    return _BIDI_CONTROLS.sub("", text)


# Text that no enabled rule can touch: no emphasis, code, escape or line-break markers, nothing a link or an
# e-mail address needs (":" and "@"), nothing HTML must escape in text (quotes need not be), no bidi controls,
# no whitespace but spaces, none around it (a leading indent is a code block).
_UNTOUCHED = re.compile(r"(?!\s)(?:[^*_`~\\:@<>&\s\u202a-\u202e\u2066-\u2069\[\]]| )*(?<!\s)")
CACHED_BODIES = 4096


def _untouched(text: str) -> bool:
    return bool(text) and _UNTOUCHED.fullmatch(text) is not None


@lru_cache(maxsize=CACHED_BODIES)
def message_html(text: str, *, linkify: bool = True) -> SafeString:
    """A message body as safe HTML, wrapped in its `dir="auto"` container.

    `linkify=False` for messages waiting in Requests: URLs stay text until the recipient accepts the sender.
    """
    if _untouched(text):
        html = f"<p>{text}</p>"
    else:
        md = _LINKING if linkify else _PLAIN
        html = _CLEANER.clean(md.render(strip_bidi_controls(text or ""))).strip()
    return mark_safe(f'<div class="message-text" dir="auto" hx-disable>{html}</div>')  # noqa: S308 - sanitised


def _visible_text(tokens: list[Token]) -> list[str]:
    parts: list[str] = []
    for token in tokens:
        if token.type == "inline" and token.children:
            parts.extend(_visible_text(token.children))
        elif token.type in ("text", "code_inline", "code_block", "fence"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak", "paragraph_close"):
            parts.append(" ")
    return parts


# What stands for a message of files only (its body is empty) in a list, a quote, a notification or an email.
FILES_ONLY_PREVIEW = "📎 Attachment"


@lru_cache(maxsize=CACHED_BODIES)
def preview_text(text: str, limit: int = 80) -> str:
    """One line of plain text for a conversation list: markdown markers gone, whitespace collapsed, cut at
    `limit` characters with an ellipsis. Not HTML: templates escape it like any other string."""
    if limit < 1:
        raise ValueError("limit must be 1 or more")
    if not text:
        return FILES_ONLY_PREVIEW[:limit]  # only a message of files has no words
    if _untouched(text):
        visible = text
    else:
        visible = "".join(_visible_text(_PLAIN.parse(strip_bidi_controls(text or ""))))
    line = _SPACES.sub(" ", visible).strip()
    if len(line) <= limit:
        return line
    return line[: limit - 1].rstrip() + "…"
