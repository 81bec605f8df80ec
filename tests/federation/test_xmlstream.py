"""The s2s stream parser and serialiser, specified with literal XML as it appears on the wire."""

import pytest
from lxml import etree

from federation.errors import StreamError
from federation.serialize import STREAM_CLOSE, stream_error, stream_header, to_xml
from federation.xmlstream import StanzaReceived, StreamClosed, StreamOpened, XMLStreamParser

# Prosody's initiating header, as recorded in docs/federation.md §7 (note id='').
HEADER = (
    b"<?xml version='1.0'?>"
    b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
    b" xmlns:db='jabber:server:dialback' id='' from='prosody.localhost' to='imweb.localhost'"
    b" version='1.0' xml:lang='en'>"
)

# What our listener reads from Prosody during dialback and a chat, keepalives included (docs/federation.md §7).
TRANSCRIPT = (
    HEADER
    + b"<db:result from='prosody.localhost' to='imweb.localhost'>4a1f0c9e</db:result>\n"
    + b"<db:verify from='prosody.localhost' to='imweb.localhost' id='cc03'>9b2e</db:verify>"
    + b" "
    + b"<message from='alice@prosody.localhost/phone' to='bob@imweb.localhost/web' type='chat' id='m1'>"
    + b"<body>caf\xc3\xa9 &amp; cr\xc3\xa8me &lt;3 &#x1F600;</body>"
    + b"<request xmlns='urn:xmpp:receipts'/></message>"
    + b"\n\n \t"
    + b"<iq type='get' id='p1' from='prosody.localhost' to='imweb.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    + b"</stream:stream>"
)


def describe(events: list) -> list:
    """Events in a comparable form: stanzas as lxml's own serialisation."""
    described = []
    for event in events:
        if isinstance(event, StanzaReceived):
            described.append(("stanza", etree.tostring(event.element)))
        else:
            described.append(event)
    return described


def feed_all(chunks: list[bytes], parser: XMLStreamParser | None = None) -> list:
    parser = parser or XMLStreamParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def condition_of(chunks: list[bytes], **limits: int) -> str:
    parser = XMLStreamParser(**limits)
    with pytest.raises(StreamError) as raised:
        feed_all(chunks, parser)
    return raised.value.condition


# --- a normal stream -----------------------------------------------------------------------------------------


def test_header_stanzas_and_close_in_one_feed() -> None:
    events = XMLStreamParser().feed(TRANSCRIPT)

    assert [type(event) for event in events] == [
        StreamOpened,
        StanzaReceived,
        StanzaReceived,
        StanzaReceived,
        StanzaReceived,
        StreamClosed,
    ]
    header = events[0]
    assert (header.from_, header.to, header.version, header.lang) == (
        "prosody.localhost",
        "imweb.localhost",
        "1.0",
        "en",
    )
    assert header.nsmap == {
        None: "jabber:server",
        "stream": "http://etherx.jabber.org/streams",
        "db": "jabber:server:dialback",
    }
    message = events[3].element
    assert message.get("to") == "bob@imweb.localhost/web"
    assert message.findtext("{jabber:server}body") == "café & crème <3 \U0001f600"


def test_every_split_point_of_a_transcript_gives_the_same_events() -> None:
    expected = describe(XMLStreamParser().feed(TRANSCRIPT))

    for split in range(len(TRANSCRIPT) + 1):
        assert describe(feed_all([TRANSCRIPT[:split], TRANSCRIPT[split:]])) == expected, split


def test_every_three_way_split_of_a_stanza_gives_the_same_events() -> None:
    stanza = TRANSCRIPT[len(HEADER) :]
    expected = describe(XMLStreamParser().feed(TRANSCRIPT))

    for first in range(0, len(stanza) + 1, 3):
        for second in range(first, len(stanza) + 1, 5):
            chunks = [HEADER, stanza[:first], stanza[first:second], stanza[second:]]
            assert describe(feed_all(chunks)) == expected, (first, second)


def test_byte_by_byte_gives_the_same_events() -> None:
    expected = describe(XMLStreamParser().feed(TRANSCRIPT))

    assert describe(feed_all(byte_by_byte(TRANSCRIPT))) == expected


