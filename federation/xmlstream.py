"""Incremental, I/O-free parser for XMPP server-to-server streams (RFC 6120) read from untrusted peers.

Feed it the bytes of one TCP direction as they arrive; it returns events (`StreamOpened`, `StanzaReceived`,
`StreamClosed`) or raises `StreamError`, after which it is dead and the connection must be closed with that
error (RFC 6120 §4.9.1.1: stream errors are unrecoverable).

Two layers look at every byte:

1. `_Gate`, a small byte-level lexer that sees the bytes *before* lxml does. It enforces what a general XML
   parser would accept but XMPP forbids (RFC 6120 §11.1 restricted XML: DTDs, comments, processing
   instructions, entity references other than the five predefined ones), the encoding rules (§11.6), and the
   resource limits, while the bytes arrive: a stanza, the stream header, the nesting depth and the attribute
   count are capped before lxml has buffered more than the cap. It also drops the whitespace between stanzas
   (keepalives, §4.6.1) so that nothing accumulates on the stream's root element over a long-lived stream.
2. lxml's `XMLPullParser`, which checks well-formedness and namespaces and builds each top-level child of
   `<stream:stream>` as an element; the element is detached from the root as soon as it is complete.

Invalid UTF-8 is checked on the raw bytes ahead of both. Within one `feed()` the error at the earliest byte
wins, so how the peer's bytes were split into chunks does not change which error is reported.
"""

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from federation.errors import StreamError

STREAMS_NS = "http://etherx.jabber.org/streams"
SERVER_NS = "jabber:server"
DIALBACK_NS = "jabber:server:dialback"
STREAM_TAG = f"{{{STREAMS_NS}}}stream"


@dataclass(frozen=True)
class StreamOpened:
    """The peer's stream header `<stream:stream ...>` (RFC 6120 §4.7).

    `attrs` uses lxml's names: plain attributes as `from`, namespaced ones in Clark notation
    (`{http://www.w3.org/XML/1998/namespace}lang`). `nsmap` maps prefixes (None = default) to namespaces.
    """

    attrs: dict[str, str]
    nsmap: dict[str | None, str]

    @property
    def from_(self) -> str | None:
        return self.attrs.get("from")

    @property
    def to(self) -> str | None:
        return self.attrs.get("to")

    @property
    def id(self) -> str | None:
        # Prosody's initiating header carries id='' (docs/federation.md §7.2): an empty id is no id.
        return self.attrs.get("id") or None

    @property
    def version(self) -> str | None:
        return self.attrs.get("version")

    @property
    def lang(self) -> str | None:
        return self.attrs.get("{http://www.w3.org/XML/1998/namespace}lang")


@dataclass(frozen=True)
class StanzaReceived:
    """One complete top-level child of the stream: a stanza, `<stream:features/>`, `<db:result/>`, ...

    The element is detached from the stream and keeps its namespace: `{jabber:server}message`,
    `{jabber:server:dialback}result`, `{urn:ietf:params:xml:ns:xmpp-tls}starttls`.
    """

    element: etree._Element


@dataclass(frozen=True)
class StreamClosed:
    """The peer sent `</stream:stream>` (RFC 6120 §4.4); answer with our own close tag."""


Event = StreamOpened | StanzaReceived | StreamClosed


