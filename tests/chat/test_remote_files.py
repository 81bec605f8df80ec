"""Files across federation, at the HTTP doors: a link we give another server's people opens the file without a
session and only while it is valid; a link another server gives us is fetched only from a public address, at
most IMWEB_MAX_FILE_BYTES, and only if its content is a file imweb shares.

The fetch tests run a real HTTP server on loopback (http.server in a thread). Loopback is exactly what a fetch
must refuse by default, so the tests that fetch let 127.0.0.1 through with IMWEB_FETCH_ALLOW_NETWORKS, the
setting for tests and private deployments.
"""

from __future__ import annotations

import io
import ipaddress
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image

from chat import actions, files_public, remote_files
from chat.files import FileRefused
from chat.models import Attachment

pytestmark = pytest.mark.django_db

ROMEO = "romeo@example.org"
LOOPBACK = "127.0.0.1/32"


def png_bytes(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(out, format="PNG")
    return out.getvalue()


PNG = png_bytes()


@pytest.fixture
def sent_file(alice, bob):
    """A PNG alice sent bob: a stored attachment of a sent message."""
    attachment = Attachment(uploader=alice, kind="image", name="holiday photo.png")
    attachment.content_type, attachment.size, attachment.width, attachment.height = "image/png", len(PNG), 40, 30
    attachment.file.save(attachment.name, ContentFile(PNG), save=False)
    attachment.save()
    actions.send_message(alice, to=bob.jid, body="look", client_id=uuid.uuid4(), attachments=[attachment.token])
    return Attachment.objects.select_related("message").get(pk=attachment.pk)


def path_of(url: str) -> str:
    return urlsplit(url).path


# --- links for people on other servers ----------------------------------------------------------------------


def test_a_shared_link_opens_the_file_for_anyone_without_a_session(sent_file, settings):
    url = files_public.shared_url(sent_file)

    assert url.startswith(f"{settings.IMWEB_SITE_URL}/files/s/")
    assert url.endswith("/holiday%20photo.png")
    assert str(sent_file.pk) not in path_of(url).split("/")  # no numeric id leaves the server
    response = Client().get(path_of(url))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Cache-Control"] == "private"
    # The recipient's web client runs on their own server's origin, and may show the picture.
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"


def test_a_file_that_is_not_a_picture_is_only_ever_a_download(sent_file):
    sent_file.content_type, sent_file.name = "application/pdf", "résumé.pdf"
    sent_file.save()

    response = Client().get(path_of(files_public.shared_url(sent_file)))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Disposition"].endswith("filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")


def test_a_link_lasts_its_days_and_no_longer(sent_file, settings, monkeypatch):
    settings.IMWEB_SHARED_LINK_DAYS = 7
    path = path_of(files_public.shared_url(sent_file))
    now = time.time()

    monkeypatch.setattr("django.core.signing.time.time", lambda: now + 6.9 * 86400)
    assert Client().get(path).status_code == 200
    monkeypatch.setattr("django.core.signing.time.time", lambda: now + 7.1 * 86400)
    assert Client().get(path).status_code == 404


def test_an_altered_link_opens_nothing(sent_file, alice, bob):
    other = Attachment.objects.create(uploader=alice, message=sent_file.message, name="b.png", content_type="image/png")
    other.file.save("b.png", ContentFile(PNG))
    signed = path_of(files_public.shared_url(sent_file)).split("/")[3]
    token, stamp, signature = signed.split(":")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")

    for altered in (
        f"{token}:{stamp}:{flipped}",  # a changed signature
        f"{other.token}:{stamp}:{signature}",  # another file's token under this signature
        f"{token}:{stamp}",  # no signature
        token,  # the bare token (what a file URL inside imweb carries)
        "x" * 40,
    ):
        assert Client().get(f"/files/s/{altered}/photo.png").status_code == 404, altered
    # A link signed for anything else on the site (another salt) is no link to a file either.
    from django.core import signing

    foreign = signing.TimestampSigner(salt="something.else").sign(sent_file.token)
    assert Client().get(f"/files/s/{foreign}/photo.png").status_code == 404


def test_a_deleted_message_and_an_unsent_upload_have_no_shared_link(sent_file, alice):
    path = path_of(files_public.shared_url(sent_file))
    unsent = Attachment.objects.create(uploader=alice, name="draft.png", content_type="image/png")
    unsent.file.save("draft.png", ContentFile(PNG))

    assert Client().get(path_of(files_public.shared_url(unsent))).status_code == 404
    sent_file.message.deleted_at = sent_file.message.created_at
    sent_file.message.save(update_fields=["deleted_at"])
    assert Client().get(path).status_code == 404


def test_shared_files_lists_each_file_of_a_message_with_its_name(sent_file):
    [(url, name)] = files_public.shared_files(sent_file.message)

    assert name == "holiday photo.png"
    assert Client().get(path_of(url)).status_code == 200


# --- fetching what other servers share ----------------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True  # send Content-Length (else the body ends when the connection closes)


@dataclass
class FileServer:
    base: str
    routes: dict[str, Route]
    hits: list[str]

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    routes: dict[str, Route] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            route = routes.get(self.path, Route(404, b"no"))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.length:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FileServer(f"http://127.0.0.1:{server.server_address[1]}", routes, hits)
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def remote_file(alice):
    """Make an attachment that romeo (on another server) shared with alice by link, not fetched yet."""
    message = actions.receive_remote_message(ROMEO, alice, "a file for you", uuid.uuid4())

    def make(url: str, name: str = "photo.png") -> Attachment:
        return Attachment.objects.create(message=message, remote_url=url, name=name, kind="image")

    return make


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
        "2001:db8::1",
    ],
)
def test_no_private_or_special_address_is_public(address):
    assert not remote_files.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are(address):
    assert remote_files.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "10.0.0.7", "169.254.169.254", "[::ffff:7f00:1]"])
