"""Stanza error replies (RFC 6120 §8.3): the bounce a stanza gets when it cannot be delivered or processed.

RFC 6121 §8.5 and RFC 6120 §10.4 want an error back rather than silence for a message or an IQ to nobody; both
Prosody and ejabberd do this to us (docs/federation.md §7.6), and so must we. The reply swaps `from` and `to`, keeps
the `id`, has type='error' and an `<error/>` child with a defined condition.
"""

from __future__ import annotations

from lxml import etree

from federation.xmlstream import SERVER_NS

STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"  # RFC 6120 §8.3.3
STANZA_KINDS = frozenset({"message", "presence", "iq"})

# RFC 6120 §8.3.3: the defined stanza error conditions.
STANZA_ERROR_CONDITIONS = frozenset(
    {
        "bad-request",
        "conflict",
        "feature-not-implemented",
        "forbidden",
        "gone",
        "internal-server-error",
        "item-not-found",
        "jid-malformed",
        "not-acceptable",
        "not-allowed",
        "not-authorized",
        "policy-violation",
        "recipient-unavailable",
        "redirect",
        "registration-required",
        "remote-server-not-found",
        "remote-server-timeout",
        "resource-constraint",
        "service-unavailable",
        "subscription-required",
        "undefined-condition",
        "unexpected-request",
    }
)


def error_reply(
    stanza: etree._Element, condition: str, *, error_type: str = "cancel", text: str | None = None
) -> etree._Element | None:
    """The error bounce for `stanza` (any namespace), in jabber:server; None when RFC 6120 forbids one.

    No reply to an error (§8.3.1: that could loop forever between two servers) nor to an IQ result (§8.2.3).
    Whether a presence deserves an error at all is the caller's decision (RFC 6121 answers most with silence or
    'unsubscribed'). The original payload is not echoed back (§8.3.1 makes that optional), which keeps bounces small.
    """
    if condition not in STANZA_ERROR_CONDITIONS:
        raise ValueError(f"not an RFC 6120 stanza error condition: {condition!r}")
    kind = etree.QName(stanza).localname
    stanza_type = stanza.get("type", "")
    if kind not in STANZA_KINDS or stanza_type == "error":
        return None
    if kind == "iq" and stanza_type not in {"get", "set"}:
        return None
    reply = etree.Element(f"{{{SERVER_NS}}}{kind}", nsmap={None: SERVER_NS})
    for name, value in (("from", stanza.get("to")), ("to", stanza.get("from")), ("id", stanza.get("id"))):
        if value is not None:
            reply.set(name, value)
    reply.set("type", "error")
    error = etree.SubElement(reply, f"{{{SERVER_NS}}}error", type=error_type)
    etree.SubElement(error, f"{{{STANZAS_NS}}}{condition}", nsmap={None: STANZAS_NS})
    if text:
        text_element = etree.SubElement(error, f"{{{STANZAS_NS}}}text", nsmap={None: STANZAS_NS})
        text_element.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text_element.text = text
    return reply