class XMLStreamParser:
    """Parses one incoming XML stream; see the module docstring.

    Limits, all enforced while the bytes arrive:
    * `max_stanza_bytes`: bytes of one top-level element, from its `<` to its final `>`. Prosody allows
      10 kB before authentication and 512 kB after; raise it with `set_max_stanza_bytes` once the peer is
      authenticated.
    * `max_depth`: nesting of elements inside a stanza; the stanza element itself is level 1.
    * `max_attributes`: attributes of one element, namespace declarations included.
    * `max_header_bytes`: everything before the end of the `<stream:stream ...>` start tag.
    """

    def __init__(
        self,
        *,
        max_stanza_bytes: int = 10_000,
        max_depth: int = 16,
        max_attributes: int = 32,
        max_header_bytes: int = 4096,
    ) -> None:
        for name, value in (
            ("max_stanza_bytes", max_stanza_bytes),
            ("max_depth", max_depth),
            ("max_attributes", max_attributes),
            ("max_header_bytes", max_header_bytes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive, not {value}")
        self._initial_max_stanza_bytes = max_stanza_bytes
        self._max_depth = max_depth
        self._max_attributes = max_attributes
        self._max_header_bytes = max_header_bytes
        self._error: StreamError | None = None
        self.reset()

    @property
    def max_stanza_bytes(self) -> int:
        return self._gate.max_stanza_bytes

    def set_max_stanza_bytes(self, n: int) -> None:
        """Change the stanza cap, e.g. to 512 kB once dialback has authenticated the peer.

        It applies at once, also to a stanza that is half received.
        """
        if n < 1:
            raise ValueError(f"max_stanza_bytes must be positive, not {n}")
        self._gate.max_stanza_bytes = n

    def reset(self) -> None:
        """Start over with a fresh stream, as RFC 6120 §5.4.3.3 requires after STARTTLS.

        Everything about the old stream is forgotten, including a raised stanza cap: a restarted stream is
        unauthenticated until proven otherwise, so call `set_max_stanza_bytes` again if it is not. A parser
        that raised a StreamError stays dead: that connection has to be closed, not restarted.
        """
        self._gate = _Gate(
            max_stanza_bytes=self._initial_max_stanza_bytes,
            max_depth=self._max_depth,
            max_attributes=self._max_attributes,
            max_header_bytes=self._max_header_bytes,
        )
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._first_bytes = b""
        self._xml = etree.XMLPullParser(
            events=("start", "end"),
            # Defence in depth: _Gate already rejects every DTD and entity reference lxml could act on.
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,  # keep libxml2's own hard limits on names, text and lookahead
            collect_ids=False,  # xml:id values would otherwise be collected document-wide for the stream's life
            encoding="utf-8",  # RFC 6120 §11.6: UTF-8 only, whatever a declaration claims
        )
        self._root: etree._Element | None = None
        self._depth = 0  # element depth in lxml's events; the stream root is 1

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next bytes of the stream and return the events they complete, in order.

        Raises StreamError (and keeps raising it) if the bytes break the XMPP rules or a limit. Events that
        the same chunk completed before the error are dropped with it: the stream is over anyway.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)
        try:
            return self._feed(bytes(data))
        except StreamError as err:
            self._error = err
            raise

    def _feed(self, data: bytes) -> list[Event]:
        self._check_encoding_signature(data)
        valid = self._valid_utf8_prefix(data)
        forward, gate_error = self._gate.scan(data[:valid])
        events = self._parse(forward)
        if gate_error is not None:
            raise gate_error
        if valid < len(data):
            # RFC 6120 §11.6 reserves unsupported-encoding for a stream in another encoding; bytes that are
            # not UTF-8 at all break XML's well-formedness (XML 1.0 §4.3.3).
            raise StreamError("not-well-formed", "invalid UTF-8")
        return events

    def _check_encoding_signature(self, data: bytes) -> None:
        # UTF-16 and UTF-32 show up in the first two bytes: a BOM (FE FF / FF FE) or a NUL next to '<'.
        # RFC 6120 §11.6: anything but UTF-8 is <unsupported-encoding/>.
        if len(self._first_bytes) >= 2:
            return
        self._first_bytes = (self._first_bytes + data[:2])[:2]
        first, second = self._first_bytes[:1], self._first_bytes[1:2]
        if first in (b"\x00", b"\xfe", b"\xff") or second == b"\x00":
            raise StreamError("unsupported-encoding", "the stream is not encoded in UTF-8")

    def _valid_utf8_prefix(self, data: bytes) -> int:
        """How many leading bytes of `data` can be valid UTF-8 (an incomplete last character is kept pending)."""
        pending = len(self._utf8.getstate()[0])
        try:
            self._utf8.decode(data)
        except UnicodeDecodeError as err:
            return max(0, err.start - pending)
        return len(data)

    def _parse(self, forward: bytes) -> list[Event]:
        if forward:
            try:
                self._xml.feed(forward)
            except etree.XMLSyntaxError as err:
                raise StreamError("not-well-formed", err.msg or "not well-formed") from None
        events: list[Event] = []
        for action, element in self._xml.read_events():
            if action == "start":
                self._depth += 1
                if self._depth == 1:
                    events.append(self._open(element))
                else:
                    _check_prefixes_declared(element)
                    if self._depth == 2 and element.tag == STREAM_TAG:
                        # A new stream header inside the open stream (no STARTTLS restart asked for it) would
                        # otherwise wait, as a stanza that never ends, for the handshake or idle timeout.
                        raise StreamError("invalid-xml", "a stream header inside an open stream")
            else:
                self._depth -= 1
                if self._depth == 1:
                    # Detach the finished stanza so the stream's tree stays one element deep for its whole
                    # life. _Gate never forwards text at this level, so there is no tail to move with it.
                    assert self._root is not None
                    self._root.remove(element)
                    events.append(StanzaReceived(element))
                elif self._depth == 0:
                    events.append(StreamClosed())
        return events

    def _open(self, root: etree._Element) -> StreamOpened:
        # RFC 6120 §4.9.3.10: the stream namespace must be http://etherx.jabber.org/streams and the content
        # namespace one we support; on s2s that is jabber:server (§4.8.3, docs/federation.md §7.2).
        if root.tag != STREAM_TAG:
            raise StreamError("invalid-namespace", f"the root element must be {STREAM_TAG}")
        default_ns = root.nsmap.get(None)
        if default_ns != SERVER_NS:
            raise StreamError("invalid-namespace", f"the default namespace must be {SERVER_NS}, not {default_ns!r}")
        _check_prefixes_declared(root)
        self._root = root
        return StreamOpened(attrs=dict(root.attrib), nsmap=dict(root.nsmap))


def _check_prefixes_declared(element: etree._Element) -> None:
    # libxml2 only warns about an undeclared prefix and lxml then keeps 'p:name' as a plain name. Namespaces
    # in XML §5 makes that a well-formedness error, and RFC 6120 §4.9.3.13 maps it to not-well-formed.
    names = [element.tag, *element.attrib.keys()]
    for name in names:
        if ":" in name and not name.startswith("{"):
            raise StreamError("not-well-formed", f"undeclared namespace prefix in {name!r}")


# ---------------------------------------------------------------------------------------------------------------
# The byte-level gate

_LT, _GT, _AMP, _SEMI, _SLASH, _QMARK, _BANG = b"<>&;/?!"
_RBRACKET, _APOS, _QUOT = b"]'\""
_WHITESPACE = frozenset(b" \t\r\n")
_BOM = b"\xef\xbb\xbf"
_CDATA_OPEN = b"<![CDATA["
_PREDEFINED_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"apos", b"quot"})
# Reference names longer than this cannot be a predefined entity or a character reference of a valid character.
_MAX_REFERENCE = 64