def test_header_is_reported_as_soon_as_its_last_byte_arrives() -> None:
    # The peer waits for our header before it sends anything more: no lookahead may be needed.
    parser = XMLStreamParser()

    assert parser.feed(HEADER[:-1]) == []
    assert [type(event) for event in parser.feed(HEADER[-1:])] == [StreamOpened]


def test_stanza_is_reported_as_soon_as_its_last_byte_arrives() -> None:
    parser = XMLStreamParser()
    parser.feed(HEADER)
    stanza = b"<db:result from='prosody.localhost' to='imweb.localhost'>4a1f</db:result>"

    assert parser.feed(stanza[:-1]) == []
    assert [type(event) for event in parser.feed(stanza[-1:])] == [StanzaReceived]


def test_whitespace_keepalives_produce_no_events() -> None:
    parser = XMLStreamParser()
    parser.feed(HEADER)

    assert parser.feed(b" ") == []
    assert parser.feed(b"\n\t\r\n  ") == []
    assert [type(event) for event in parser.feed(b" <message/> ")] == [StanzaReceived]
    assert parser.feed(b" " * 100_000) == []


def test_keepalives_are_not_kept_as_text_of_the_stream() -> None:
    # Whitespace between stanzas must not pile up anywhere over a stream that lives for days.
    parser = XMLStreamParser()
    parser.feed(HEADER)

    (event,) = parser.feed(b"<message/>  \n ")

    assert event.element.tail is None


def test_prosody_empty_id_reads_as_no_id() -> None:
    (header,) = XMLStreamParser().feed(HEADER)

    assert header.attrs["id"] == ""
    assert header.id is None


def test_responder_header_exposes_its_id() -> None:
    (header,) = XMLStreamParser().feed(
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server'"
        b" id='8793abcd' from='ejabberd.localhost' to='imweb.localhost' version='1.0'>"
    )

    assert (header.id, header.from_, header.to, header.version, header.lang) == (
        "8793abcd",
        "ejabberd.localhost",
        "imweb.localhost",
        "1.0",
        None,
    )


@pytest.mark.parametrize(
    ("stanza", "tag"),
    [
        pytest.param(b"<message to='a' from='b'><body>hi</body></message>", "{jabber:server}message", id="message"),
        pytest.param(b"<presence/>", "{jabber:server}presence", id="presence"),
        pytest.param(b"<db:result from='a' to='b'>K</db:result>", "{jabber:server:dialback}result", id="db-result"),
        pytest.param(
            b"<db:verify from='a' to='b' id='i'>K</db:verify>", "{jabber:server:dialback}verify", id="db-verify"
        ),
        pytest.param(
            b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "{urn:ietf:params:xml:ns:xmpp-tls}starttls",
            id="starttls",
        ),
        pytest.param(
            b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>",
            "{http://etherx.jabber.org/streams}features",
            id="stream-features",
        ),
    ],
)
def test_stanzas_keep_their_namespaces(stanza: bytes, tag: str) -> None:
    parser = XMLStreamParser()
    parser.feed(HEADER)

    (event,) = parser.feed(stanza)

    assert event.element.tag == tag


def test_received_stanzas_are_detached_from_the_stream() -> None:
    parser = XMLStreamParser()
    parser.feed(HEADER)

    events = parser.feed(b"<message/><presence/>")

    assert [event.element.getparent() for event in events] == [None, None]


def test_cdata_section_is_character_data() -> None:
    # RFC 6120 §11.1 restricts comments, PIs, DTDs and entity references, not CDATA sections.
    parser = XMLStreamParser()
    parser.feed(HEADER)

    (event,) = feed_all(byte_by_byte(b"<message><body>a<![CDATA[<b> & ]>]]]]>z</body></message>"), parser)

    assert event.element.findtext("{jabber:server}body") == "a<b> & ]>]]z"


def test_predefined_entities_and_character_references_are_accepted() -> None:
    parser = XMLStreamParser()
    parser.feed(HEADER)

    (event,) = parser.feed(b"<message id='&apos;&quot;&#65;'><body>&amp;&lt;&gt;&#x41;&#66;</body></message>")

    assert event.element.get("id") == "'\"A"
    assert event.element.findtext("{jabber:server}body") == "&<>AB"


