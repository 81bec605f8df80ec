"""Where we connect for a remote domain: static routes, then SRV, then A/AAAA; never to non-public addresses
found through DNS. Resolution runs against a real DNS server on loopback (tests.interop.minidns)."""

import asyncio
import random
from collections.abc import Iterator

import pytest

from federation.resolver import ResolutionError, Resolver, is_public, parse_peers
from tests.interop.minidns import MiniDNS
from tests.servers import free_port

# Public addresses for DNS answers only: these tests resolve names and never connect anywhere.
PUBLIC_V4 = ["93.184.215.14", "151.101.1.69", "140.82.112.3"]
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


@pytest.fixture(scope="module")
def dns_server() -> Iterator[MiniDNS]:
    server = MiniDNS().start()
    yield server
    server.stop()


def resolve(dns_server: MiniDNS, domain: str, **kwargs: object) -> list[tuple[str, int]]:
    resolver = Resolver(nameserver=("127.0.0.1", dns_server.port), timeout=2.0, **kwargs)  # type: ignore[arg-type]
    return asyncio.run(resolver.resolve(domain))


# --- IMWEB_S2S_PEERS -----------------------------------------------------------------------------------------


def test_peers_setting_maps_domains_to_host_and_port() -> None:
    peers = parse_peers(" prosody.localhost=127.0.0.1:15269 , Example.ORG.=[::1]:5270,,x.test=host.internal:1 ")

    assert peers == {
        "prosody.localhost": ("127.0.0.1", 15269),
        "example.org": ("::1", 5270),
        "x.test": ("host.internal", 1),
    }


def test_empty_peers_setting_is_no_routes() -> None:
    assert parse_peers("") == {}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("prosody.localhost", "expected domain=host:port"),
        ("=127.0.0.1:5269", "expected domain=host:port"),
        ("a.test=127.0.0.1", "no port"),
        ("a.test=127.0.0.1:http", "not a port number"),
        ("a.test=127.0.0.1:0", "not a port number"),
        ("a.test=127.0.0.1:65536", "not a port number"),
        ("a.test=::1:5269", "in brackets"),
        ("a.test=[::1:5269", "without ']'"),
        ("a.test=:5269", "no host"),
        ("a.test=h:1,a.test=h:2", "listed twice"),
    ],
)
def test_bad_peers_setting_says_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="IMWEB_S2S_PEERS") as raised:
        parse_peers(text)
    assert complaint in str(raised.value)


# --- resolution ----------------------------------------------------------------------------------------------


def test_static_route_wins_over_dns_even_for_loopback(dns_server: MiniDNS) -> None:
    dns_server.publish_xmpp_server("static.test", 5999, PUBLIC_V4[0])
    routes = resolve(dns_server, "Static.Test", static={"static.test": ("127.0.0.1", 15269)})

    assert routes == [("127.0.0.1", 15269)]


def test_srv_targets_come_first_by_priority_with_their_ports(dns_server: MiniDNS) -> None:
    dns_server.set(
        "_xmpp-server._tcp.srv.test",
        "SRV",
        "20 0 5270 backup.srv.test.",
        "10 0 5269 primary.srv.test.",
    )
    dns_server.set("primary.srv.test", "A", PUBLIC_V4[0])
    dns_server.set("primary.srv.test", "AAAA", PUBLIC_V6)
    dns_server.set("backup.srv.test", "A", PUBLIC_V4[1])

    routes = resolve(dns_server, "srv.test")

    assert routes == [(PUBLIC_V4[0], 5269), (PUBLIC_V6, 5269), (PUBLIC_V4[1], 5270)]


def test_srv_weights_decide_the_order_within_a_priority(dns_server: MiniDNS) -> None:
    dns_server.set("_xmpp-server._tcp.weights.test", "SRV", "0 1 5269 light.weights.test.", "0 1000 5269 heavy.test.")
    dns_server.set("light.weights.test", "A", PUBLIC_V4[0])
    dns_server.set("heavy.test", "A", PUBLIC_V4[1])

    firsts = [resolve(dns_server, "weights.test", rng=random.Random(seed))[0][0] for seed in range(20)]

    # RFC 2782: a record with 1000x the weight is picked first nearly always (the seeds make this exact).
    assert firsts.count(PUBLIC_V4[1]) >= 18


def test_without_srv_the_domain_itself_is_used_on_port_5269(dns_server: MiniDNS) -> None:
    dns_server.set("plain.test", "A", PUBLIC_V4[2])

    assert resolve(dns_server, "plain.test") == [(PUBLIC_V4[2], 5269)]


def test_srv_target_dot_means_no_xmpp_service(dns_server: MiniDNS) -> None:
    dns_server.set("_xmpp-server._tcp.noxmpp.test", "SRV", "0 0 0 .")
    dns_server.set("noxmpp.test", "A", PUBLIC_V4[0])

    with pytest.raises(ResolutionError, match="does not accept server-to-server"):
        resolve(dns_server, "noxmpp.test")


def test_unknown_domain_has_no_address(dns_server: MiniDNS) -> None:
    with pytest.raises(ResolutionError, match="has no address"):
        resolve(dns_server, "nowhere.test")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1"],
)
def test_dns_pointing_at_non_public_addresses_is_refused(dns_server: MiniDNS, address: str) -> None:
    name = f"internal-{address.replace('.', '-').replace(':', '-')}.test"
    dns_server.set(name, "AAAA" if ":" in address else "A", address)

    with pytest.raises(ResolutionError, match="refusing to connect") as raised:
        resolve(dns_server, name)
    assert "IMWEB_S2S_PEERS" in str(raised.value)


def test_srv_target_on_loopback_is_refused_too(dns_server: MiniDNS) -> None:
    dns_server.publish_xmpp_server("sneaky.test", 22, "127.0.0.1")

    with pytest.raises(ResolutionError, match=r"refusing to connect to sneaky\.test"):
        resolve(dns_server, "sneaky.test")


def test_only_the_public_addresses_of_a_mixed_answer_are_kept(dns_server: MiniDNS) -> None:
    dns_server.set("mixed.test", "A", "10.0.0.7", PUBLIC_V4[0], "127.0.0.1")

    assert resolve(dns_server, "mixed.test") == [(PUBLIC_V4[0], 5269)]


@pytest.mark.parametrize(("domain", "refused"), [("127.0.0.1", True), ("[::1]", True), (PUBLIC_V4[0], False)])
def test_ip_literal_domains_skip_dns_but_not_the_check(dns_server: MiniDNS, domain: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ResolutionError, match="refusing"):
            resolve(dns_server, domain)
    else:
        assert resolve(dns_server, domain) == [(domain, 5269)]


def test_silent_dns_server_is_a_clear_timeout() -> None:
    resolver = Resolver(nameserver=("127.0.0.1", free_port()), timeout=0.5)

    with pytest.raises(ResolutionError, match=r"DNS lookup of _xmpp-server\._tcp\.example\.org"):
        asyncio.run(resolver.resolve("example.org"))


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        (PUBLIC_V6, True),
        ("127.0.0.53", False),
        ("::ffff:127.0.0.1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("224.0.0.251", False),
        ("203.0.113.9", False),  # documentation range (RFC 5737)
        ("255.255.255.255", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public