_WHITESPACE_RUN = re.compile(rb"[ \t\r\n]+")
_TEXT_SPECIAL = re.compile(rb"[<&]")
_TAG_SPECIAL = re.compile(rb"[<>\"']")
_END_TAG_SPECIAL = re.compile(rb"[<>\"'&]")
_VALUE_SPECIAL = {_APOS: re.compile(rb"['<&]"), _QUOT: re.compile(rb'["<&]')}
_CHARACTER_REFERENCE = re.compile(rb"#[0-9]+|#x[0-9a-fA-F]+")
_NAME = re.compile(rb"[A-Za-z_:\x80-\xff][-A-Za-z0-9._:\x80-\xff]*")
_ENCODING_DECLARATION = re.compile(rb"""\sencoding\s*=\s*(["'])(.*?)\1""", re.DOTALL)


def _is_name_start(byte: int) -> bool:
    # ASCII letters, '_' and ':' plus any non-ASCII byte (lxml checks the exact XML NameStartChar set).
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A or byte in (0x5F, 0x3A) or byte >= 0x80


class _Reject(Exception):
    """Internal: the gate stops at `position` with `error`."""

    def __init__(self, position: int, error: StreamError) -> None:
        self.position = position
        self.error = error


# Lexer states.
_SIGNATURE = 0  # the very first bytes: an optional UTF-8 BOM
_PROLOG = 1  # before the stream header: whitespace and the optional XML declaration
_PROLOG_MARKUP = 2  # after '<' in the prolog, deciding what it opens
_XML_DECLARATION = 3  # inside <?xml ... ?>
_CONTENT = 4  # character data inside an element (the stream root or a stanza)
_MARKUP = 5  # after '<' in content, deciding what it opens
_START_TAG = 6  # inside a start tag, outside attribute values
_ATTRIBUTE_VALUE = 7  # inside a quoted attribute value
_END_TAG = 8  # inside '</...>'
_REFERENCE = 9  # after '&', up to ';'
_CDATA = 10  # inside <![CDATA[ ... ]]> (allowed: RFC 6120 §11.1 does not restrict CDATA sections)
_CLOSED = 11  # after </stream:stream>


