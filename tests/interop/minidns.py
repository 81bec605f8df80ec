"""A tiny authoritative DNS server on loopback (UDP and TCP) for the federation tests, built on dnspython.

Prosody resolves s2s peers with libunbound and always connects to port 5269 unless SRV records say otherwise, so
the tests point its `unbound = { forward = ... }` here (docs/federation.md §2) and publish
`_xmpp-server._tcp.<domain> SRV 0 5 <port> <domain>.` plus `<domain> A 127.0.0.1` for each test domain.
Records can be changed while it runs (each test module starts its own servers on free ports). Names it does not
know get NXDOMAIN; known names without the asked type get an empty answer (NODATA).
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 5


class MiniDNS:
    """Serves `records`: {(name, rdtype): [rdata text, ...]}, e.g. {("imweb.localhost", "A"): ["127.0.0.1"]}."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.records: dict[tuple[str, str], list[str]] = {}
        self.queries: list[tuple[str, str]] = []  # what was asked, for assertions and debugging
        self._lock = threading.Lock()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((host, 0))
        self.port = self._udp.getsockname()[1]
        # The same port for TCP, which resolvers fall back to for truncated answers.
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind((host, self.port))
        self._tcp.listen(16)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="minidns", daemon=True)

    # --- records --------------------------------------------------------------------------------------------

    def set(self, name: str, rdtype: str, *values: str) -> None:
        with self._lock:
            self.records[(_key(name), rdtype.upper())] = list(values)

    def publish_xmpp_server(self, domain: str, port: int, address: str = "127.0.0.1") -> None:
        """SRV `_xmpp-server._tcp.DOMAIN` -> DOMAIN:port, and DOMAIN A address (RFC 6120 §3.2.1)."""
        self.set(f"_xmpp-server._tcp.{domain}", "SRV", f"0 5 {port} {domain}.")
        self.set(domain, "A", address)

    # --- serving --------------------------------------------------------------------------------------------

    def start(self) -> MiniDNS:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._udp.close()
        self._tcp.close()

    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001  (garbage gets no answer, as from a real server)
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = _key(question.name.to_text())
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append((name, rdtype))
            known = any(key_name == name for key_name, _ in self.records)
            values = list(self.records.get((name, rdtype), []))
        if not known:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif values:
            response.answer.append(
                dns.rrset.from_text_list(question.name, TTL, dns.rdataclass.IN, question.rdtype, values)
            )
        return response.to_wire()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ, "udp")
            selector.register(self._tcp, selectors.EVENT_READ, "tcp")
            while not self._stopping.is_set():  # bounded by stop(); each turn waits at most 0.1 s
                for key, _ in selector.select(timeout=0.1):
                    if key.data == "udp":
                        wire, address = self._udp.recvfrom(65535)
                        reply = self.answer(wire)
                        if reply is not None:
                            self._udp.sendto(reply, address)
                    else:
                        connection, _ = self._tcp.accept()
                        self._answer_tcp(connection)

    def _answer_tcp(self, connection: socket.socket) -> None:
        # RFC 1035 §4.2.2: each message is preceded by its length in two bytes. One query per connection is all
        # the resolvers here send.
        with connection:
            connection.settimeout(2)
            try:
                length = struct.unpack("!H", _read_exactly(connection, 2))[0]
                reply = self.answer(_read_exactly(connection, length))
                if reply is not None:
                    connection.sendall(struct.pack("!H", len(reply)) + reply)
            except (OSError, struct.error):
                pass


def _read_exactly(connection: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:  # bounded by n and the socket timeout
        chunk = connection.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def _key(name: str) -> str:
    return name.lower().rstrip(".")
