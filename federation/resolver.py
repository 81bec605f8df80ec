"""Where to connect for a remote XMPP domain: static routes, else DNS SRV, else A/AAAA (RFC 6120 §3.2).

The order, for `resolve("example.org")`:
1. a static route from IMWEB_S2S_PEERS ("example.org=10.0.0.5:5269"): trusted as written, private addresses
   included. Tests and closed federations use it.
2. SRV `_xmpp-server._tcp.example.org` (RFC 6120 §3.2.1): targets by priority, weighted within a priority
   (RFC 2782), each target's addresses looked up in turn.
3. no SRV records: the domain's own A/AAAA records on port 5269 (RFC 6120 §3.2.2).

Any address found through DNS that is not a public unicast address (loopback, private, link-local, reserved,
multicast, ...) is dropped, and if nothing is left the domain is refused: otherwise anyone could make us connect
to our own internal network by claiming a domain whose DNS points there (a dialback `db:result` is enough to make
us connect back). The returned hosts are IP addresses, so the connection goes to exactly the checked address.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Mapping

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

# (host, port) as written in a static route, or (IP address, port) found through DNS.
Route = tuple[str, int]

DEFAULT_PORT = 5269  # RFC 6120 §14.7, the IANA port for xmpp-server


class ResolutionError(Exception):
    """The domain has no address we may connect to; the message says why, in plain words."""


def parse_address(text: str, *, default_port: int | None = None, what: str = "address") -> Route:
    """'host:port', '[v6]:port' or (with a default port) 'host' -> (host, port); ValueError on bad syntax."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{what}: {text!r} has '[' without ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{what}: expected ':port' after ']' in {text!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        raise ValueError(f"{what}: write an IPv6 address in brackets, as [::1]:5269, not {text!r}")
    if not host:
        raise ValueError(f"{what}: no host in {text!r}")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{what}: no port in {text!r}; write host:port")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{what}: {port_text!r} is not a port number (1-65535) in {text!r}")
    return host, int(port_text)


def parse_peers(text: str) -> dict[str, Route]:
    """Parse IMWEB_S2S_PEERS: "domain=host:port,domain2=host2:port2" (whitespace around items is ignored).

    >>> parse_peers("prosody.localhost=127.0.0.1:15269, example.org=[::1]:5269")
    {'prosody.localhost': ('127.0.0.1', 15269), 'example.org': ('::1', 5269)}
    """
    peers: dict[str, Route] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        domain, equals, address = item.partition("=")
        domain = domain.strip().lower().rstrip(".")
        if not equals or not domain:
            raise ValueError(f"IMWEB_S2S_PEERS: expected domain=host:port, not {item!r}")
        if domain in peers:
            raise ValueError(f"IMWEB_S2S_PEERS: {domain} is listed twice")
        peers[domain] = parse_address(address, what=f"IMWEB_S2S_PEERS entry for {domain}")
    return peers


