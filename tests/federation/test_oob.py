"""Files across federation, as stanzas: what we send (XEP-0066 <x> per file, the URL in the body for clients
that show only bodies) and what we make of what arrives (oob URLs and XEP-0363 upload bodies become links,
anything we would not fetch is dropped, names are only names)."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from lxml import etree

from chat import actions as chat_actions
from chat.actions.messages import SendRequest, Sent
from chat.models import Attachment, Message
from federation import handlers, oob, stanzas
from federation.models import OutboxItem
from federation.serialize import as_server_stanza, to_xml

SERVER = "jabber:server"
OOB = "jabber:x:oob"
URL = "https://upload.example.org/b7c1/IMG_2031.jpg"


def received(xml: str) -> etree._Element:
    return etree.fromstring(f"<message xmlns='{SERVER}' from='romeo@example.org/phone' to='me@imweb'>{xml}</message>")


def oob_x(url: str, desc: str | None = None) -> str:
    return f"<x xmlns='{OOB}'><url>{url}</url>" + (f"<desc>{desc}</desc>" if desc is not None else "") + "</x>"


# --- what we send ---------------------------------------------------------------------------------------------


def test_one_file_without_text_goes_as_the_url_alone_with_one_oob_element():
    url = "https://imweb.example/files/s/abc:1:sig/photo.png"

    stanza = stanzas.chat_message("bob@imweb/web", "alice@example.org", "", "m1", [(url, "photo.png")])

    assert stanzas.body(stanza) == url
    [x] = stanza.findall(f"{{{OOB}}}x")
    assert x.findtext(f"{{{OOB}}}url") == url
    assert x.findtext(f"{{{OOB}}}desc") == "photo.png"
    # On the wire the oob payload declares its own namespace and the body inherits jabber:server.
    wire = to_xml(as_server_stanza(stanza)).decode()
    assert f'<x xmlns="{OOB}"><url>{url}</url><desc>photo.png</desc></x>' in wire.replace("'", '"')
    assert f"<body>{url}</body>" in wire


def test_text_with_files_puts_each_url_on_its_own_line_after_the_text():
    files = [("https://i.example/s/1/a.pdf", "a.pdf"), ("https://i.example/s/2/b.png", "b.png")]

    stanza = stanzas.chat_message("bob@imweb/web", "alice@example.org", "the report", "m2", files)

    assert stanzas.body(stanza) == "the report\nhttps://i.example/s/1/a.pdf\nhttps://i.example/s/2/b.png"
    assert [x.findtext(f"{{{OOB}}}url") for x in stanza.findall(f"{{{OOB}}}x")] == [url for url, _ in files]


def test_a_message_without_files_is_unchanged():
    stanza = stanzas.chat_message("bob@imweb/web", "alice@example.org", "hi", "m3")

    assert stanzas.body(stanza) == "hi"
    assert stanza.find(f"{{{OOB}}}x") is None


# --- what arrives ------------------------------------------------------------------------------------------


def test_an_oob_url_becomes_a_link_named_after_its_last_segment_and_the_body_url_is_not_shown_twice():
    stanza = received(f"<body>{URL}</body>{oob_x(URL)}")

    links = oob.links_of(stanza, stanzas.body(stanza))

    assert links == [oob.OobLink(URL, "IMG_2031.jpg")]
    assert oob.text_without_links(stanzas.body(stanza), links) == ""


def test_text_around_the_urls_is_kept():
    other = "https://files.example.org/x/notes.pdf"
    stanza = received(f"<body>look at these\n{URL}\n{other}</body>{oob_x(URL)}{oob_x(other)}")

    links = oob.links_of(stanza, stanzas.body(stanza))

    assert [link.name for link in links] == ["IMG_2031.jpg", "notes.pdf"]
    assert oob.text_without_links(stanzas.body(stanza), links) == "look at these"


def test_a_body_that_is_one_upload_url_is_a_link_as_xep_0363_clients_send_it():
    stanza = received(f"<body>{URL}</body>")

    assert oob.links_of(stanza, stanzas.body(stanza)) == [oob.OobLink(URL, "IMG_2031.jpg")]


@pytest.mark.parametrize(
    "body",
    [
        "https://example.org/",  # no file name
        "https://example.org/page",  # no extension: a page, not an upload
        "http://upload.example.org/a/IMG.jpg",  # uploads are https
        f"see {URL}",  # text with a link in it is a message, not a file
        f"{URL}\n{URL}",
    ],
)
def test_a_body_that_is_not_just_an_upload_url_stays_text(body):
    assert oob.links_of(received(f"<body>{body}</body>"), body) == []


def test_the_name_comes_from_the_desc_when_the_url_has_none():
    stanza = received(oob_x("https://example.org/", "holiday.png"))

    assert oob.links_of(stanza) == [oob.OobLink("https://example.org/", "holiday.png")]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "file:///etc/passwd",
        "ftp://example.org/a.png",
        "gopher://example.org/a.png",
        "xmpp:romeo@example.org",
        "//example.org/a.png",  # no scheme
        "https:///a.png",  # no host
        "https://user:secret@example.org/a.png",  # credentials
        "https://example.org:99999/a.png",  # no such port
        "https://exa mple.org/a.png",
        "https://example.org/a\x01.png",
        "https://example.org/" + "a" * 2000 + ".png",  # longer than any stored URL
        "",
    ],
)
def test_urls_we_would_never_fetch_are_dropped(url):
    stanza = received("")
    x = etree.SubElement(stanza, f"{{{OOB}}}x")
    etree.SubElement(x, f"{{{OOB}}}url").text = url.replace("\x01", " ")  # XML cannot carry \x01

    assert oob.safe_url(url) is None
    assert oob.links_of(stanza, url) == []


def test_a_flood_of_urls_keeps_the_first_ten_and_each_url_once():
    urls = [f"https://example.org/{n}.png" for n in range(50)]
    stanza = received(oob_x(urls[0]) + "".join(oob_x(url) for url in urls))

    links = oob.links_of(stanza)

    assert [link.url for link in links] == urls[: oob.MAX_LINKS]


@pytest.mark.parametrize(
    ("url", "desc", "name"),
    [
        ("https://example.org/a/..%2F..%2Fetc%2Fpasswd", None, "passwd"),
        ("https://example.org/a/..%5C..%5Cwindows%5Cwin.ini", None, "win.ini"),
        ("https://example.org/%2E%2E", "../../../.bashrc", "bashrc"),
        ("https://example.org/", "\u202egnp.exe", "gnp.exe"),  # no bidi override tricks
        ("https://example.org/", "a\x00b.png", "ab.png"),
        ("https://example.org/", None, "file"),
        ("https://example.org/" + "n" * 400 + ".png", None, "n" * 251 + ".png"),
    ],
)
def test_names_are_plain_file_names(url, desc, name):
    assert oob.name_for(url, desc) == name


def test_oob_elements_in_another_namespace_or_without_a_url_are_ignored():
    stanza = received(
        "<x xmlns='jabber:iq:oob'><url>https://example.org/a.png</url></x>"
        f"<x xmlns='{OOB}'><desc>no url</desc></x>"
        f"<x xmlns='{OOB}'><url></url></x>"
    )

    assert oob.links_of(stanza) == []


# --- the whole way: a stanza in, attachments stored; a message with files out, links in the outbox ----------

REMOTE = "prosody.localhost"
ROMEO = f"romeo@{REMOTE}"


def inbound(xml: str) -> None:
    handlers.process(REMOTE, etree.fromstring(f"<stream xmlns='{SERVER}'>{xml}</stream>")[0])


@pytest.mark.django_db
def test_a_file_from_another_server_is_stored_as_a_remote_attachment_of_the_message(make_user):
    me = make_user("alice")

    inbound(
        f"<message from='{ROMEO}/phone' to='{me.jid}' type='chat' id='f1'><body>for you\n{URL}</body>"
        f"{oob_x(URL)}{oob_x('javascript:alert(1)')}</message>"
    )

    message = Message.objects.get(sender_jid=ROMEO)
    assert message.body == "for you"
    [attachment] = Attachment.objects.filter(message=message)
    assert (attachment.remote_url, attachment.name, attachment.kind) == (URL, "IMG_2031.jpg", "image")
    assert attachment.size == 0 and not attachment.file  # fetched only when someone opens it


@pytest.mark.django_db
def test_an_upload_url_alone_is_a_message_with_just_the_file(make_user):
    me = make_user("alice")
    pdf = "https://upload.example.org/x/minutes.pdf"

    inbound(f"<message from='{ROMEO}/phone' to='{me.jid}' type='chat' id='f2'><body>{pdf}</body></message>")

    message = Message.objects.get(sender_jid=ROMEO)
    assert message.body == ""
    assert list(Attachment.objects.filter(message=message).values_list("remote_url", "name", "kind")) == [
        (pdf, "minutes.pdf", "file")
    ]


@pytest.mark.django_db
def test_an_empty_message_with_only_a_refused_link_is_still_refused(make_user):
    me = make_user("alice")

    inbound(f"<message from='{ROMEO}/phone' to='{me.jid}' type='chat' id='f3'><body/>{oob_x('data:,x')}</message>")

    assert not Message.objects.filter(sender_jid=ROMEO).exists()
    [error] = OutboxItem.objects.filter(stanza__contains="not-acceptable")
    assert "f3" in error.stanza


@pytest.mark.django_db
def test_a_sent_file_leaves_as_an_oob_link_that_opens_the_same_bytes(make_user):
    alice = make_user("alice")
    data = b"%PDF-1.4\n% minutes of the meeting\n"
    upload = Attachment(uploader=alice, name="minutes.pdf", content_type="application/pdf", size=len(data))
    upload.file.save(upload.name, ContentFile(data), save=False)
    upload.save()

    [sent] = chat_actions.send_messages([SendRequest(alice, ROMEO, "", uuid.uuid4(), attachments=[upload.token])])

    assert isinstance(sent, Sent), sent
    [row] = OutboxItem.objects.filter(recipient=ROMEO, kind="message")
    wire = etree.fromstring(f"<stream xmlns='{SERVER}'>{row.stanza}</stream>")[0]  # as the peer parses it
    [url] = [x.findtext(f"{{{OOB}}}url") for x in wire.findall(f"{{{OOB}}}x")]
    assert stanzas.body(wire) == url  # one file, no text: the URL alone, as XMPP clients show files inline
    response = Client().get(urlsplit(url).path)  # no session: the link is the permission
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
