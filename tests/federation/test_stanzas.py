"""Stanza builders and readers (federation.stanzas), checked against literal XML as it goes on the wire."""

from __future__ import annotations

import uuid

import pytest
from lxml import etree

from accounts.errors import InvalidJid
from federation import stanzas
from federation.serialize import to_xml

ME = "bob@imweb.localhost"
ALICE = "alice@prosody.localhost"


def wire(element: etree._Element) -> str:
    return to_xml(element).decode()


def parse(xml: str) -> etree._Element:
    """A stanza as the stream parser hands it over: in jabber:server."""
    return etree.fromstring(f"<stream xmlns='jabber:server'>{xml}</stream>")[0]


def test_a_chat_message_carries_origin_id_receipt_request_and_active_state():
    element = stanzas.chat_message(ME, ALICE, "Hi <there> & bye", "6c1e")

    assert wire(element) == (
        f"<message from='{ME}' to='{ALICE}' type='chat' id='6c1e'>"
        "<body>Hi &lt;there&gt; &amp; bye</body>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='6c1e'/>"
        "<request xmlns='urn:xmpp:receipts'/>"
        "<active xmlns='http://jabber.org/protocol/chatstates'/>"
        "</message>"
    )


def test_a_chat_state_notification_has_no_body_and_a_no_store_hint():
    element = stanzas.chat_state(ME, ALICE, "composing")
    message_id = element.get("id")

    assert wire(element) == (
        f"<message from='{ME}' to='{ALICE}' type='chat' id='{message_id}'>"
        "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
        "<no-store xmlns='urn:xmpp:hints'/>"
        "</message>"
    )
    with pytest.raises(ValueError, match="not a XEP-0085 chat state"):
        stanzas.chat_state(ME, ALICE, "dancing")


def test_a_receipt_names_the_message_it_acknowledges():
    element = stanzas.receipt(ME, ALICE, "their-id")

    assert wire(element) == (
        f"<message from='{ME}' to='{ALICE}' id='{element.get('id')}'>"
        "<received xmlns='urn:xmpp:receipts' id='their-id'/></message>"
    )


@pytest.mark.parametrize(
    ("kwargs", "xml"),
    [
        ({"type_": "subscribe"}, f"<presence from='{ME}' to='{ALICE}' type='subscribe'/>"),
        ({"type_": "unsubscribed"}, f"<presence from='{ME}' to='{ALICE}' type='unsubscribed'/>"),
        ({"type_": "probe"}, f"<presence from='{ME}' to='{ALICE}' type='probe'/>"),
        ({}, f"<presence from='{ME}' to='{ALICE}'/>"),
        ({"show": "dnd", "status": "in a meeting"},
         f"<presence from='{ME}' to='{ALICE}'><show>dnd</show><status>in a meeting</status></presence>"),
        ({"type_": "unavailable"}, f"<presence from='{ME}' to='{ALICE}' type='unavailable'/>"),
    ],
    ids=["subscribe", "unsubscribed", "probe", "available", "dnd with status", "unavailable"],
)  # fmt: skip
def test_presence_stanzas(kwargs, xml):
    assert wire(stanzas.presence(ME, ALICE, **kwargs)) == xml


@pytest.mark.parametrize(
    ("show", "status", "xml"),
    [
        ("available", "hi", f"<presence from='{ME}' to='{ALICE}'><status>hi</status></presence>"),
        ("away", "", f"<presence from='{ME}' to='{ALICE}'><show>away</show></presence>"),
        ("xa", "", f"<presence from='{ME}' to='{ALICE}'><show>xa</show></presence>"),
        ("offline", "", f"<presence from='{ME}' to='{ALICE}' type='unavailable'/>"),
        ("invisible", "secret", f"<presence from='{ME}' to='{ALICE}' type='unavailable'/>"),
    ],
)
def test_our_presence_states_map_onto_rfc6121(show, status, xml):
    assert wire(stanzas.presence_for_show(ME, ALICE, show, status)) == xml