class _Gate:
    """Byte-level lexer in front of lxml: restricted XML, limits and inter-stanza whitespace (see module doc).

    It only tracks what it needs (where markup starts and ends, depth, attribute count, references) and leaves
    the rest of XML's grammar to lxml. Every construct it rejects is recognised before its closing byte is
    handed on, so lxml never acts on a DTD, comment, processing instruction or entity reference.
    """

    def __init__(self, *, max_stanza_bytes: int, max_depth: int, max_attributes: int, max_header_bytes: int) -> None:
        self.max_stanza_bytes = max_stanza_bytes
        self._max_depth = max_depth
        self._max_attributes = max_attributes
        self._max_header_bytes = max_header_bytes
        self._state = _SIGNATURE
        self._offset = 0  # stream offset of the first byte of the chunk being scanned
        self._header_done = False
        self._declaration_seen = False
        self._depth = 0  # open elements, the stream root included
        self._stanza_start: int | None = None  # stream offset of the '<' of the top-level element being read
        self._attributes = 0  # attribute values seen in the current start tag
        self._in_root_tag = False
        self._last = 0  # the byte before the current position inside a start tag (for '/>')
        self._quote = 0
        self._token = bytearray()  # lookahead after '<' or '&', or the XML declaration
        self._reference_return = _CONTENT
        self._data = b""  # the chunk being scanned
        self._kept: list[bytes] = []  # its parts that go on to lxml
        self._kept_from = 0
        self._brackets = 0  # consecutive ']' seen inside a CDATA section
        self._steps = {
            _SIGNATURE: self._signature,
            _PROLOG: self._prolog,
            _PROLOG_MARKUP: self._prolog_markup,
            _XML_DECLARATION: self._xml_declaration,
            _CONTENT: self._content,
            _MARKUP: self._markup,
            _START_TAG: self._start_tag,
            _ATTRIBUTE_VALUE: self._attribute_value,
            _END_TAG: self._end_tag,
            _REFERENCE: self._reference,
            _CDATA: self._cdata,
            _CLOSED: self._closed,
        }

    def scan(self, data: bytes) -> tuple[bytes, StreamError | None]:
        """Check `data`; return the bytes to hand to lxml and the error that stopped the scan, if any.

        On an error the returned bytes are those before the offending byte, so the caller can let lxml
        report an earlier error first.
        """
        self._data = data
        self._kept = []
        self._kept_from = 0
        position, length, error = 0, len(data), None
        try:
            while position < length:
                stop = length
                limit = self._limit()
                if limit is not None:
                    end, what = limit
                    if position >= end - self._offset:
                        raise _Reject(position, StreamError("policy-violation", what()))
                    stop = min(length, end - self._offset)
                position = self._steps[self._state](data, position, stop)
        except _Reject as reject:
            position, error = reject.position, reject.error
        self._kept.append(data[self._kept_from : position])
        self._offset += position
        return b"".join(self._kept), error

    def _limit(self) -> tuple[int, Callable[[], str]] | None:
        """The stream offset the bytes being read must stay below, and what to say when they do not."""
        if not self._header_done:
            return self._max_header_bytes, lambda: f"stream header exceeds {self._max_header_bytes} bytes"
        if self._stanza_start is not None:
            return (
                self._stanza_start + self.max_stanza_bytes,
                lambda: f"stanza exceeds {self.max_stanza_bytes} bytes",
            )
        return None

    def _drop(self, start: int, end: int) -> None:
        """Keep data[start:end] away from lxml."""
        self._kept.append(self._data[self._kept_from : start])
        self._kept_from = end

    # Each step consumes bytes from data[position:stop] in one state and returns the new position. A step may
    # return `position` unchanged only after switching state.

    def _signature(self, data: bytes, position: int, stop: int) -> int:
        index = self._offset + position
        if data[position] == _BOM[index]:
            self._drop(position, position + 1)
            if index == len(_BOM) - 1:
                self._state = _PROLOG
            return position + 1
        if index == 0:
            self._state = _PROLOG
            return position
        raise _Reject(position, StreamError("not-well-formed", "text before the stream header"))

    def _prolog(self, data: bytes, position: int, stop: int) -> int:
        byte = data[position]
        if byte in _WHITESPACE:
            return self._skip_whitespace(data, position, stop)
        if byte == _LT:
            self._token = bytearray(b"<")
            self._state = _PROLOG_MARKUP
            return position + 1
        raise _Reject(position, StreamError("not-well-formed", "text before the stream header"))

    def _prolog_markup(self, data: bytes, position: int, stop: int) -> int:
        token = self._token
        token.append(data[position])
        if len(token) == 2:
            byte = token[1]
            if byte in (_QMARK, _BANG):
                return position + 1
            if _is_name_start(byte):
                self._begin_start_tag(byte, root=True)
                return position + 1
            raise _Reject(position, StreamError("not-well-formed", "malformed markup before the stream header"))
        if token[1] == _BANG:
            return self._markup_declaration(position, in_content=False)
        # '<?': only the XML declaration '<?xml ' (once, first) may start here; anything else is a processing
        # instruction, restricted by RFC 6120 §11.1.
        if len(token) < 6:
            if not b"<?xml".startswith(bytes(token)):
                raise _Reject(position, _restricted("processing instruction"))
            return position + 1
        if token[5] not in _WHITESPACE or self._declaration_seen:
            raise _Reject(position, _restricted("processing instruction"))
        self._state = _XML_DECLARATION
        return position + 1

    def _xml_declaration(self, data: bytes, position: int, stop: int) -> int:
        # The declaration is small and bounded by the header limit, so it is collected whole.
        token = self._token
        search_from = max(0, len(token) - 1)
        token += data[position:stop]
        end = token.find(b"?>", search_from)
        if end < 0:
            return stop
        consumed = end + 2 - (len(token) - (stop - position))
        declaration = bytes(token[: end + 2])
        match = _ENCODING_DECLARATION.search(declaration)
        if match is not None and match.group(2).lower() != b"utf-8":
            encoding = match.group(2).decode("ascii", "replace")
            raise _Reject(position, StreamError("unsupported-encoding", f"encoding {encoding!r} is not UTF-8"))
        self._declaration_seen = True
        self._state = _PROLOG
        return position + consumed

    def _content(self, data: bytes, position: int, stop: int) -> int:
        if self._depth == 1:
            # Between stanzas only whitespace keepalives (RFC 6120 §4.6.1) may appear. It is dropped here so it
            # never piles up as text of the stream's root element.
            byte = data[position]
            if byte in _WHITESPACE:
                return self._skip_whitespace(data, position, stop)
            if byte == _LT:
                self._stanza_start = self._offset + position
                self._token = bytearray(b"<")
                self._state = _MARKUP
                return position + 1
            raise _Reject(position, StreamError("bad-format", "character data between stanzas"))
        match = _TEXT_SPECIAL.search(data, position, stop)
        if match is None:
            return stop
        special = match.start()
        if data[special] == _LT:
            self._token = bytearray(b"<")
            self._state = _MARKUP
        else:
            self._begin_reference(_CONTENT)
        return special + 1

    def _markup(self, data: bytes, position: int, stop: int) -> int:
        token = self._token
        token.append(data[position])
        if len(token) > 2:
            return self._markup_declaration(position, in_content=True)
        byte = token[1]
        if byte == _SLASH:
            self._state = _END_TAG
            return position + 1
        if byte == _BANG:
            return position + 1
        if byte == _QMARK:
            raise _Reject(position, _restricted("processing instruction"))
        if _is_name_start(byte):
            # The new element sits at stanza level self._depth (the stanza element itself is level 1).
            if self._depth > self._max_depth:
                raise _Reject(
                    position, StreamError("policy-violation", f"elements nested deeper than {self._max_depth}")
                )
            self._begin_start_tag(byte, root=False)
            return position + 1
        raise _Reject(position, StreamError("not-well-formed", "'<' not followed by markup"))

    def _markup_declaration(self, position: int, *, in_content: bool) -> int:
        """Classify '<!...' once enough of it is in self._token."""
        token = self._token
        byte = token[2]
        if byte == ord("-"):
            if len(token) < 4:
                return position + 1
            if token[3] == ord("-"):
                raise _Reject(position, _restricted("comment"))
        elif 0x41 <= byte <= 0x5A:
            # <!DOCTYPE, <!ENTITY, <!ELEMENT, <!ATTLIST, <!NOTATION: DTD material.
            raise _Reject(position, _restricted("document type declaration"))
        elif byte == ord("[") and in_content and _CDATA_OPEN.startswith(bytes(token)):
            if len(token) == len(_CDATA_OPEN):
                self._brackets = 0
                self._state = _CDATA
            return position + 1
        raise _Reject(position, StreamError("not-well-formed", "malformed '<!' markup"))

    def _begin_start_tag(self, first_name_byte: int, *, root: bool) -> None:
        self._attributes = 0
        self._in_root_tag = root
        self._last = first_name_byte
        self._state = _START_TAG

    def _start_tag(self, data: bytes, position: int, stop: int) -> int:
        match = _TAG_SPECIAL.search(data, position, stop)
        if match is None:
            self._last = data[stop - 1]
            return stop
        special = match.start()
        byte = data[special]
        if byte == _GT:
            before = data[special - 1] if special > position else self._last
            self._end_start_tag(empty=before == _SLASH)
            return special + 1
        if byte == _LT:
            raise _Reject(special, StreamError("not-well-formed", "'<' inside a tag"))
        self._attributes += 1
        if self._attributes > self._max_attributes:
            raise _Reject(
                special, StreamError("policy-violation", f"an element has more than {self._max_attributes} attributes")
            )
        self._quote = byte
        self._state = _ATTRIBUTE_VALUE
        return special + 1

    def _end_start_tag(self, *, empty: bool) -> None:
        self._state = _CONTENT
        if self._in_root_tag:
            self._header_done = True
            self._in_root_tag = False
            if empty:  # <stream:stream .../>: opened and closed at once
                self._state = _CLOSED
            else:
                self._depth = 1
        elif empty:
            if self._depth == 1:
                self._stanza_start = None
        else:
            self._depth += 1

    def _attribute_value(self, data: bytes, position: int, stop: int) -> int:
        match = _VALUE_SPECIAL[self._quote].search(data, position, stop)
        if match is None:
            return stop
        special = match.start()
        byte = data[special]
        if byte == _LT:
            raise _Reject(special, StreamError("not-well-formed", "'<' in an attribute value"))
        if byte == _AMP:
            self._begin_reference(_ATTRIBUTE_VALUE)
        else:
            self._last = byte
            self._state = _START_TAG
        return special + 1

    def _end_tag(self, data: bytes, position: int, stop: int) -> int:
        match = _END_TAG_SPECIAL.search(data, position, stop)
        if match is None:
            return stop
        special = match.start()
        if data[special] != _GT:
            raise _Reject(special, StreamError("not-well-formed", "malformed end tag"))
        self._depth -= 1
        if self._depth <= 1:
            self._stanza_start = None
        self._state = _CLOSED if self._depth == 0 else _CONTENT
        return special + 1

    def _begin_reference(self, return_state: int) -> None:
        self._token = bytearray()
        self._reference_return = return_state
        self._state = _REFERENCE

    def _reference(self, data: bytes, position: int, stop: int) -> int:
        token = self._token
        while position < stop:
            byte = data[position]
            if byte == _SEMI:
                self._check_reference(bytes(token), position)
                self._state = self._reference_return
                return position + 1
            if byte in _WHITESPACE or byte in b"<>&'\"":
                raise _Reject(position, StreamError("not-well-formed", "'&' not followed by a reference"))
            token.append(byte)
            if len(token) > _MAX_REFERENCE:
                if token[0] == ord("#"):
                    raise _Reject(position, StreamError("not-well-formed", "malformed character reference"))
                raise _Reject(position, _restricted("entity reference"))
            position += 1
        return position

    @staticmethod
    def _check_reference(name: bytes, position: int) -> None:
        # RFC 6120 §11.1: only the five predefined entities (XML 1.0 §4.6) and character references.
        if name in _PREDEFINED_ENTITIES or _CHARACTER_REFERENCE.fullmatch(name):
            return
        if _NAME.fullmatch(name):
            entity = name.decode("utf-8", "replace")
            raise _Reject(position, _restricted(f"entity reference &{entity};"))
        raise _Reject(position, StreamError("not-well-formed", "malformed reference"))

    def _cdata(self, data: bytes, position: int, stop: int) -> int:
        while position < stop:
            byte = data[position]
            if byte == _GT and self._brackets >= 2:
                self._state = _CONTENT
                return position + 1
            if byte == _RBRACKET:
                self._brackets += 1
                position += 1
                continue
            self._brackets = 0
            bracket = data.find(b"]", position, stop)
            position = stop if bracket < 0 else bracket
        return position

    def _closed(self, data: bytes, position: int, stop: int) -> int:
        if data[position] in _WHITESPACE:
            return self._skip_whitespace(data, position, stop)
        raise _Reject(position, StreamError("not-well-formed", "data after the end of the stream"))

    def _skip_whitespace(self, data: bytes, position: int, stop: int) -> int:
        match = _WHITESPACE_RUN.match(data, position, stop)
        assert match is not None
        self._drop(position, match.end())
        return match.end()


def _restricted(what: str) -> StreamError:
    return StreamError("restricted-xml", f"{what} (RFC 6120 §11.1)")
