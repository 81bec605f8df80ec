"""Stanza ↔ action translation: builders for the stanzas we send, and readers for the ones we receive.

Pure functions on lxml elements, no I/O and no database. Stanzas are built in jabber:server (the namespace our
s2s stream declares), so they serialise without `xmlns` (docs/federation.md §7.10); payloads of other namespaces
(receipts, chat states, origin-id, hints) carry their own. The readers accept what arrives from the stream
parser (jabber:server) and, for tests and tools, jabber:client.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from accounts.errors import InvalidJid
from accounts.jid import BareJid, parse_bare_jid
from federation.bounce import STANZAS_NS
from federation.oob import OOB_NS
from federation.xmlstream import SERVER_NS

CLIENT_NS = "jabber:client"
RECEIPTS_NS = "urn:xmpp:receipts"  # XEP-0184
CHATSTATES_NS = "http://jabber.org/protocol/chatstates"  # XEP-0085
SID_NS = "urn:xmpp:sid:0"  # XEP-0359: origin-id and stanza-id
HINTS_NS = "urn:xmpp:hints"  # XEP-0334

# XEP-0085 §5: every state a peer may send; we send `active` with messages and `composing`/`paused` alone.
CHAT_STATES = ("active", "composing", "paused", "inactive", "gone")
# RFC 6121 §4.7.2.1: the <show/> values; anything else is "available" with no <show/>.
SHOWS = ("away", "chat", "dnd", "xa")
SUBSCRIPTION_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")
STATUS_MAX = 1024  # a remote status text is cut to this many characters before anyone stores it

# Remote messages get client_id = uuid5(REMOTE_MESSAGE_NAMESPACE, "<sender bare JID>/<origin-id or id>"), so a
# stanza the peer delivers twice (after a lost ack, a restart) is stored once. Never change this constant:
# messages already stored would no longer match their re-deliveries.
REMOTE_MESSAGE_NAMESPACE = uuid.UUID("6f1d8a52-3c0e-5b7a-9e2d-1c4b8f0a7e31")


def _element(kind: str, *, from_jid: str, to_jid: str, **attributes: str) -> etree._Element:
    stanza = etree.Element(f"{{{SERVER_NS}}}{kind}", nsmap={None: SERVER_NS})
    stanza.set("from", from_jid)
    stanza.set("to", to_jid)
    for name, value in attributes.items():
        if value:
            stanza.set(name.rstrip("_"), value)
    return stanza


def _payload(parent: etree._Element, namespace: str, name: str, **attributes: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{namespace}}}{name}", nsmap={None: namespace})
    for key, value in attributes.items():
        child.set(key, value)
    return child


def _text_child(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{SERVER_NS}}}{name}").text = text


# --- builders: what we send ---------------------------------------------------------------------------------


def chat_message(
    from_jid: str, to_jid: str, body: str, message_id: str, files: Sequence[tuple[str, str]] = ()
) -> etree._Element:
    """A 1:1 chat message (RFC 6121 §5) as we send it: the body, our id as XEP-0359 origin-id too (so the peer
    can de-duplicate a re-delivery), a XEP-0184 receipt request, and the XEP-0085 `active` state.

    `files` are (url, name) of the attached files: one XEP-0066 `<x xmlns='jabber:x:oob'>` each, and the URLs in
    the body too, for clients that only show bodies. One file and no text: the body is the URL alone, which is
    what Conversations, Dino and Gajim show inline as the file; otherwise the text, then each URL on a line."""
    stanza = _element("message", from_jid=from_jid, to_jid=to_jid, type="chat", id=message_id)
    urls = [url for url, _name in files]
    _text_child(stanza, "body", "\n".join([body, *urls]) if body.strip() else "\n".join(urls))
    for url, name in files:
        oob = _payload(stanza, OOB_NS, "x")
        etree.SubElement(oob, f"{{{OOB_NS}}}url").text = url
        etree.SubElement(oob, f"{{{OOB_NS}}}desc").text = name
    _payload(stanza, SID_NS, "origin-id", id=message_id)
    _payload(stanza, RECEIPTS_NS, "request")
    _payload(stanza, CHATSTATES_NS, "active")
    return stanza


def chat_state(from_jid: str, to_jid: str, state: str) -> etree._Element:
    """A standalone chat-state notification (XEP-0085 §5.5): no body, and a XEP-0334 no-store hint so the
    peer's archive does not fill with typing notices."""
    if state not in CHAT_STATES:
        raise ValueError(f"not a XEP-0085 chat state: {state!r}")
    stanza = _element("message", from_jid=from_jid, to_jid=to_jid, type="chat", id=new_id())
    _payload(stanza, CHATSTATES_NS, state)
    _payload(stanza, HINTS_NS, "no-store")
    return stanza


def receipt(from_jid: str, to_jid: str, received_id: str) -> etree._Element:
    """The XEP-0184 answer to a receipt request: `<received id=...>` names the message that arrived."""
    stanza = _element("message", from_jid=from_jid, to_jid=to_jid, id=new_id())
    _payload(stanza, RECEIPTS_NS, "received", id=received_id)
    return stanza


