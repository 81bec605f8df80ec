"""Who a request comes from: our own reverse proxies may say (X-Forwarded-For / -Proto); anybody else may not,
so no client picks the address that per-IP limits count, or claims HTTPS."""

from __future__ import annotations

import pytest

from imweb.proxy import client_scope, parse_networks, same_origin

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8"])


def scope(peer: str, *headers: tuple[bytes, bytes], kind: str = "http", scheme: str = "http") -> dict:
    return {"type": kind, "scheme": scheme, "client": (peer, 5555), "headers": list(headers)}


def test_a_client_cannot_choose_its_own_address_or_scheme():
    forged = scope("203.0.113.9", (b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https"))
    assert client_scope(forged, PROXIES) == forged
    assert client_scope(forged, []) == forged  # nothing is believed when no proxy is configured


def test_a_trusted_proxy_names_the_client_and_the_scheme():
    seen = client_scope(
        scope("127.0.0.1", (b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")), PROXIES
    )
    assert seen["client"] == ("198.51.100.1", 0) and seen["scheme"] == "https"
    socket = client_scope(scope("10.1.2.3", (b"x-forwarded-proto", b"https"), kind="websocket", scheme="ws"), PROXIES)
    assert socket["scheme"] == "wss"


def test_in_a_chain_the_client_is_the_rightmost_address_that_is_not_one_of_our_proxies():
    # The client sent its own X-Forwarded-For ("1.2.3.4"); our edge proxy appended what it saw, then an inner one.
    chain = scope("127.0.0.1", (b"x-forwarded-for", b"1.2.3.4, 198.51.100.7, 10.0.0.2"))
    assert client_scope(chain, PROXIES)["client"] == ("198.51.100.7", 0)


def test_a_bad_proxy_setting_is_named():
    with pytest.raises(ValueError, match="'nonsense' is not an IP"):
        parse_networks(["10.0.0.1", "nonsense"])


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        (b"http://chat.example.org", b"chat.example.org", "ws", True),
        (b"https://chat.example.org", b"chat.example.org", "wss", True),
        (b"https://chat.example.org:443", b"chat.example.org", "wss", True),
        (b"http://chat.example.org:8000", b"chat.example.org:8000", "ws", True),
        (b"http://chat.example.org:1", b"chat.example.org:8000", "ws", False),
        (b"http://chat.example.org", b"chat.example.org", "wss", False),
        (b"https://other.example", b"chat.example.org", "wss", False),
        (b"http://chat.example.org", b"evil.example", "ws", False),
        (b"null", b"chat.example.org", "ws", False),
    ],
)
def test_a_browser_socket_must_come_from_a_page_of_the_same_origin(origin, host, scheme, allowed):
    request = scope("198.51.100.1", (b"origin", origin), (b"host", host), kind="websocket", scheme=scheme)
    assert same_origin(request, ["chat.example.org"], []) is allowed


def test_csrf_trusted_origins_are_accepted_too():
    request = scope(
        "198.51.100.1", (b"origin", b"https://app.example.org"), (b"host", b"chat.example.org"), kind="websocket"
    )
    assert same_origin(request, ["chat.example.org"], ["https://app.example.org"])
