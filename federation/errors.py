"""Federation error types: the XMPP stream error (RFC 6120 §4.9) that ends an s2s stream."""

# RFC 6120 §4.9.3 defines exactly these stream error conditions. A condition becomes an element name on the
# wire (<COND xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>), so anything else is a programming error.
STREAM_ERROR_CONDITIONS = frozenset(
    {
        "bad-format",
        "bad-namespace-prefix",
        "conflict",
        "connection-timeout",
        "host-gone",
        "host-unknown",
        "improper-addressing",
        "internal-server-error",
        "invalid-from",
        "invalid-namespace",
        "invalid-xml",
        "not-authorized",
        "not-well-formed",
        "policy-violation",
        "remote-connection-failed",
        "reset",
        "resource-constraint",
        "restricted-xml",
        "see-other-host",
        "system-shutdown",
        "undefined-condition",
        "unsupported-encoding",
        "unsupported-feature",
        "unsupported-stanza-type",
        "unsupported-version",
    }
)


class StreamError(Exception):
    """An unrecoverable stream-level error (RFC 6120 §4.9.1.1): send it to the peer, then close the stream.

    `condition` is one of the RFC 6120 §4.9.3 defined conditions; `text` is optional human-readable detail
    (the <text/> child), empty when there is none.
    """

    def __init__(self, condition: str, text: str = "") -> None:
        if condition not in STREAM_ERROR_CONDITIONS:
            raise ValueError(f"not an RFC 6120 stream error condition: {condition!r}")
        super().__init__(condition, text)
        self.condition = condition
        self.text = text

    def __str__(self) -> str:
        return f"{self.condition}: {self.text}" if self.text else self.condition