def presence(
    from_jid: str, to_jid: str, *, type_: str | None = None, show: str | None = None, status: str = ""
) -> etree._Element:
    """A presence stanza: a subscription request or answer (`type_` one of SUBSCRIPTION_TYPES), `probe`,
    `unavailable`, or (type_ None) available with an optional <show/> and <status/> (RFC 6121 §4.7)."""
    if type_ is not None and type_ not in (*SUBSCRIPTION_TYPES, "probe", "unavailable"):
        raise ValueError(f"not a presence type we send: {type_!r}")
    if show is not None and show not in SHOWS:
        raise ValueError(f"not an RFC 6121 <show/> value: {show!r}")
    stanza = _element("presence", from_jid=from_jid, to_jid=to_jid, type=type_ or "")
    if show is not None and type_ is None:
        _text_child(stanza, "show", show)
    if status and type_ in (None, "unavailable"):
        _text_child(stanza, "status", status)
    return stanza


def presence_for_show(from_jid: str, to_jid: str, show: str, status: str = "") -> etree._Element:
    """Our presence as a remote contact should see it, from imweb's show values (accounts.models.Show):
    offline and invisible are `unavailable`; available has no <show/>; away, xa and dnd map one to one."""
    if show in ("offline", "invisible"):
        return presence(from_jid, to_jid, type_="unavailable")
    return presence(from_jid, to_jid, show=show if show in SHOWS else None, status=status)


def new_id() -> str:
    return uuid.uuid4().hex


# --- readers: what we receive ------------------------------------------------------------------------------


def _child(stanza: etree._Element, namespace: str | None, name: str) -> etree._Element | None:
    """The first child called `name` in `namespace`; None = the stanza's own namespace (server or client)."""
    namespaces = (SERVER_NS, CLIENT_NS) if namespace is None else (namespace,)
    for child in stanza:
        if isinstance(child.tag, str) and child.tag in {f"{{{ns}}}{name}" for ns in namespaces}:
            return child
    return None


def kind(stanza: etree._Element) -> str:
    """`message`, `presence` or `iq` (or whatever the element is called)."""
    return etree.QName(stanza).localname


def bare_jid(text: str | None) -> BareJid:
    """The bare JID of an address attribute (`user@domain/resource` → `user@domain`); InvalidJid if malformed.

    Stricter than what people type: no URI scheme, no surrounding spaces; `parse_bare_jid` does the RFC 7622 checks.
    """
    if not text or text != text.strip() or text.lower().startswith("xmpp:"):
        raise InvalidJid(f"{text!r} is not a JID.")
    return parse_bare_jid(text, allow_domain=True)


def body(stanza: etree._Element) -> str | None:
    """The message body (RFC 6121 §5.2.3), or None when there is none; several bodies (languages): the first."""
    element = _child(stanza, None, "body")
    return None if element is None else (element.text or "")


def wants_receipt(stanza: etree._Element) -> bool:
    return _child(stanza, RECEIPTS_NS, "request") is not None


def received_id(stanza: etree._Element) -> str | None:
    """The id a XEP-0184 `<received/>` acknowledges, or None if the stanza is not a receipt."""
    element = _child(stanza, RECEIPTS_NS, "received")
    return None if element is None else (element.get("id") or None)


def chat_state_of(stanza: etree._Element) -> str | None:
    """The XEP-0085 chat state the message carries, or None."""
    for state in CHAT_STATES:
        if _child(stanza, CHATSTATES_NS, state) is not None:
            return state
    return None


def message_id(stanza: etree._Element) -> str | None:
    """The sender's id for a message: its XEP-0359 origin-id (stable across the sender's retries), else the
    stanza `id`; None when it has neither, and then no de-duplication is possible."""
    origin = _child(stanza, SID_NS, "origin-id")
    if origin is not None and origin.get("id"):
        return origin.get("id")
    return stanza.get("id") or None


def remote_client_id(sender: BareJid | str, stanza: etree._Element) -> uuid.UUID:
    """The client_id a remote message is stored under: the same for every re-delivery of one message; a fresh
    one (stored, never dropped) when the sender gave no id at all."""
    identifier = message_id(stanza)
    if identifier is None:
        return uuid.uuid4()
    return uuid.uuid5(REMOTE_MESSAGE_NAMESPACE, f"{sender}/{identifier}")


@dataclass(frozen=True)
class StanzaError:
    condition: str
    text: str

    @property
    def plain_words(self) -> str:
        """The error as the sender of the failed message reads it."""
        words = self.condition.replace("-", " ")
        return f"{words}: {self.text}" if self.text else words


def error_of(stanza: etree._Element) -> StanzaError:
    """The condition and text of a `type='error'` stanza (RFC 6120 §8.3.2); `undefined-condition` if absent."""
    error = _child(stanza, None, "error")
    condition, text = "undefined-condition", ""
    if error is not None:
        for child in error:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != STANZAS_NS:
                continue
            name = etree.QName(child).localname
            if name == "text":
                text = (child.text or "").strip()[:STATUS_MAX]
            elif condition == "undefined-condition":
                condition = name
    return StanzaError(condition, text)


@dataclass(frozen=True)
class RemotePresenceState:
    available: bool
    show: str  # "" (plain available), away, chat, dnd or xa
    status: str


def presence_state(stanza: etree._Element) -> RemotePresenceState:
    """What an available/unavailable presence says (RFC 6121 §4.7): an unknown <show/> counts as available."""
    status_element = _child(stanza, None, "status")
    status = (status_element.text or "").strip()[:STATUS_MAX] if status_element is not None else ""
    if stanza.get("type") == "unavailable":
        return RemotePresenceState(False, "", status)
    show_element = _child(stanza, None, "show")
    show = (show_element.text or "").strip() if show_element is not None else ""
    return RemotePresenceState(True, show if show in SHOWS else "", status)
