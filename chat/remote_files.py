"""Files shared from other servers by link, fetched the first time someone here opens one.

A link from another server is untrusted: it could point at this server's own network (a database, a cloud
metadata address) and make us a proxy into it. So `ensure_fetched` resolves the host itself and connects only
to a public address (`ipaddress.is_global`, and none of private, loopback, link-local, multicast, reserved),
pinning the connection to the address it checked (no second lookup that could answer differently), and does the
same for each redirect (at most MAX_REDIRECTS). Only http and https, at most IMWEB_MAX_FILE_BYTES, FETCH_TIMEOUT
seconds in all, and the type is found from the content, as for uploads (chat.files). Every refusal is a
FileRefused whose message says why in words the person who clicked understands.

IMWEB_FETCH_ALLOW_NETWORKS (comma-separated CIDRs, default empty) lets extra networks through: for tests and
private deployments whose XMPP peers share files from a private network.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import time
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from chat import files
from chat.files import FileRefused
from chat.models import Attachment

MAX_REDIRECTS = 3
FETCH_TIMEOUT = 10.0  # seconds for the whole fetch: connecting, redirects and the body
CHUNK = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The extra networks IMWEB_FETCH_ALLOW_NETWORKS lets through (none by default)."""
    configured = getattr(settings, "IMWEB_FETCH_ALLOW_NETWORKS", None)
    if configured is None:
        configured = os.environ.get("IMWEB_FETCH_ALLOW_NETWORKS", "")
    if isinstance(configured, str):
        configured = configured.split(",")
    return [ipaddress.ip_network(item.strip(), strict=False) for item in configured if item.strip()]


def is_public(address: Address) -> bool:
    """Whether `address` is one we may connect to on behalf of a link from another server."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        elif address.sixtofour is not None and not is_public(address.sixtofour):
            return False  # 2002:7f00:1:: tunnels to 127.0.0.1
        elif address.teredo is not None and not all(is_public(inner) for inner in address.teredo):
            return False
    if any(address in network for network in allowed_networks()):
        return True
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _public_address(host: str, port: int) -> Address:
    """The address to connect to for `host`: every address it resolves to must be public (a name that also
    points inward is refused, so which one a connection would use does not matter)."""
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise FileRefused(f"The file's server {host} could not be found.", status=502) from None
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in found]
    if not addresses:
        raise FileRefused(f"The file's server {host} could not be found.", status=502)
    for address in addresses:
        if not is_public(address):
            raise FileRefused(
                f"The file is on {host}, a private network address; imweb only fetches files from public servers.",
                status=403,
            )
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to `address` for the host named in the URL (its Host header)."""

    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to `address`, its certificate checked for the host named in the URL."""

    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((str(self.address), self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch(url: str) -> tuple[bytes, str]:
    """The bytes at `url` and the URL they came from (after redirects), under every rule above."""
    limit = settings.IMWEB_MAX_FILE_BYTES
    deadline = time.monotonic() + FETCH_TIMEOUT
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise FileRefused("The file's link is not a web address imweb can open.", status=403)
        host = parts.hostname
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise FileRefused("The file's link is not a web address imweb can open.", status=403) from None
        address = _public_address(host, port)
        kind = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
        connection = kind(host, port, address, max(0.1, deadline - time.monotonic()))
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request(
                "GET", target, headers={"User-Agent": "imweb", "Accept": "*/*", "Accept-Encoding": "identity"}
            )
            response = connection.getresponse()
            if response.status in REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FileRefused(f"{host} sent the file elsewhere without saying where.", status=502)
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise FileRefused(f"{host} would not send the file (it answered {response.status}).", status=502)
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise FileRefused(
                    f"The file is {files.size_label(int(length))}; files can be up to {files.size_label(limit)}.",
                    status=413,
                )
            chunks: list[bytes] = []
            received = 0
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > limit:
                    raise FileRefused(
                        f"The file is larger than {files.size_label(limit)}, the most imweb takes.", status=413
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunks.append(chunk)
            return b"".join(chunks), url
        except TimeoutError:
            raise FileRefused(f"{host} did not send the file within {FETCH_TIMEOUT:.0f} seconds.", status=502) from None
        except ssl.SSLError:
            raise FileRefused(f"{host} has no valid certificate for a secure connection.", status=502) from None
        except (OSError, http.client.HTTPException):
            raise FileRefused(f"{host} could not be reached to fetch the file.", status=502) from None
        finally:
            connection.close()
    raise FileRefused(f"The file's link was redirected more than {MAX_REDIRECTS} times.", status=502)


def ensure_fetched(attachment: Attachment) -> Attachment:
    """The attachment with its file stored: a remote one not fetched yet is fetched now (once; a second caller
    finds it stored) and checked by its content like an upload. Raises FileRefused, saying why."""
    if attachment.file or not attachment.is_remote:
        return attachment
    data, _final_url = fetch(attachment.remote_url)
    if not data:
        raise FileRefused("The file's server sent an empty file.", status=502)
    found = files.identify(attachment.name, ContentFile(data))
    if found.data is not None:
        data = found.data  # a picture re-saved without its location
    with transaction.atomic():
        current = Attachment.objects.select_for_update().get(pk=attachment.pk)
        if current.file:
            return current  # fetched meanwhile by another request
        current.file.save(attachment.name, ContentFile(data), save=False)
        current.size = len(data)
        current.content_type = found.content_type
        current.kind = found.kind
        current.width = found.width
        current.height = found.height
        try:
            current.save(update_fields=["file", "size", "content_type", "kind", "width", "height"])
        except BaseException:
            current.file.storage.delete(current.file.name)
            raise
        if current.is_image:
            transaction.on_commit(lambda: files.schedule_thumbnail(current.pk))
    return current
