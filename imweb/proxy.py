"""Who is on the other end of a connection: the peer address, unless the peer is one of our own reverse proxies
(IMWEB_TRUSTED_PROXIES), whose X-Forwarded-For and X-Forwarded-Proto headers then say who the client is and
whether it came over HTTPS.

Only the configured proxies are believed: otherwise a client would set its own address in X-Forwarded-For and
walk around every limit counted per IP (sign-ups, sign-ins). Daphne's own --proxy-headers trusts every peer,
which is why imweb does not use it. In a chain of proxies the client is the rightmost address that is not one of
ours (each proxy appends the address it saw).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """`10.0.0.5`, `10.0.0.0/8`, `::1` ... as networks; ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"IMWEB_TRUSTED_PROXIES: {value!r} is not an IP address or network") from None
    return networks


def _trusted(address: str | None, networks: list[Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def client_scope(scope: Scope, networks: list[Network]) -> Scope:
    """`scope` with `client` and `scheme` as the trusted proxies report them (unchanged for anyone else)."""
    peer = (scope.get("client") or (None, None))[0]
    if not networks or not _trusted(peer, networks):
        return scope
    changed = dict(scope)
    forwarded = _header(scope, b"x-forwarded-for")
    if forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        client = next((hop for hop in reversed(hops) if not _trusted(hop, networks)), hops[0] if hops else peer)
        changed["client"] = (client, 0)
    proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower()
    if proto in ("http", "https"):
        secure = proto == "https"
        if scope["type"] == "websocket":
            changed["scheme"] = "wss" if secure else "ws"
        else:
            changed["scheme"] = proto
    return changed


class TrustedProxyMiddleware:
    """ASGI middleware applying `client_scope` to every HTTP request and WebSocket."""

    def __init__(self, app: Callable[..., Awaitable[None]], networks: list[Network]) -> None:
        self.app = app
        self.networks = networks

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = client_scope(scope, self.networks)
        await self.app(scope, receive, send)


def _origin(scheme: str, host: str) -> str:
    """`scheme://host[:port]` with the scheme's default port left out, lower-cased (RFC 6454 serialisation)."""
    scheme = scheme.lower()
    host = host.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and host.endswith(default):
        host = host[: -len(default)]
    return f"{scheme}://{host}"


def same_origin(scope: Scope, allowed_hosts: list[str], trusted_origins: list[str]) -> bool:
    """Whether a browser's WebSocket comes from a page of this site: its Origin has the scheme, host and port of
    the request itself (or is one of CSRF_TRUSTED_ORIGINS), and the Host is one we serve. Channels' own
    validator compares the host only, so a page on http://localhost:1 could open a signed-in socket."""
    from django.http.request import split_domain_port, validate_host

    origin = _header(scope, b"origin")
    host = _header(scope, b"host")
    if not origin or not host:
        return False
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    wanted = {_origin(scheme, host), *(_origin(*o.split("://", 1)) for o in trusted_origins if "://" in o)}
    return _origin(*origin.split("://", 1)) in wanted if "://" in origin else False


class SameOriginValidator:
    """Refuses (closes before accepting) a WebSocket whose Origin is not this site's own (`same_origin`)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        from channels.security.websocket import WebsocketDenier
        from django.conf import settings

        if scope["type"] == "websocket" and not same_origin(
            scope, settings.ALLOWED_HOSTS, settings.CSRF_TRUSTED_ORIGINS
        ):
            denier = WebsocketDenier()
            await denier(scope, receive, send)
            return
        await self.app(scope, receive, send)
