"""What the server itself answers to other servers: XEP-0199 pings and XEP-0030 service discovery of the domain,
with the operators' contact addresses (XEP-0157) in a XEP-0128 form, so that a peer's operator (or a client on
another server) can check the server is alive, see what it speaks, and know where to report abuse.

Only IQs addressed to the domain itself are answered here; an IQ to a person is answered on their behalf by
federation.handlers (with `service-unavailable`: imweb offers nothing in their name).
"""

from __future__ import annotations

from django.conf import settings
from lxml import etree

from federation.xmlstream import SERVER_NS

PING_NS = "urn:xmpp:ping"  # XEP-0199
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"  # XEP-0030
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"
DATA_FORMS_NS = "jabber:x:data"  # XEP-0004, extended disco results by XEP-0128
SERVER_INFO_FORM = "http://jabber.org/network/serverinfo"  # XEP-0157

# What the server speaks with other servers, as disco#info features: the protocols its federation handles.
FEATURES = (
    DISCO_INFO_NS,
    DISCO_ITEMS_NS,
    PING_NS,
    "urn:xmpp:receipts",  # XEP-0184
    "http://jabber.org/protocol/chatstates",  # XEP-0085
    "jabber:x:oob",  # XEP-0066: files go and come as links
    "urn:xmpp:sid:0",  # XEP-0359
)


def abuse_addresses() -> list[str]:
    """The operators' abuse contacts (IMWEB_ABUSE_ADDRESSES: comma-separated URIs such as mailto:abuse@example.org
    or xmpp:abuse@example.org); none when unset, rather than an address nobody reads."""
    return [part.strip() for part in settings.IMWEB_ABUSE_ADDRESSES.split(",") if part.strip()]


def answer(stanza: etree._Element) -> etree._Element | None:
    """The result for an IQ get addressed to the domain, or None when it asks for something not offered here (the
    caller answers `service-unavailable`). `stanza` is an <iq type='get'> whose `to` is the bare domain."""
    children = [child for child in stanza if isinstance(child.tag, str)]
    if len(children) != 1:
        return None  # RFC 6120 §8.2.3: an IQ get carries exactly one payload
    query = etree.QName(children[0])
    if (query.namespace, query.localname) == (PING_NS, "ping"):
        return _result(stanza)
    if query.localname != "query" or children[0].get("node"):
        return None
    if query.namespace == DISCO_INFO_NS:
        result = _result(stanza)
        info = etree.SubElement(result, f"{{{DISCO_INFO_NS}}}query", nsmap={None: DISCO_INFO_NS})
        etree.SubElement(info, f"{{{DISCO_INFO_NS}}}identity", category="server", type="im", name="imweb")
        for feature in FEATURES:
            etree.SubElement(info, f"{{{DISCO_INFO_NS}}}feature", var=feature)
        addresses = abuse_addresses()
        if addresses:
            _server_info(info, addresses)
        return result
    if query.namespace == DISCO_ITEMS_NS:
        result = _result(stanza)
        etree.SubElement(result, f"{{{DISCO_ITEMS_NS}}}query", nsmap={None: DISCO_ITEMS_NS})
        return result
    return None


def _result(stanza: etree._Element) -> etree._Element:
    reply = etree.Element(f"{{{SERVER_NS}}}iq", nsmap={None: SERVER_NS})
    reply.set("from", settings.IMWEB_DOMAIN)
    reply.set("to", stanza.get("from", ""))
    if stanza.get("id") is not None:
        reply.set("id", stanza.get("id"))
    reply.set("type", "result")
    return reply


def _server_info(query: etree._Element, addresses: list[str]) -> None:
    """XEP-0157's form: the addresses to write to about abuse."""
    form = etree.SubElement(query, f"{{{DATA_FORMS_NS}}}x", nsmap={None: DATA_FORMS_NS}, type="result")
    kind = etree.SubElement(form, f"{{{DATA_FORMS_NS}}}field", var="FORM_TYPE", type="hidden")
    etree.SubElement(kind, f"{{{DATA_FORMS_NS}}}value").text = SERVER_INFO_FORM
    field = etree.SubElement(form, f"{{{DATA_FORMS_NS}}}field", var="abuse-addresses")
    for address in addresses:
        etree.SubElement(field, f"{{{DATA_FORMS_NS}}}value").text = address