def test_utf8_byte_order_mark_and_declaration_are_accepted() -> None:
    data = b"\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?>\n" + HEADER[len(b"<?xml version='1.0'?>") :]

    assert [type(event) for event in feed_all(byte_by_byte(data))] == [StreamOpened]


def test_self_closed_stream_opens_and_closes() -> None:
    events = XMLStreamParser().feed(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'/>"
    )

    assert [type(event) for event in events] == [StreamOpened, StreamClosed]


# --- XML that RFC 6120 forbids -------------------------------------------------------------------------------

BILLION_LAUGHS = (
    b"<?xml version='1.0'?>"
    b"<!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    b"<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
    b"<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
    b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
    b"<message><body>&lol3;</body></message>"
)
EXTERNAL_ENTITY = (
    b"<?xml version='1.0'?>"
    b"<!DOCTYPE stream:stream [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"
    b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
    b"<message><body>&xxe;</body></message>"
)


def test_billion_laughs_is_restricted_xml_before_the_dtd_is_read() -> None:
    parser = XMLStreamParser()
    doctype_at = BILLION_LAUGHS.index(b"<!DOCTYPE")

    parser.feed(BILLION_LAUGHS[: doctype_at + 2])
    with pytest.raises(StreamError) as raised:
        parser.feed(BILLION_LAUGHS[doctype_at + 2 : doctype_at + 3])

    assert raised.value.condition == "restricted-xml"


def test_external_entity_is_restricted_xml() -> None:
    assert condition_of([EXTERNAL_ENTITY]) == "restricted-xml"
    assert condition_of(byte_by_byte(EXTERNAL_ENTITY)) == "restricted-xml"


def test_comment_is_rejected_as_soon_as_it_opens() -> None:
    # Not left to lxml, which would quietly drop or keep it: the comment is never even finished here.
    parser = XMLStreamParser()
    parser.feed(HEADER + b"<message><body>hi</body><!-")

    with pytest.raises(StreamError) as raised:
        parser.feed(b"-")

    assert raised.value.condition == "restricted-xml"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, id="external-entity"),
        pytest.param(
            b"<!DOCTYPE stream:stream [<!ELEMENT message ANY>]>"
            b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
            id="internal-dtd-subset",
        ),
        pytest.param(HEADER + b"<message><!DOCTYPE x></message>", id="doctype-inside-a-stanza"),
        pytest.param(b"<!-- hello -->" + HEADER[len(b"<?xml version='1.0'?>") :], id="comment-before-the-header"),
        pytest.param(HEADER + b"<!-- between --><message/>", id="comment-between-stanzas"),
        pytest.param(HEADER + b"<message><body>a<!-- inside -->b</body></message>", id="comment-inside-a-stanza"),
        pytest.param(
            b"<?xml-stylesheet href='a.xsl'?>" + HEADER[len(b"<?xml version='1.0'?>") :], id="pi-before-the-header"
        ),
        pytest.param(HEADER + b"<message><?php echo 1; ?></message>", id="pi-inside-a-stanza"),
        pytest.param(HEADER + b"<?xml version='1.0'?>", id="second-xml-declaration"),
        pytest.param(HEADER + b"<message><body>&nbsp;</body></message>", id="undefined-entity-in-text"),
        pytest.param(HEADER + b"<message to='&xxe;'/>", id="undefined-entity-in-attribute"),
    ],
)
def test_restricted_xml_is_rejected(data: bytes) -> None:
    assert condition_of([data]) == "restricted-xml"
    assert condition_of(byte_by_byte(data)) == "restricted-xml"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(HEADER + b"<message><body>\xff</body></message>", id="invalid-utf8-byte"),
        pytest.param(HEADER + b"<message><body>\xc3(</body></message>", id="truncated-utf8-sequence"),
        pytest.param(HEADER + b"<message><body>\xc0\xaf</body></message>", id="overlong-utf8"),
        pytest.param(HEADER + b"<message><body>\xed\xa0\x80</body></message>", id="utf8-encoded-surrogate"),
        pytest.param(HEADER + b"<message><body>\x01</body></message>", id="control-character"),
        pytest.param(HEADER + b"<message><body>&#0;</body></message>", id="reference-to-nul"),
        pytest.param(HEADER + b"<message><body>& </body></message>", id="bare-ampersand"),
        pytest.param(HEADER + b"<message><body></message>", id="mismatched-end-tag"),
        pytest.param(HEADER + b"<message to='a' to='b'/>", id="duplicate-attribute"),
        pytest.param(HEADER + b"<message a='<'/>", id="lt-in-attribute"),
        pytest.param(HEADER + b"<message><x:y/></message>", id="undeclared-prefix"),
        pytest.param(HEADER + b"</stream:stream><message/>", id="data-after-close"),
        pytest.param(b"hello" + HEADER, id="text-before-the-header"),
    ],
)
def test_malformed_xml_is_not_well_formed(data: bytes) -> None:
    assert condition_of([data]) == "not-well-formed"
    assert condition_of(byte_by_byte(data)) == "not-well-formed"


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        pytest.param(HEADER + b"<message></presence><!-- x -->", "not-well-formed", id="mismatch-then-comment"),
        pytest.param(HEADER + b"<message>\xff&foo;</message>", "not-well-formed", id="bad-utf8-then-entity"),
        pytest.param(HEADER + b"<message>&foo;\xff</message>", "restricted-xml", id="entity-then-bad-utf8"),
        pytest.param(
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><!-- x -->",
            "invalid-namespace",
            id="wrong-namespace-then-comment",
        ),
    ],
)
def test_earliest_error_wins_however_the_bytes_are_split(data: bytes, condition: str) -> None:
    assert condition_of([data]) == condition
    assert condition_of(byte_by_byte(data)) == condition


