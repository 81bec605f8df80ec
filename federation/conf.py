"""The federation settings, read in one place from Django's settings (each with a default) and checked.

imweb/settings.py reads the environment; this module turns those values into one `FederationConfig` that the
stream code receives, so nothing below it touches `django.conf.settings`, and tests build a config directly.

| setting | default | meaning |
|---|---|---|
| IMWEB_DOMAIN | (required) | our XMPP domain |
| IMWEB_S2S_PORT | 5269 | the s2s listener's port (RFC 6120 §14.7) |
| IMWEB_S2S_BIND | "" (all interfaces) | the listener's address |
| IMWEB_S2S_TLS | "required" | STARTTLS policy for s2s: required, optional or off |
| IMWEB_TLS_CERT, IMWEB_TLS_KEY | "" | PEM files of our certificate and key; unset: a self-signed one under VAR_DIR |
| IMWEB_S2S_PEERS | "" | static routes "domain=host:port,...", for tests and private federations |
| IMWEB_DIALBACK_SECRET | derived from SECRET_KEY | the XEP-0185 secret; the same in every federation process |
| IMWEB_DNS_SERVER | "" (the system's) | "host:port" of the DNS server for SRV/A lookups |
| IMWEB_S2S_HANDSHAKE_TIMEOUT | 60 | seconds a peer has to connect, STARTTLS and authenticate |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from django.core.exceptions import ImproperlyConfigured

from federation.dialback import derive_secret
from federation.resolver import Route, parse_address, parse_peers

TLSPolicy = Literal["required", "optional", "off"]
TLS_POLICIES: tuple[TLSPolicy, ...] = ("required", "optional", "off")


@dataclass(frozen=True)
class FederationConfig:
    """Everything the s2s service needs to know; the timeouts rarely need changing outside tests."""

    domain: str
    dialback_secret: str
    state_dir: Path  # where a generated certificate is kept
    port: int = 5269
    bind: str = ""
    tls: TLSPolicy = "required"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    peers: dict[str, Route] = field(default_factory=dict)
    dns_server: tuple[str, int] | None = None
    # Seconds. Prosody allows 90 s for connect + auth (s2s_timeout, docs/federation.md §7.8).
    connect_timeout: float = 10.0
    handshake_timeout: float = 60.0
    verify_timeout: float = 30.0
    # A whitespace keepalive on an idle outbound stream every few minutes (RFC 6120 §4.6.1), well inside the
    # read timeouts of peers (Prosody: 840 s) and of NATs; idle outbound streams close after ten minutes and
    # are reopened on demand.
    keepalive_interval: float = 240.0
    idle_timeout: float = 600.0
    # An inbound stream that sends nothing, not even a keepalive, for this long is gone.
    read_timeout: float = 1800.0
    # RFC 6120 §13.12: limits on what one peer may make us hold. Prosody allows 10 kB of stanza before
    # authentication and 512 kB after (docs/federation.md §7.9).
    max_stanza_bytes_unauthenticated: int = 10_000
    max_stanza_bytes: int = 512 * 1024
    max_inbound_streams: int = 1000
    max_domains_per_stream: int = 50

    def __post_init__(self) -> None:
        if not self.domain or self.domain != self.domain.strip().lower().rstrip("."):
            raise ImproperlyConfigured(f"IMWEB_DOMAIN must be a lower-case domain name, not {self.domain!r}")
        if self.tls not in TLS_POLICIES:
            raise ImproperlyConfigured(f"IMWEB_S2S_TLS must be one of {', '.join(TLS_POLICIES)}, not {self.tls!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ImproperlyConfigured("IMWEB_TLS_CERT and IMWEB_TLS_KEY must be set together")
        if not 0 <= self.port <= 65535:
            raise ImproperlyConfigured(f"IMWEB_S2S_PORT must be a port number, not {self.port}")
        if self.handshake_timeout <= 0:
            raise ImproperlyConfigured("IMWEB_S2S_HANDSHAKE_TIMEOUT must be positive")
        if not self.dialback_secret:
            raise ImproperlyConfigured("IMWEB_DIALBACK_SECRET must not be empty")


def from_settings() -> FederationConfig:
    """Build the config from `django.conf.settings`; a missing setting takes its default (see the module doc)."""
    from django.conf import settings

    def text(name: str, default: str = "") -> str:
        value = getattr(settings, name, default)
        return default if value is None else str(value).strip()

    try:
        port = int(getattr(settings, "IMWEB_S2S_PORT", 5269))
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"IMWEB_S2S_PORT must be a whole number, not {settings.IMWEB_S2S_PORT!r}") from None
    try:
        handshake_timeout = float(getattr(settings, "IMWEB_S2S_HANDSHAKE_TIMEOUT", None) or 60.0)
    except (TypeError, ValueError):
        raise ImproperlyConfigured("IMWEB_S2S_HANDSHAKE_TIMEOUT must be a number of seconds") from None
    peers = getattr(settings, "IMWEB_S2S_PEERS", "") or ""
    dns_server = text("IMWEB_DNS_SERVER")
    cert, key = text("IMWEB_TLS_CERT"), text("IMWEB_TLS_KEY")
    try:
        return FederationConfig(
            domain=text("IMWEB_DOMAIN").lower(),
            dialback_secret=text("IMWEB_DIALBACK_SECRET") or derive_secret(settings.SECRET_KEY),
            state_dir=Path(settings.VAR_DIR) / "federation",
            port=port,
            bind=text("IMWEB_S2S_BIND"),
            tls=text("IMWEB_S2S_TLS", "required").lower(),  # type: ignore[arg-type]  # checked in __post_init__
            tls_cert=Path(cert) if cert else None,
            tls_key=Path(key) if key else None,
            peers=dict(peers) if isinstance(peers, dict) else parse_peers(str(peers)),
            dns_server=parse_address(dns_server, default_port=53, what="IMWEB_DNS_SERVER") if dns_server else None,
            handshake_timeout=handshake_timeout,
        )
    except ValueError as err:
        raise ImproperlyConfigured(str(err)) from None
