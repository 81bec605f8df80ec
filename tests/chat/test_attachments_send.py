"""Sending files: a message carries the sender's own uploads (with or without words), every participant's screens
get it with its files in the one rendered push, and only the sender's unsent uploads can go; a deleted message
takes its files with it; a message from another server shares files by link."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from django.core.files.base import ContentFile
from django.test import Client

from accounts import actions as account_actions
from chat import actions
from chat.actions.messages import RemoteLink, SendRequest, receive_remote_message, send_messages
from chat.errors import ChatError
from chat.models import Attachment, Message
from tests.api.test_api import Api, api_for
from tests.chat.test_socket import open_socket, receive_until, run, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def upload(user, name: str = "notes.txt", content: bytes = b"plain words\n") -> Attachment:
    """An upload of `user` not sent yet, as chat.files stores one."""
    attachment = Attachment(uploader=user, name=name, content_type="text/plain", size=len(content))
    attachment.file.save(name, ContentFile(content), save=False)
    attachment.save()
    return attachment


@pytest.fixture
def friends(alice, bob):
    account_actions.request_subscription(alice, bob.jid)
    account_actions.accept_subscription(bob, alice.jid)
    return alice, bob


def send(user, to, body, tokens) -> Message:
    result = send_messages([SendRequest(user, to, body, uuid.uuid4(), None, tokens)])[0]
    if isinstance(result, Exception):
        raise result
    return result.message


def test_a_message_of_files_only_reaches_the_other_person_with_its_cards_live(friends, alice, bob):
    first = upload(alice, "plan.txt")
    second = upload(alice, "budget.txt", b"1,2,3\n")
    hello = send(alice, bob.jid, "hello", [])
    cookie = session_cookie(bob)

    async def scenario():
        socket = await open_socket(cookie)
        opening = {"type": "conversation.open", "conversation": hello.conversation_id, "after": hello.seq}
        await socket.send_to(text_data=json.dumps(opening))
        message = await database_sync_to_async(send)(alice, hello.conversation_id, "", [first.token, second.token])
        frame = await receive_until(socket, "message__files")
        assert "plan.txt" in frame and "budget.txt" in frame
        assert f"/files/{first.token}/plan.txt" in frame
        await socket.disconnect()
        return message

    message = asyncio.run(scenario())
    assert message.body == ""
    assert [f.name for f in message.files] == ["plan.txt", "budget.txt"]
    # Bob's page shows them too, after a reload, and the list says what came.
    client = Client()
    client.force_login(bob)
    page = client.get(f"/c/{message.conversation_id}/").content.decode()
    assert f"/files/{second.token}/budget.txt" in page
    assert "📎 Attachment" in page


def test_only_the_sender_s_own_unsent_uploads_can_go(friends, alice, bob):
    theirs = upload(bob, "bob.txt")
    with pytest.raises(ChatError, match="not one of your uploads"):
        send(alice, bob.jid, "look", [theirs.token])
    with pytest.raises(ChatError, match="not one of your uploads"):
        send(alice, bob.jid, "look", ["made-up-token"])
    mine = upload(alice)
    send(alice, bob.jid, "look", [mine.token])
    with pytest.raises(ChatError, match="sent already"):
        send(alice, bob.jid, "again", [mine.token])
    with pytest.raises(ChatError, match="at most 10 files"):
        send(alice, bob.jid, "many", [upload(alice).token for _ in range(11)])
    with pytest.raises(ChatError, match="cannot be empty"):
        send(alice, bob.jid, "  ", [])
    # Nothing refused was stored: one message, with its one file.
    assert [(m.body, len(m.files)) for m in Message.objects.order_by("seq")] == [("look", 1)]


def test_deleting_a_message_removes_its_files_from_storage(friends, alice, bob):
    attachment = upload(alice)
    storage, name = attachment.file.storage, attachment.file.name
    message = send(alice, bob.jid, "", [attachment.token])
    assert storage.exists(name)
    actions.delete_message(alice, message.conversation_id, message.seq)
    assert not Attachment.objects.exists()
    assert not storage.exists(name)


def test_a_message_of_files_may_lose_its_words_in_an_edit_and_one_without_files_may_not(friends, alice, bob):
    with_file = send(alice, bob.jid, "caption", [upload(alice).token])
    actions.edit_message(alice, with_file.conversation_id, with_file.seq, "")
    assert Message.objects.get(pk=with_file.pk).body == ""
    words = send(alice, bob.jid, "words", [])
    with pytest.raises(ChatError, match="cannot be empty"):
        actions.edit_message(alice, words.conversation_id, words.seq, "")


def test_a_remote_message_sharing_links_shows_them_as_files_not_fetched_yet(alice):
    links = [
        RemoteLink("https://upload.example.net/a1/cat.jpg", "cat.jpg"),
        RemoteLink("https://x.example/r.pdf", "r.pdf"),
    ]
    message = receive_remote_message("zed@example.net", alice, "", uuid.uuid4(), links=links)
    files = Message.objects.get(pk=message.pk).files
    assert [(f.name, f.kind, f.remote_url, f.size) for f in files] == [
        ("cat.jpg", "image", "https://upload.example.net/a1/cat.jpg", 0),
        ("r.pdf", "file", "https://x.example/r.pdf", 0),
    ]
    client = Client()
    client.force_login(alice)
    page = client.get(f"/c/{message.conversation_id}/").content.decode()
    assert "attachment--remote" in page and "on upload.example.net" in page


def test_the_api_sends_uploads_and_shows_a_message_s_files(friends, alice, bob):
    attachment = upload(alice, "a.txt")
    api = api_for(alice)
    body = {"to": bob.jid, "body": "", "client_id": str(uuid.uuid4()), "attachments": [attachment.token]}
    response = api.post("/messages", body)
    assert response.status_code == 201, response.content
    files = response.json()["attachments"]
    assert files == [
        {
            "name": "a.txt",
            "kind": "file",
            "content_type": "text/plain",
            "size": 12,
            "url": f"/files/{attachment.token}/a.txt",
            "thumbnail_url": "",
            "remote": False,
        }
    ]
    conversation = response.json()["conversation"]
    listed = api.get(f"/conversations/{conversation}/messages").json()["messages"]
    assert listed[-1]["attachments"] == files


def test_a_socket_send_with_files_is_stored_with_them(friends, alice, bob):
    attachment = upload(alice, "x.txt")
    cookie = session_cookie(alice)

    async def scenario():
        socket = await open_socket(cookie)
        frame = {"type": "message.send", "to": bob.jid, "body": "", "client_id": str(uuid.uuid4())}
        await socket.send_to(text_data=json.dumps({**frame, "attachments": [attachment.token]}))
        await receive_until(socket, "chat-opened")
        await socket.disconnect()

    run(scenario)
    assert Attachment.objects.get(pk=attachment.pk).message.body == ""


def test_an_api_client_uploads_with_its_token_sends_and_opens_the_file(friends, alice, bob):
    from django.core.files.uploadedfile import SimpleUploadedFile

    api, theirs = api_for(alice), api_for(bob)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api.token}"}
    answer = Client().post("/api/v1/files", {"file": SimpleUploadedFile("n.txt", b"api words\n")}, **headers)
    assert answer.status_code == 201, answer.content
    token = answer.json()["token"]
    assert answer.json()["content_type"].startswith("text/plain")
    refused = Client().post("/api/v1/files", {"file": SimpleUploadedFile("p.html", b"<html><script>")}, **headers)
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "file_refused"
    # Only the uploader opens it before it is sent; after, the other participant too; a stranger never.
    assert theirs.get(f"/files/{token}").status_code == 404
    sent = api.post("/messages", {"to": bob.jid, "body": "", "client_id": str(uuid.uuid4()), "attachments": [token]})
    assert sent.status_code == 201
    opened = theirs.get(f"/files/{token}")
    assert opened.status_code == 200 and b"".join(opened.streaming_content) == b"api words\n"
    assert opened["X-Content-Type-Options"] == "nosniff"
    assert Api().get(f"/files/{token}").status_code == 401