def test_invalid_utf8_is_reported_as_soon_as_it_arrives() -> None:
    # lxml alone would wait for the end of the text node before complaining.
    parser = XMLStreamParser()
    parser.feed(HEADER + b"<message><body>ab")

    with pytest.raises(StreamError) as raised:
        parser.feed(b"\xff")

    assert raised.value.condition == "not-well-formed"


def test_text_between_stanzas_is_bad_format() -> None:
    assert condition_of([HEADER + b"<message/>hello"]) == "bad-format"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams/'>",
            id="wrong-stream-namespace",
        ),
        pytest.param(b"<stream:stream xmlns='jabber:server'>", id="undeclared-stream-prefix"),
        pytest.param(b"<stream xmlns='jabber:server'>", id="unprefixed-root"),
        pytest.param(
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            id="client-default-namespace",
        ),
        pytest.param(
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
            id="no-default-namespace",
        ),
    ],
)
def test_wrong_namespaces_are_invalid_namespace(data: bytes) -> None:
    assert condition_of([data]) == "invalid-namespace"
    assert condition_of(byte_by_byte(data)) == "invalid-namespace"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(HEADER.decode().encode("utf-16"), id="utf16-with-bom"),
        pytest.param(HEADER.decode().encode("utf-16-le"), id="utf16-le-without-bom"),
        pytest.param(HEADER.decode().encode("utf-16-be"), id="utf16-be-without-bom"),
        pytest.param(
            b"<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER[len(b"<?xml version='1.0'?>") :],
            id="declared-latin1",
        ),
    ],
)
def test_other_encodings_are_unsupported_encoding(data: bytes) -> None:
    assert condition_of([data]) == "unsupported-encoding"
    assert condition_of(byte_by_byte(data)) == "unsupported-encoding"


# --- limits, enforced while the bytes arrive -----------------------------------------------------------------


def feed_until_error(parser: XMLStreamParser, chunks) -> tuple[StreamError, int]:
    """Feed chunks until the parser refuses one; return the error and how many bytes had been offered."""
    offered = 0
    for chunk in chunks:
        offered += len(chunk)
        if offered > 1_000_000:
            break
        try:
            parser.feed(chunk)
        except StreamError as error:
            return error, offered
    raise AssertionError("the parser accepted everything")


