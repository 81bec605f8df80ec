"""Stanza error replies (RFC 6120 §8.3), as they go on the wire."""

import pytest
from lxml import etree

from federation.bounce import error_reply
from federation.serialize import to_xml


def stanza(xml: str) -> etree._Element:
    return etree.fromstring(xml)


def test_message_to_nobody_gets_service_unavailable() -> None:
    original = stanza(
        "<message xmlns='jabber:server' from='alice@prosody.localhost/phone' to='nobody@imweb.localhost' "
        "type='chat' id='m1'><body>hello?</body></message>"
    )

    reply = error_reply(original, "service-unavailable")

    assert reply is not None
    assert to_xml(reply) == (
        b"<message from='nobody@imweb.localhost' to='alice@prosody.localhost/phone' id='m1' type='error'>"
        b"<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    )


def test_reply_can_say_why_and_ask_to_retry_later() -> None:
    original = stanza(
        "<iq xmlns='jabber:server' from='a@x' to='b@y' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>"
    )

    reply = error_reply(original, "internal-server-error", error_type="wait", text="try again")

    assert reply is not None
    assert to_xml(reply) == (
        b"<iq from='b@y' to='a@x' id='q' type='error'><error type='wait'>"
        b"<internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>try again</text></error></iq>"
    )


@pytest.mark.parametrize(
    "xml",
    [
        "<message xmlns='jabber:server' from='a@x' to='b@y' type='error'/>",  # never answer an error (loops)
        "<iq xmlns='jabber:server' from='a@x' to='b@y' type='result' id='1'/>",
        "<iq xmlns='jabber:server' from='a@x' to='b@y' type='error' id='1'/>",
        "<foo xmlns='urn:example' from='a@x' to='b@y'/>",
    ],
)
def test_no_reply_where_rfc_6120_forbids_one(xml: str) -> None:
    assert error_reply(stanza(xml), "service-unavailable") is None


def test_unknown_condition_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="stanza error condition"):
        error_reply(stanza("<message xmlns='jabber:server' from='a@x' to='b@y'/>"), "no-such-condition")
