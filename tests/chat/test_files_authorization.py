"""Who may open a shared file, by every shape of asking: only its uploader before it is sent, the current members
of its conversation after; everyone else (logged out, a stranger, a former member, a member of another
conversation, a made-up or altered token) gets the same 404, and so does everyone once its message is deleted."""

from __future__ import annotations

import pytest
from django.test import Client

from chat import actions, files
from chat.models import Attachment
from chat.tasks import make_thumbnail
from tests.chat.test_files import FIXED_CLOCK, attach, befriend, picture, post_file, say, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(make_user, settings, monkeypatch):
    """Alice shares a picture in a room with Bob (a member) and Carol (who left); Dave is a stranger and Erin
    talks to Alice elsewhere."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setattr("imweb.ratelimit.clock", lambda: FIXED_CLOCK)
    people = {name: make_user(name) for name in ("alice", "bob", "carol", "dave", "erin")}
    alice = people["alice"]
    for friend in ("bob", "carol", "erin"):
        befriend(alice, people[friend])
    room = actions.create_room(alice, "Photos", members=[people["bob"].jid, people["carol"].jid])
    say(alice, people["erin"].jid, "elsewhere")
    token = post_file(signed_in(alice), "cat.png", picture()).json()["token"]
    message = say(alice, room.pk, "look")
    attachment = attach(token, message)
    make_thumbnail(attachment.pk)
    actions.leave(people["carol"], room.pk)
    return people, Attachment.objects.get(pk=attachment.pk), message


def client_of(people: dict, who: str) -> Client:
    return Client() if who == "logged out" else signed_in(people[who])


URLS = {
    "file": lambda a: files.file_url(a),
    "thumbnail": lambda a: files.thumbnail_url(a),
}


@pytest.mark.parametrize("url", sorted(URLS))
@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 200), ("bob", 200), ("carol", 404), ("dave", 404), ("erin", 404), ("logged out", 404)],
)
def test_only_current_members_open_a_sent_file(room, who, status, url):
    people, attachment, _ = room

    response = client_of(people, who).get(URLS[url](attachment))

    assert response.status_code == status
    if status == 404:
        assert response.content == Client().get("/files/" + "A" * 32 + "/x").content  # the same answer
        assert b"There is no such file" in response.content
        scripted = client_of(people, who).get(URLS[url](attachment), HTTP_ACCEPT="application/json")
        assert (scripted.status_code, scripted.json()) == (404, {"error": "There is no such file."})


def test_a_member_removed_from_the_room_no_longer_opens_its_files(room):
    people, attachment, message = room
    bob = signed_in(people["bob"])
    assert bob.get(files.file_url(attachment)).status_code == 200

    actions.remove_member(people["alice"], message.conversation_id, people["bob"].jid)

    assert bob.get(files.file_url(attachment)).status_code == 404
    assert bob.get(files.thumbnail_url(attachment)).status_code == 404


def _altered(token: str) -> str:
    swap = "B" if token[5] != "B" else "C"
    return token[:5] + swap + token[6:]


@pytest.mark.parametrize(
    "shape",
    ["made up", "one letter changed", "lower-cased", "cut short", "longer", "its database id", "traversal", "unicode"],
)
def test_every_other_shape_of_token_is_not_found(room, shape):
    people, attachment, _ = room
    token = attachment.token
    asked = {
        "made up": "Zz" * 16,
        "one letter changed": _altered(token),
        "lower-cased": token.lower() if token.lower() != token else token.upper(),
        "cut short": token[:-1],
        "longer": token + "A",
        "its database id": str(attachment.pk),
        "traversal": "..%2F..%2Fsettings.py",
        "unicode": token[:-1] + "\u0661",
    }[shape]
    alice = signed_in(people["alice"])

    for path in (f"/files/{asked}/cat.png", f"/files/{asked}/thumb"):
        assert alice.get(path).status_code == 404
    # (a traversal's slashes make it a GET-only file path: 405 there, and nothing removed either way)
    assert alice.post(f"/files/{asked}/remove").status_code in (404, 405)
    assert Attachment.objects.filter(pk=attachment.pk).exists()


def test_an_unsent_upload_is_its_uploaders_alone_until_it_is_sent(room):
    people, _, message = room
    alice, bob = signed_in(people["alice"]), signed_in(people["bob"])
    body = post_file(alice, "draft.txt", b"not sent yet").json()

    before = [alice.get(body["url"]).status_code, bob.get(body["url"]).status_code]
    bob_cancels = bob.post(f"/files/{body['token']}/remove").status_code
    attach(body["token"], say(people["alice"], message.conversation_id, "now"))
    after = [alice.get(body["url"]).status_code, bob.get(body["url"]).status_code]

    assert before == [200, 404]
    assert bob_cancels == 404
    assert after == [200, 200]
    assert [signed_in(people[p]).get(body["url"]).status_code for p in ("carol", "dave", "erin")] == [404] * 3


def test_a_deleted_messages_file_is_gone_for_everyone(room, django_capture_on_commit_callbacks):
    people, attachment, message = room
    name = attachment.file.name
    storage = attachment.file.storage

    with django_capture_on_commit_callbacks(execute=True):
        actions.delete_message(people["alice"], message.conversation_id, message.seq)
        files.remove_for_message(message)  # what delete_message does for a message with files

    for who in ("alice", "bob"):
        client = signed_in(people[who])
        assert client.get(files.file_url(attachment)).status_code == 404
        assert client.get(f"/files/{attachment.token}/thumb").status_code == 404
    assert not storage.exists(name)


def test_a_file_of_a_deleted_message_is_refused_even_while_its_row_remains(room):
    people, attachment, message = room
    message.deleted_at = message.created_at
    message.save(update_fields=["deleted_at"])

    assert signed_in(people["alice"]).get(files.file_url(attachment)).status_code == 404
    assert signed_in(people["bob"]).get(files.thumbnail_url(attachment)).status_code == 404
