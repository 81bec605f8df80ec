"""Property-based tests of the code that reads what strangers send: the s2s XML stream parser, addresses, and
socket frames. Whatever arrives, the answer is a value or the error type that code promises (a stream error to
send the peer, an invalid address, a frame error): never another exception, which would take the connection (or
worse) down. `make test` runs them briefly; `make fuzz` runs them long (HYPOTHESIS_PROFILE=fuzz, tests/conftest.py).
A counterexample found becomes a regression case in the module of the code it broke."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from accounts.errors import InvalidJid
from accounts.jid import parse_bare_jid
from chat.frames import FrameError, decode
from federation.errors import StreamError
from federation.xmlstream import XMLStreamParser

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
    b" xmlns:db='jabber:server:dialback' from='prosody.localhost' to='imweb.localhost' version='1.0'>"
)
XMLISH = st.lists(
    st.sampled_from(
        [
            b"<",
            b">",
            b"/",
            b"'",
            b'"',
            b"=",
            b"&",
            b";",
            b"&amp;",
            b"&#x0;",
            b"&lt;",
            b"<!",
            b"<?",
            b"]]>",
            b"<message",
            b"</message>",
            b"<body>",
            b"</body>",
            b"<stream:stream",
            b"</stream:stream>",
            b" ",
            b"xmlns='x'",
            b"to='a@b'",
            b"\xc3",
            b"\xa9",
            b"\xff",
            b"\x00",
            b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
            b"<![CDATA[",
            b"a",
            b"\n",
        ]
    ),
    max_size=60,
).map(b"".join)


def events_or_error(chunks: list[bytes]) -> tuple[list[str], str | None]:
    parser = XMLStreamParser()
    seen: list[str] = []
    try:
        for chunk in chunks:
            seen += [type(event).__name__ for event in parser.feed(chunk)]
    except StreamError as err:
        return seen, err.args[0]
    return seen, None


@given(st.binary(max_size=400))
@example(HEADER + b"<stream:stream>")  # a second header inside an open stream
def test_the_stream_parser_answers_any_bytes_with_events_or_a_stream_error(data):
    events_or_error([data])


@given(XMLISH, st.lists(st.integers(min_value=1, max_value=40), max_size=8))
def test_how_the_bytes_are_split_does_not_change_what_the_parser_says(body, cuts):
    data = HEADER + body
    chunks, at = [], 0
    for size in cuts:
        chunks.append(data[at : at + size])
        at += size
    chunks.append(data[at:])
    split_events, split_error = events_or_error([c for c in chunks if c])
    whole_events, whole_error = events_or_error([data])
    # The same error, at the same byte; without one, the same events (a feed that ends in an error returns
    # no events of its own, so before an error only the error is compared).
    assert split_error == whole_error
    if whole_error is None:
        assert split_events == whole_events


@given(st.text(max_size=200))
@example("xmpp:alice@example.org?message")
@example("@")
@example("a@b@c")
def test_an_address_is_parsed_or_refused_with_a_reason_and_parsing_is_stable(text):
    try:
        jid = parse_bare_jid(text)
    except InvalidJid as err:
        reason = str(err)
    else:
        assert parse_bare_jid(str(jid)) == jid
        return
    assert reason


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
@example("[" * 8000)
@example('{"type": ' + "[" * 50 + "]" * 50 + "}")
def test_a_socket_frame_is_read_or_refused_with_a_reason(raw):
    try:
        frame = decode(raw, None, 64 * 1024)
    except FrameError as err:
        refusal = (err.code, str(err))
    else:
        assert isinstance(frame, dict) and isinstance(frame["type"], str)
        return
    assert refusal[0] in ("invalid_frame", "frame_too_large") and refusal[1]