def test_bad_builder_input_is_a_programming_error():
    with pytest.raises(ValueError, match="presence type"):
        stanzas.presence(ME, ALICE, type_="dance")
    with pytest.raises(ValueError, match="show"):
        stanzas.presence(ME, ALICE, show="sleeping")


def test_reading_an_incoming_chat_message():
    element = parse(
        f"<message from='{ALICE}/phone' to='{ME}' type='chat' id='m1'><body>Hello</body>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/><request xmlns='urn:xmpp:receipts'/>"
        "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )

    assert stanzas.kind(element) == "message"
    assert str(stanzas.bare_jid(element.get("from"))) == ALICE
    assert stanzas.body(element) == "Hello"
    assert stanzas.wants_receipt(element)
    assert stanzas.chat_state_of(element) == "active"
    assert stanzas.message_id(element) == "o1"  # origin-id wins over the stanza id
    assert stanzas.received_id(element) is None


def test_remote_client_ids_are_stable_per_sender_and_id():
    first = parse(f"<message from='{ALICE}/a' id='x'><body>1</body></message>")
    again = parse(f"<message from='{ALICE}/b' id='x'><body>1</body></message>")
    other = parse("<message from='mallory@prosody.localhost' id='x'><body>1</body></message>")
    no_id = parse(f"<message from='{ALICE}'><body>1</body></message>")

    assert stanzas.remote_client_id(ALICE, first) == stanzas.remote_client_id(ALICE, again)
    assert stanzas.remote_client_id(ALICE, first) == uuid.uuid5(stanzas.REMOTE_MESSAGE_NAMESPACE, f"{ALICE}/x")
    assert stanzas.remote_client_id("mallory@prosody.localhost", other) != stanzas.remote_client_id(ALICE, first)
    # Without any id nothing can be de-duplicated, but the message is still stored: a fresh id each time.
    assert stanzas.remote_client_id(ALICE, no_id) != stanzas.remote_client_id(ALICE, no_id)


def test_reading_receipts_chat_states_and_errors():
    receipt = parse(f"<message from='{ALICE}' to='{ME}'><received xmlns='urn:xmpp:receipts' id='r9'/></message>")
    typing = parse(
        f"<message from='{ALICE}' to='{ME}'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
    error = parse(
        f"<message from='{ALICE}' to='{ME}' type='error' id='e1'><error type='cancel'>"
        "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>No such user</text></error></message>"
    )
    bare_error = parse(f"<message from='{ALICE}' type='error'/>")

    assert stanzas.received_id(receipt) == "r9"
    assert stanzas.body(receipt) is None
    assert stanzas.chat_state_of(typing) == "paused"
    assert stanzas.error_of(error).plain_words == "service unavailable: No such user"
    assert stanzas.error_of(bare_error).plain_words == "undefined condition"


@pytest.mark.parametrize(
    ("xml", "available", "show", "status"),
    [
        ("<presence/>", True, "", ""),
        ("<presence><show>away</show><status> lunch </status></presence>", True, "away", "lunch"),
        ("<presence><show>sleeping</show></presence>", True, "", ""),
        ("<presence type='unavailable'><status>bye</status></presence>", False, "", "bye"),
    ],
    ids=["plain", "away with status", "unknown show", "unavailable"],
)
def test_reading_presence(xml, available, show, status):
    state = stanzas.presence_state(parse(xml))
    assert (state.available, state.show, state.status) == (available, show, status)


def test_a_huge_remote_status_is_cut():
    state = stanzas.presence_state(parse(f"<presence><status>{'x' * 5000}</status></presence>"))
    assert len(state.status) == stanzas.STATUS_MAX


@pytest.mark.parametrize("value", [None, "", " alice@prosody.localhost", "xmpp:alice@prosody.localhost", "a b@c"])
def test_unusable_addresses_are_refused(value):
    with pytest.raises(InvalidJid):
        stanzas.bare_jid(value)


def test_addresses_lose_their_resource_and_their_case():
    assert str(stanzas.bare_jid("Alice@Prosody.Localhost/Phone")) == ALICE
    assert str(stanzas.bare_jid("prosody.localhost")) == "prosody.localhost"