def test_by_default_a_link_to_this_machine_or_a_private_network_is_refused_without_connecting(
    remote_file, file_server, host
):
    port = urlsplit(file_server.base).port
    attachment = remote_file(f"http://{host}:{port}/photo.png")
    file_server.routes["/photo.png"] = Route(body=PNG)

    with pytest.raises(FileRefused) as refused:
        remote_files.ensure_fetched(attachment)

    assert "private network address" in str(refused.value)
    assert refused.value.status == 403
    assert file_server.hits == []
    attachment.refresh_from_db()
    assert not attachment.file and attachment.size == 0


def test_an_allowed_network_is_fetched_once_and_stored_as_checked(remote_file, file_server, settings):
    settings.IMWEB_FETCH_ALLOW_NETWORKS = LOOPBACK
    file_server.routes["/up/IMG_1.png"] = Route(body=PNG, headers={"Content-Type": "text/html"})  # never trusted
    attachment = remote_file(file_server.url("/up/IMG_1.png"), "IMG_1.png")

    fetched = remote_files.ensure_fetched(attachment)
    again = remote_files.ensure_fetched(Attachment.objects.get(pk=attachment.pk))

    assert fetched.file.read() == PNG
    assert (fetched.size, fetched.content_type, fetched.kind) == (len(PNG), "image/png", "image")
    assert (fetched.width, fetched.height) == (40, 30)
    assert again.file.name == fetched.file.name
    assert file_server.hits == ["/up/IMG_1.png"]


def test_opening_a_remote_file_fetches_it_for_a_participant_only(remote_file, file_server, settings, alice, bob):
    settings.IMWEB_FETCH_ALLOW_NETWORKS = LOOPBACK
    file_server.routes["/a.png"] = Route(body=PNG)
    attachment = remote_file(file_server.url("/a.png"), "a.png")
    path = f"/files/{attachment.token}/a.png"
    outsider, participant = Client(), Client()
    outsider.force_login(bob)
    participant.force_login(alice)

    assert outsider.get(path).status_code == 404
    assert file_server.hits == []  # nobody allowed opened it: nothing fetched
    response = participant.get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert file_server.hits == ["/a.png"]


