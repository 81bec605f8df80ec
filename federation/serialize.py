"""Serialisation for the s2s wire: stanzas as they appear inside our stream, the stream header, stream errors.

Everything we write sits inside our own stream header, which binds the default namespace to jabber:server and
the prefixes stream: and db: (docs/federation.md §7.2). So a stanza is written the way peers write theirs:
`<message ...>` without `xmlns='jabber:server'`, `<db:result ...>` without `xmlns:db`, and only elements of
other namespaces carry their own `xmlns` (RFC 6120 §4.8.3, §11.2). lxml's own tostring() cannot do that: it
always declares the namespaces a subtree uses.
"""

import copy

from lxml import etree

from federation.errors import STREAM_ERROR_CONDITIONS
from federation.xmlstream import DIALBACK_NS, SERVER_NS, STREAMS_NS

XML_NS = "http://www.w3.org/XML/1998/namespace"
STREAM_ERRORS_NS = "urn:ietf:params:xml:ns:xmpp-streams"  # RFC 6120 §4.9.2
STREAM_CLOSE = b"</stream:stream>"

# The prefixes our stream header declares, in force for everything we send on the stream.
_STREAM_PREFIXES = {"stream": STREAMS_NS, "db": DIALBACK_NS, "xml": XML_NS}


def to_xml(element: etree._Element) -> bytes:
    """Serialise `element` as it is written inside our stream (UTF-8, single-quoted attributes).

    Comments and processing instructions in the tree are left out, because RFC 6120 §11.1 forbids sending
    them; their tail text is kept.
    """
    parts: list[str] = []
    _write(element, SERVER_NS, _STREAM_PREFIXES, parts)
    return "".join(parts).encode("utf-8")


def stream_header(*, from_: str, to: str, stream_id: str | None, version: str = "1.0") -> bytes:
    """Our `<stream:stream>` start tag, XML declaration included (docs/federation.md §7.2, RFC 6120 §4.7).

    The initiating entity passes `stream_id=None`; the receiving entity passes a fresh random id.
    `xmlns:db` is always declared, because some older servers reject streams without it.
    """
    attributes = [("from", from_), ("to", to)]
    if stream_id is not None:
        attributes.append(("id", stream_id))
    attributes += [("version", version), ("xml:lang", "en")]
    rendered = "".join(f" {name}='{_escape_attribute(value)}'" for name, value in attributes)
    return (
        "<?xml version='1.0'?>"
        f"<stream:stream xmlns='{SERVER_NS}' xmlns:stream='{STREAMS_NS}' xmlns:db='{DIALBACK_NS}'{rendered}>"
    ).encode()


def stream_error(condition: str, text: str | None = None) -> bytes:
    """A stream error followed by our close tag, RFC 6120 §4.9.2; send it, then close the connection."""
    if condition not in STREAM_ERROR_CONDITIONS:
        raise ValueError(f"not an RFC 6120 stream error condition: {condition!r}")
    body = f"<{condition} xmlns='{STREAM_ERRORS_NS}'/>"
    if text:
        body += f"<text xmlns='{STREAM_ERRORS_NS}' xml:lang='en'>{_escape_text(text)}</text>"
    return f"<stream:error>{body}</stream:error>".encode() + STREAM_CLOSE


def _write(element: etree._Element, default_ns: str, prefixes: dict[str, str], parts: list[str]) -> None:
    """Append `element` (and its tail) to `parts`, given the namespace bindings in scope around it."""
    if not isinstance(element.tag, str):  # comment, processing instruction or entity
        if element.tail:
            parts.append(_escape_text(element.tail))
        return
    namespace, local = _split(element.tag)
    declarations: list[tuple[str, str]] = []
    if namespace == DIALBACK_NS and prefixes.get("db") == DIALBACK_NS:
        name = f"db:{local}"
    elif namespace == STREAMS_NS and prefixes.get("stream") == STREAMS_NS:
        name = f"stream:{local}"
    else:
        name = local
        if namespace != default_ns:
            declarations.append(("xmlns", namespace))
            default_ns = namespace

    attributes: list[tuple[str, str]] = []
    for key, value in element.attrib.items():
        attribute_ns, attribute_local = _split(key)
        if not attribute_ns:
            attributes.append((attribute_local, value))
            continue
        prefix = next((p for p, ns in prefixes.items() if ns == attribute_ns), None)
        if prefix is None:
            # A namespaced attribute needs a prefix (Namespaces in XML §6.2): reuse the one the element
            # was built with if it is free, else invent one, and declare it here.
            wanted = next((p for p, ns in element.nsmap.items() if p and ns == attribute_ns), None)
            prefix = wanted if wanted and wanted not in prefixes else _free_prefix(prefixes)
            prefixes = {**prefixes, prefix: attribute_ns}
            declarations.append((f"xmlns:{prefix}", attribute_ns))
        attributes.append((f"{prefix}:{attribute_local}", value))

    parts.append(f"<{name}")
    for key, value in declarations + attributes:
        parts.append(f" {key}='{_escape_attribute(value)}'")
    if element.text or len(element):
        parts.append(">")
        if element.text:
            parts.append(_escape_text(element.text))
        for child in element:
            _write(child, default_ns, prefixes, parts)
        parts.append(f"</{name}>")
    else:
        parts.append("/>")
    if element.tail:
        parts.append(_escape_text(element.tail))


def _split(name: str) -> tuple[str, str]:
    """'{ns}local' -> ('ns', 'local'); 'local' -> ('', 'local')."""
    if name.startswith("{"):
        namespace, local = name[1:].split("}", 1)
        return namespace, local
    return "", name


def _free_prefix(prefixes: dict[str, str]) -> str:
    n = 0
    while f"ns{n}" in prefixes:
        n += 1
    return f"ns{n}"


def _escape_text(text: str) -> str:
    # '>' too, so ']]>' never appears in character data (XML 1.0 §2.4); CR as a reference, because a literal
    # one would be turned into LF by the peer's end-of-line handling (XML 1.0 §2.11).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _escape_attribute(value: str) -> str:
    # Both quote characters, so the value is safe whichever quote is used; tab, LF and CR as references,
    # because attribute-value normalisation (XML 1.0 §3.3.3) would turn them into spaces.
    return (
        _escape_text(value).replace("'", "&apos;").replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")
    )


_STANZA_KINDS = frozenset({"message", "presence", "iq"})
_CLIENT_NS = "jabber:client"


def as_server_stanza(stanza: etree._Element) -> etree._Element:
    """A copy of `stanza` with its own elements in jabber:server, which our stream declares as the default
    namespace (RFC 6120 §4.8.3); children in other namespaces (receipts, chat states, ...) keep theirs."""
    name = etree.QName(stanza)
    if name.localname not in _STANZA_KINDS or name.namespace not in (None, SERVER_NS, _CLIENT_NS):
        raise ValueError(f"not a stanza: {stanza.tag!r}")
    copied = copy.deepcopy(stanza)
    for element in copied.iter():  # document order: a parent is moved before its children are looked at
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element)
        parent = element.getparent()
        # A child without a namespace belongs to its parent's namespace only if that is the stanza's one.
        if name.namespace == _CLIENT_NS or (
            name.namespace is None and (parent is None or etree.QName(parent).namespace == SERVER_NS)
        ):
            element.tag = f"{{{SERVER_NS}}}{name.localname}"
    return copied