def endless(prefix: bytes, filler: bytes):
    yield prefix
    while True:
        yield filler


def test_oversize_stanza_is_rejected_before_it_is_complete() -> None:
    stanza = b"<message><body>" + b"x" * 20_000 + b"</body></message>"
    parser = XMLStreamParser(max_stanza_bytes=10_000)
    parser.feed(HEADER)

    error, offered = feed_until_error(parser, [stanza[i : i + 100] for i in range(0, len(stanza), 100)])

    assert error.condition == "policy-violation"
    assert "stanza" in error.text
    assert offered <= 10_000 + 100


def test_stanza_of_exactly_the_cap_is_accepted() -> None:
    stanza = b"<message><body>" + b"x" * (1000 - len(b"<message><body></body></message>")) + b"</body></message>"
    parser = XMLStreamParser(max_stanza_bytes=1000)
    parser.feed(HEADER)

    assert len(stanza) == 1000
    assert [type(event) for event in parser.feed(stanza + b"  ")] == [StanzaReceived]
    with pytest.raises(StreamError, match="stanza"):
        parser.feed(stanza.replace(b"<body>", b"<body>x"))


def test_text_node_that_never_ends_is_rejected_at_the_cap() -> None:
    parser = XMLStreamParser(max_stanza_bytes=10_000)
    parser.feed(HEADER)

    error, offered = feed_until_error(parser, endless(b"<message><body>", b"A" * 1000))

    assert error.condition == "policy-violation"
    assert offered <= 11_000


def test_attribute_value_that_never_ends_is_rejected_at_the_cap() -> None:
    parser = XMLStreamParser(max_stanza_bytes=10_000)
    parser.feed(HEADER)

    error, offered = feed_until_error(parser, endless(b"<message to='", b"a" * 1000))

    assert error.condition == "policy-violation"
    assert offered <= 11_000


def test_stanza_split_into_many_children_still_counts_as_one() -> None:
    parser = XMLStreamParser(max_stanza_bytes=10_000)
    parser.feed(HEADER)

    error, offered = feed_until_error(parser, endless(b"<message>", b"<x/>" * 100))

    assert error.condition == "policy-violation"
    assert offered <= 10_400


def test_nesting_deeper_than_the_limit_is_policy_violation() -> None:
    def nested(levels: int) -> bytes:
        return b"<a>" * levels + b"</a>" * levels

    parser = XMLStreamParser(max_depth=16)
    parser.feed(HEADER)
    assert [type(event) for event in parser.feed(nested(16))] == [StanzaReceived]

    parser = XMLStreamParser(max_depth=16)
    parser.feed(HEADER)
    error, offered = feed_until_error(parser, endless(b"", b"<a>"))  # never closed
    assert error.condition == "policy-violation"
    assert "nested" in error.text
    assert offered == 17 * 3


def test_too_many_attributes_is_policy_violation() -> None:
    def with_attributes(count: int) -> bytes:
        return b"<message" + b"".join(b" a%d='v'" % i for i in range(count)) + b"/>"

    parser = XMLStreamParser(max_attributes=32)
    parser.feed(HEADER)
    assert [type(event) for event in parser.feed(with_attributes(32))] == [StanzaReceived]

    parser = XMLStreamParser(max_attributes=32)
    parser.feed(HEADER)
    error, _ = feed_until_error(parser, endless(b"<message", b" a='v'"))  # the tag never ends
    assert error.condition == "policy-violation"
    assert "attributes" in error.text


def test_namespace_declarations_count_as_attributes() -> None:
    # Two attributes and two declarations: four, one more than allowed.
    parser = XMLStreamParser(max_attributes=3)
    with pytest.raises(StreamError, match="attributes"):
        parser.feed(
            b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' a='1' b='2'>"
        )


def test_gigantic_header_that_never_ends_is_policy_violation() -> None:
    parser = XMLStreamParser(max_header_bytes=4096)

    error, offered = feed_until_error(parser, endless(b"<stream:stream xmlns='jabber:server' from='", b"a" * 100))

    assert error.condition == "policy-violation"
    assert "header" in error.text
    assert offered <= 4096 + 100