def test_a_redirect_is_followed_only_to_an_allowed_address(remote_file, file_server, settings):
    settings.IMWEB_FETCH_ALLOW_NETWORKS = LOOPBACK
    file_server.routes["/moved.png"] = Route(302, headers={"Location": "/final.png"})
    file_server.routes["/final.png"] = Route(body=PNG)
    file_server.routes["/inward.png"] = Route(302, headers={"Location": "http://10.0.0.5/secret.png"})
    file_server.routes["/sideways.png"] = Route(307, headers={"Location": "http://127.0.0.2/secret.png"})

    assert remote_files.ensure_fetched(remote_file(file_server.url("/moved.png"))).file.read() == PNG
    for path in ("/inward.png", "/sideways.png"):
        with pytest.raises(FileRefused, match="private network address"):
            remote_files.ensure_fetched(remote_file(file_server.url(path)))
    assert file_server.hits == ["/moved.png", "/final.png", "/inward.png", "/sideways.png"]


def test_redirects_end_after_three(remote_file, file_server, settings):
    settings.IMWEB_FETCH_ALLOW_NETWORKS = LOOPBACK
    for n in range(5):
        file_server.routes[f"/r{n}"] = Route(301, headers={"Location": f"/r{n + 1}"})

    with pytest.raises(FileRefused, match="redirected more than 3 times"):
        remote_files.ensure_fetched(remote_file(file_server.url("/r0")))
    assert file_server.hits == ["/r0", "/r1", "/r2", "/r3"]


@pytest.mark.parametrize("length", [True, False])
def test_a_file_over_the_size_limit_is_refused(remote_file, file_server, settings, length):
    settings.IMWEB_FETCH_ALLOW_NETWORKS = LOOPBACK
    settings.IMWEB_MAX_FILE_BYTES = 2048
    file_server.routes["/big.png"] = Route(body=png_bytes((400, 400)) + b"\0" * 4096, length=length)
    attachment = remote_file(file_server.url("/big.png"))

    with pytest.raises(FileRefused) as refused:
        remote_files.ensure_fetched(attachment)

    assert refused.value.status == 413
    assert "2 KB" in str(refused.value)
    attachment.refresh_from_db()
    assert not attachment.file


@pytest.mark.parametrize(
    ("body", "name", "words"),
    [
        (b"<!doctype html><script>alert(1)</script>", "photo.png", "not a picture"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "cat.svg", "SVG"),
        (b"MZ\x90\x00" + b"\x00" * 200, "setup.exe", "program"),
    ],
)
def test_content_imweb_does_not_share_is_refused_whatever_the_name(
    remote_file, file_server, settings, body, name, words
):
    settings.IMWEB_FETCH_ALLOW_NETWORKS = LOOPBACK
    file_server.routes["/f"] = Route(body=body, headers={"Content-Type": "image/png"})
    attachment = remote_file(file_server.url("/f"), name)

    with pytest.raises(FileRefused, match=words):
        remote_files.ensure_fetched(attachment)

    attachment.refresh_from_db()
    assert not attachment.file


def test_the_other_servers_failure_is_said_plainly(remote_file, file_server, settings):
    settings.IMWEB_FETCH_ALLOW_NETWORKS = LOOPBACK

    with pytest.raises(FileRefused, match=r"would not send the file \(it answered 404\)") as refused:
        remote_files.ensure_fetched(remote_file(file_server.url("/gone.png")))
    assert refused.value.status == 502


@pytest.mark.parametrize(
    "url", ["ftp://example.org/a.png", "file:///etc/passwd", "javascript:alert(1)", "gopher://example.org/"]
)
def test_only_web_addresses_are_fetched(remote_file, url):
    with pytest.raises(FileRefused, match="not a web address"):
        remote_files.ensure_fetched(remote_file(url))


def test_the_allow_list_is_empty_unless_configured(settings):
    assert remote_files.allowed_networks() == []
    settings.IMWEB_FETCH_ALLOW_NETWORKS = "10.0.0.0/8, 127.0.0.1/32"
    assert remote_files.is_public(ipaddress.ip_address("10.9.9.9"))
    assert not remote_files.is_public(ipaddress.ip_address("127.0.0.2"))


def test_a_name_in_the_link_cannot_reach_outside_the_files_folder(sent_file):
    name = quote("../../../etc/passwd", safe="")

    response = Client().get(path_of(files_public.shared_url(sent_file)).rsplit("/", 1)[0] + "/" + name)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG  # the token decides; the name is only for people