def is_public(address: str) -> bool:
    """Whether we may connect to this IP address when DNS led us there: global unicast only."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return ip.is_global and not ip.is_multicast


class Resolver:
    """Resolves remote domains to connection targets; see the module docstring."""

    def __init__(
        self,
        static: Mapping[str, Route] | None = None,
        *,
        nameserver: Route | None = None,
        timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self._static = {domain.lower(): route for domain, route in (static or {}).items()}
        self._nameserver = nameserver
        self._timeout = timeout
        self._rng = rng or random.Random()  # noqa: S311  (load spreading, not security)
        self._dns: dns.asyncresolver.Resolver | None = None

    def _resolver(self) -> dns.asyncresolver.Resolver:
        # Created on first use: the system configuration is read only when a lookup is needed, so a machine
        # without /etc/resolv.conf can still start the service (and use static routes).
        if self._dns is None:
            if self._nameserver is None:
                try:
                    self._dns = dns.asyncresolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    raise ResolutionError("this machine has no DNS configuration (set IMWEB_DNS_SERVER)") from None
            else:
                self._dns = dns.asyncresolver.Resolver(configure=False)
                self._dns.nameservers = [self._nameserver[0]]
                self._dns.port = self._nameserver[1]
        return self._dns

    async def resolve(self, domain: str) -> list[Route]:
        """The (host, port) pairs to try for `domain`, best first. Raises ResolutionError."""
        domain = domain.strip().lower().rstrip(".")
        if domain in self._static:
            return [self._static[domain]]
        if not domain:
            raise ResolutionError("no domain given")
        if _is_ip_literal(domain):
            # RFC 6120 §3.2.1 skips DNS for an IP address; it still has to be a public one.
            address = domain.strip("[]")
            self._refuse_unless_public(domain, [address])
            return [(address, DEFAULT_PORT)]
        try:
            dns.name.from_text(domain)
        except dns.exception.DNSException:
            raise ResolutionError(f"{domain!r} is not a valid domain name") from None

        targets = await self._srv_targets(domain)
        if targets is None:
            targets = [(domain, DEFAULT_PORT)]
        routes: list[Route] = []
        found: list[str] = []
        for host, port in targets:
            addresses = await self._addresses(host)
            found += addresses
            routes += [(address, port) for address in addresses if is_public(address)]
        if not found:
            raise ResolutionError(f"{domain} has no address in DNS")
        if not routes:
            self._refuse_unless_public(domain, found)
        return routes

    def _refuse_unless_public(self, domain: str, addresses: list[str]) -> None:
        private = [address for address in addresses if not is_public(address)]
        if private:
            raise ResolutionError(
                f"refusing to connect to {domain}: it resolves only to non-public addresses "
                f"({', '.join(sorted(set(private)))}); list it in IMWEB_S2S_PEERS if that is intended"
            )

    async def _srv_targets(self, domain: str) -> list[Route] | None:
        """SRV targets in the order to try them; None if the domain has no SRV records."""
        answer = await self._query(f"_xmpp-server._tcp.{domain}", "SRV")
        if answer is None:
            return None
        records = list(answer)
        # RFC 2782: a single record with target '.' means the service is decidedly not available there.
        if len(records) == 1 and records[0].target == dns.name.root:
            raise ResolutionError(f"{domain} says it does not accept server-to-server connections (SRV '.')")
        ordered: list[Route] = []
        for priority in sorted({record.priority for record in records}):
            group = [record for record in records if record.priority == priority]
            while group:
                # RFC 2782 weighted selection: a record's chance is its share of the group's total weight.
                total = sum(record.weight for record in group)
                pick = self._rng.uniform(0, total) if total else 0
                chosen = group[0]
                for record in group:
                    pick -= record.weight
                    if pick <= 0:
                        chosen = record
                        break
                group.remove(chosen)
                if chosen.target != dns.name.root:
                    ordered.append((chosen.target.to_text(omit_final_dot=True), chosen.port))
        return ordered

    async def _addresses(self, host: str) -> list[str]:
        if _is_ip_literal(host):
            return [host.strip("[]")]
        addresses: list[str] = []
        for rdtype in ("A", "AAAA"):
            answer = await self._query(host, rdtype)
            if answer is not None:
                addresses += [record.address for record in answer]
        return addresses

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """One lookup; None when the name or the record type does not exist, ResolutionError when DNS fails."""
        try:
            return await self._resolver().resolve(name, rdtype, lifetime=self._timeout, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.Timeout:
            raise ResolutionError(f"DNS lookup of {name} ({rdtype}) timed out") from None
        except dns.exception.DNSException as err:
            raise ResolutionError(f"DNS lookup of {name} ({rdtype}) failed: {err}") from None


def _is_ip_literal(text: str) -> bool:
    text = text.strip("[]")
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except OSError:
            continue
        return True
    return False


async def resolve(domain: str) -> list[Route]:
    """`Resolver.resolve` with the static routes and DNS server of the settings (IMWEB_S2S_PEERS, IMWEB_DNS_SERVER)."""
    from federation.conf import from_settings  # conf imports this module

    config = from_settings()
    return await Resolver(config.peers, nameserver=config.dns_server).resolve(domain)