def test_endless_whitespace_before_the_header_is_policy_violation() -> None:
    error, offered = feed_until_error(XMLStreamParser(max_header_bytes=4096), endless(b"", b" " * 100))

    assert error.condition == "policy-violation"
    assert offered <= 4096 + 100


def test_raising_the_cap_after_authentication_admits_bigger_stanzas() -> None:
    stanza = b"<message><body>" + b"x" * 100_000 + b"</body></message>"
    unauthenticated = XMLStreamParser()
    unauthenticated.feed(HEADER)
    with pytest.raises(StreamError, match="stanza exceeds 10000 bytes"):
        unauthenticated.feed(stanza)

    authenticated = XMLStreamParser()
    authenticated.feed(HEADER)
    authenticated.set_max_stanza_bytes(512_000)

    assert authenticated.max_stanza_bytes == 512_000
    assert [type(event) for event in authenticated.feed(stanza)] == [StanzaReceived]


# --- the parser's life cycle ---------------------------------------------------------------------------------


def test_parser_stays_dead_after_a_stream_error() -> None:
    parser = XMLStreamParser()
    with pytest.raises(StreamError):
        parser.feed(HEADER + b"<!-- no -->")

    for data in (b"<message/>", b" ", b""):
        with pytest.raises(StreamError) as raised:
            parser.feed(data)
        assert raised.value.condition == "restricted-xml"
    parser.reset()
    with pytest.raises(StreamError):
        parser.feed(HEADER)


def test_reset_after_starttls_gives_a_fresh_stream() -> None:
    parser = XMLStreamParser()
    parser.feed(HEADER)
    (starttls,) = parser.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert starttls.element.tag == "{urn:ietf:params:xml:ns:xmpp-tls}starttls"

    parser.reset()  # we sent <proceed/> and completed the TLS handshake
    events = parser.feed(HEADER.replace(b"id=''", b"id='after-tls'") + b"<db:result from='a' to='b'>K</db:result>")

    assert [type(event) for event in events] == [StreamOpened, StanzaReceived]
    assert events[0].id == "after-tls"


def test_new_header_without_reset_is_rejected() -> None:
    parser = XMLStreamParser()
    parser.feed(HEADER)

    with pytest.raises(StreamError) as raised:
        parser.feed(HEADER)

    assert raised.value.condition == "restricted-xml"  # '<?xml' in content is a processing instruction


def test_reset_restores_the_unauthenticated_stanza_cap() -> None:
    parser = XMLStreamParser(max_stanza_bytes=10_000)
    parser.set_max_stanza_bytes(512_000)

    parser.reset()

    assert parser.max_stanza_bytes == 10_000


# --- serialisation -------------------------------------------------------------------------------------------


def parse_stanza(stanza: bytes) -> etree._Element:
    parser = XMLStreamParser()
    parser.feed(stream_header(from_="prosody.localhost", to="imweb.localhost", stream_id=None))
    (event,) = parser.feed(stanza)
    return event.element


def test_stream_header_is_the_one_peers_accept() -> None:
    assert stream_header(from_="imweb.localhost", to="prosody.localhost", stream_id=None) == (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
        b" xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"
        b" from='imweb.localhost' to='prosody.localhost' version='1.0' xml:lang='en'>"
    )


def test_responder_stream_header_carries_the_stream_id() -> None:
    header = stream_header(from_="imweb.localhost", to="prosody.localhost", stream_id="8793ab")

    assert b" to='prosody.localhost' id='8793ab' version='1.0'" in header
    (opened,) = XMLStreamParser().feed(header)
    assert (opened.from_, opened.to, opened.id) == ("imweb.localhost", "prosody.localhost", "8793ab")


def test_message_with_receipt_request_inherits_the_stream_namespace() -> None:
    message = etree.Element(
        "{jabber:server}message",
        {"from": "bob@imweb.localhost/web", "to": "alice@prosody.localhost", "type": "chat", "id": "m1"},
    )
    etree.SubElement(message, "{jabber:server}body").text = "Hello"
    etree.SubElement(message, "{urn:xmpp:receipts}request")

    assert to_xml(message) == (
        b"<message from='bob@imweb.localhost/web' to='alice@prosody.localhost' type='chat' id='m1'>"
        b"<body>Hello</body><request xmlns='urn:xmpp:receipts'/></message>"
    )


