"""Files shared over XMPP by link: XEP-0066 out-of-band data (`<x xmlns='jabber:x:oob'><url>…</url></x>`), and
the XEP-0363 habit of sending a message whose whole body is the HTTPS URL of an upload.

Pure functions on lxml elements, no I/O. Everything here is untrusted input: only absolute http(s) URLs with a
host and no credentials are kept, at most MAX_LINKS of them per message, each at most MAX_URL_CHARS long; the
name shown comes from the URL's last path segment (or the <desc>), reduced to a plain file name (no folders, no
control characters), so a name like "../../etc/passwd" is only ever shown, never used as a path.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from lxml import etree

OOB_NS = "jabber:x:oob"  # XEP-0066, the form used in messages
MAX_LINKS = 10  # as many files as one local message may carry
MAX_URL_CHARS = 2000  # Attachment.remote_url's length
MAX_NAME_CHARS = 255  # Attachment.name's length
DEFAULT_NAME = "file"
_SCHEMES = ("https", "http")
# A body that is one https URL whose last segment looks like a file name ("…/IMG_2031.jpg"): XEP-0363 clients
# (Conversations, Dino, Gajim, Monal) send uploads like this, often with the same URL in an oob <x>.
_FILE_SEGMENT = re.compile(r"[^/]+\.[A-Za-z0-9]{1,10}")


@dataclass(frozen=True)
class OobLink:
    """A file another server shares by link: where it is and the name to show."""

    url: str
    name: str


def safe_url(text: str | None) -> str | None:
    """`text` as an absolute http(s) URL we may store and later fetch, or None (any other scheme, no host,
    credentials in it, whitespace or control characters, longer than MAX_URL_CHARS)."""
    if not text:
        return None
    url = text.strip()
    if not url or len(url) > MAX_URL_CHARS or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname or parts.username is not None:
        return None
    return url


def name_for(url: str, desc: str | None = None) -> str:
    """The file name to show for `url`: its last path segment (percent-decoded), else the <desc>, made safe."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return clean_name(segment) or clean_name(desc or "") or DEFAULT_NAME


def clean_name(text: str) -> str:
    """A plain file name: the part after the last / or \\, without control characters or surrounding dots and
    spaces, at most MAX_NAME_CHARS (cut in the middle, so the extension stays); "" if nothing is left."""
    name = re.split(r"[/\\]", text)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    name = name.strip(" .")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: MAX_NAME_CHARS - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_NAME_CHARS]
    return name


def _children(stanza: etree._Element, namespace: str, name: str) -> list[etree._Element]:
    tag = f"{{{namespace}}}{name}"
    return [child for child in stanza if isinstance(child.tag, str) and child.tag == tag]


def _text_of(parent: etree._Element, name: str) -> str | None:
    for child in _children(parent, OOB_NS, name):
        return child.text or ""
    return None


def upload_url_in(body: str | None) -> str | None:
    """The URL when the whole body is one https URL ending in a file name (an XEP-0363 upload), else None."""
    if not body:
        return None
    url = safe_url(body)
    if url is None or urlsplit(url).scheme.lower() != "https":
        return None
    segment = urlsplit(url).path.rsplit("/", 1)[-1]
    return url if _FILE_SEGMENT.fullmatch(segment) else None


def links_of(stanza: etree._Element, body: str | None = None) -> list[OobLink]:
    """The files a received <message> shares: each XEP-0066 <x><url> (in order, duplicates once), else a body
    that is a single upload URL; URLs we would not fetch are left out; at most MAX_LINKS."""
    links: list[OobLink] = []
    seen: set[str] = set()
    for x in _children(stanza, OOB_NS, "x"):
        url = safe_url(_text_of(x, "url"))
        if url is None or url in seen:
            continue
        seen.add(url)
        links.append(OobLink(url, name_for(url, _text_of(x, "desc"))))
        if len(links) == MAX_LINKS:
            return links
    if not links:
        url = upload_url_in(body)
        if url is not None:
            links.append(OobLink(url, name_for(url)))
    return links


def text_without_links(body: str | None, links: list[OobLink]) -> str:
    """The body to show beside the cards: without the lines that are only one of the shared URLs (clients put
    the URL in the body too, for readers without XEP-0066), the rest as sent."""
    if not body:
        return ""
    urls = {link.url for link in links}
    kept = [line for line in body.splitlines() if line.strip() not in urls]
    return "\n".join(kept).strip()