def test_db_result_uses_the_db_prefix() -> None:
    result = etree.Element("{jabber:server:dialback}result", {"from": "imweb.localhost", "to": "prosody.localhost"})
    result.text = "4a1f0c9e"

    assert to_xml(result) == b"<db:result from='imweb.localhost' to='prosody.localhost'>4a1f0c9e</db:result>"


def test_stream_features_use_the_stream_prefix() -> None:
    features = etree.Element("{http://etherx.jabber.org/streams}features")
    dialback = etree.SubElement(features, "{urn:xmpp:features:dialback}dialback")
    etree.SubElement(dialback, "{urn:xmpp:features:dialback}errors")

    assert to_xml(features) == (
        b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>"
    )


def test_stream_error_with_text() -> None:
    assert stream_error("policy-violation", "stanza exceeds 10000 bytes") == (
        b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>stanza exceeds 10000 bytes</text>"
        b"</stream:error></stream:stream>"
    )


def test_stream_error_without_text() -> None:
    assert stream_error("host-unknown") == (
        b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>" + STREAM_CLOSE
    )


def test_stream_error_escapes_its_text_and_refuses_unknown_conditions() -> None:
    assert b">a &lt;b&gt; &amp; c</text>" in stream_error("not-well-formed", "a <b> & c")
    with pytest.raises(ValueError, match="condition"):
        stream_error("evil/><script")
    with pytest.raises(ValueError, match="condition"):
        StreamError("not-wellformed")


def test_text_and_attribute_values_are_escaped() -> None:
    message = etree.Element("{jabber:server}message", {"to": "a'b\"c<d>e&f", "id": "tab\there\nline"})
    etree.SubElement(message, "{jabber:server}body").text = "<&'\"]]>\r"

    wire = to_xml(message)

    assert wire == (
        b"<message to='a&apos;b&quot;c&lt;d&gt;e&amp;f' id='tab&#9;here&#10;line'>"
        b"<body>&lt;&amp;'\"]]&gt;&#13;</body></message>"
    )
    parsed = parse_stanza(wire)
    assert dict(parsed.attrib) == dict(message.attrib)
    assert parsed.findtext("{jabber:server}body") == "<&'\"]]>\r"


@pytest.mark.parametrize(
    "stanza",
    [
        pytest.param(
            b"<message from='alice@prosody.localhost/phone' to='bob@imweb.localhost' type='chat' id='m1'>"
            b"<body>caf\xc3\xa9 &amp; &lt;3</body><request xmlns='urn:xmpp:receipts'/></message>",
            id="message-with-receipt-request",
        ),
        pytest.param(b"<db:result from='prosody.localhost' to='imweb.localhost'>K1</db:result>", id="db-result"),
        pytest.param(
            b"<db:verify from='imweb.localhost' to='prosody.localhost' id='cc03' type='valid'/>", id="db-verify"
        ),
        pytest.param(
            b"<iq type='error' id='p1'><ping xmlns='urn:xmpp:ping'/><error type='cancel'>"
            b"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
            id="iq-error",
        ),
        pytest.param(
            b"<message xml:lang='de'><x xmlns='jabber:x:data' type='form'><field var='a'/></x>"
            b"<plain xmlns=''>text</plain></message>",
            id="nested-namespaces",
        ),
    ],
)
def test_parsed_stanzas_serialise_back_to_the_same_bytes(stanza: bytes) -> None:
    assert to_xml(parse_stanza(stanza)) == stanza


def test_a_second_stream_header_inside_an_open_stream_is_an_error_at_once() -> None:
    parser = XMLStreamParser()
    parser.feed(HEADER)
    second = (
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
        b" from='prosody.localhost' to='imweb.localhost' version='1.0'>"
    )
    with pytest.raises(StreamError) as raised:
        parser.feed(second)  # not a stanza that never ends: no timeout needed to see it
    assert raised.value.args[0] == "invalid-xml"
