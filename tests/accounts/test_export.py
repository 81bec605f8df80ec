"""Export of a person's data: a zip of JSON plus their files, prepared in the background, downloaded by its owner
only, for a limited time. The archive holds exactly the person's data: their profile, contacts and blocks, the
conversations they are or were in with what they could see there, and the files they uploaded; nothing of
anyone else beyond what those conversations showed them."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import Client
from django.utils import timezone

from accounts import actions as accounts
from accounts import export
from accounts.models import DataExport
from chat import actions
from chat.models import Attachment, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


@pytest.fixture
def dave(make_user):
    return make_user("dave", display_name="Dave")


@pytest.fixture
def started(monkeypatch) -> list[int]:
    """The exports handed to Celery (recorded instead of queued; tests run `export.build` themselves)."""
    pks: list[int] = []
    monkeypatch.setattr(export, "_start", pks.append)
    return pks


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def send(user, to, body: str, **extra) -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4(), **extra)


def upload(user, message: Message | None, name: str, data: bytes) -> Attachment:
    attachment = Attachment(uploader=user, message=message, kind="file", name=name, content_type="text/plain")
    attachment.size = len(data)
    attachment.file.save(name, ContentFile(data), save=False)
    attachment.save()
    return attachment


def archive_of(user, django_capture_on_commit_callbacks, started) -> zipfile.ZipFile:
    with django_capture_on_commit_callbacks(execute=True):
        asked = export.request_export(user)
    assert started == [asked.pk]
    done = export.build(asked.pk)
    assert done.state == DataExport.State.READY and done.progress == 100
    with done.file.open("rb") as handle:
        return zipfile.ZipFile(io.BytesIO(handle.read()))


def read(archive: zipfile.ZipFile, name: str) -> dict:
    return json.loads(archive.read(name))


def everything(archive: zipfile.ZipFile) -> str:
    return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())


def test_the_export_holds_exactly_the_persons_data_and_nobody_elses(
    alice, bob, carol, dave, started, django_capture_on_commit_callbacks
):
    befriend(alice, bob)
    befriend(bob, carol)
    befriend(carol, dave)
    accounts.rename_contact(alice, bob.jid, "Bobby")
    accounts.set_contact_groups(alice, bob.jid, ["Friends", "Work"])
    accounts.block_jid(alice, "spam.example")
    room = actions.create_room(alice, "Plans", topic="Saturday", members=[bob.jid])
    hello = send(alice, bob.jid, "hello bob")
    mine = upload(alice, hello, "notes.txt", b"alice's own notes")
    theirs = upload(bob, send(bob, hello.conversation_id, "here is mine"), "bob.txt", b"bob's file")
    send(bob, room.pk, "see you in the room")
    # Conversations Alice is not in, and files that are not hers.
    secret = send(bob, carol.jid, "a secret between bob and carol")
    upload(carol, secret, "carol.txt", b"carol's file")
    actions.create_room(carol, "Carol's room", members=[dave.jid])
    send(dave, carol.jid, "dave to carol")

    archive = archive_of(alice, django_capture_on_commit_callbacks, started)

    names = set(archive.namelist())
    assert names == {
        "README.txt",
        "profile.json",
        "contacts.json",
        "conversations/1.json",
        "conversations/2.json",
        "files/001-notes.txt",
    }
    assert archive.read("files/001-notes.txt") == b"alice's own notes"
    profile = read(archive, "profile.json")
    assert profile["jid"] == alice.jid and profile["email"] == "alice@example.org" and profile["name"] == "Alice"
    assert profile["two_factor"] is False and profile["avatar"] is None
    contacts = read(archive, "contacts.json")
    assert [(c["jid"], c["name"], c["groups"], c["subscription"]) for c in contacts["contacts"]] == [
        (bob.jid, "Bobby", ["Friends", "Work"], "both")
    ]
    assert [b["jid"] for b in contacts["blocked"]] == ["spam.example"]
    conversations = [read(archive, f"conversations/{n}.json") for n in (1, 2)]
    kinds = {c["kind"]: c for c in conversations}
    assert kinds["room"]["name"] == "Plans" and kinds["room"]["topic"] == "Saturday"
    assert [m["body"] for m in kinds["room"]["messages"] if m["kind"] == "message"] == ["see you in the room"]
    direct = kinds["direct"]
    assert direct["title"] == "Bob"
    assert sorted((p["jid"], p["name"]) for p in direct["participants"]) == [(alice.jid, "Alice"), (bob.jid, "Bob")]
    by_seq = {m["seq"]: m for m in direct["messages"]}
    assert by_seq[1]["attachments"] == [
        {
            "name": "notes.txt",
            "kind": "file",
            "content_type": "text/plain",
            "size": 17,
            "file": "files/001-notes.txt",
            "link": None,
        }
    ]
    # Bob's file is listed by name where Alice saw it, but it is his: not in her archive.
    assert by_seq[2]["attachments"][0]["name"] == "bob.txt" and by_seq[2]["attachments"][0]["file"] is None
    text = everything(archive)
    for foreign in ("bob@example.org", "carol@example.org", "dave@example.org", "a secret", "dave to carol",
                    "carol.txt", "Carol's room", "bob's file", carol.jid, dave.jid):  # fmt: skip
        assert foreign not in text
    assert mine.token not in text and theirs.token not in text  # no storage names or URLs of files


def test_messages_keep_edits_deletions_replies_and_reactions(alice, bob, started, django_capture_on_commit_callbacks):
    befriend(alice, bob)
    first = send(alice, bob.jid, "first")
    conversation = first.conversation_id
    send(bob, conversation, "a reply", reply_to_seq=1)
    actions.edit_message(alice, conversation, 1, "first, edited")
    actions.react(bob, conversation, 1, "👍")
    send(alice, conversation, "oops")
    actions.delete_message(alice, conversation, 3)

    messages = read(archive_of(alice, django_capture_on_commit_callbacks, started), "conversations/1.json")["messages"]

    one, two, three = messages
    assert one["body"] == "first, edited" and one["edited"] is not None and one["sender"] == alice.jid
    assert one["reactions"] == [{"emoji": "👍", "by": [bob.jid]}]
    assert two["reply_to"] == 1 and two["sender_name"] == "Bob"
    assert three["deleted"] is True and three["body"] == ""


def test_a_room_left_keeps_what_was_sent_until_leaving(alice, bob, carol, started, django_capture_on_commit_callbacks):
    befriend(alice, bob)
    befriend(alice, carol)
    room = actions.create_room(alice, "Plans", members=[bob.jid])
    send(alice, room.pk, "before bob left")
    actions.leave(bob, room.pk)
    send(alice, room.pk, "after bob left")
    actions.invite(alice, room.pk, carol.jid)

    room_file = read(archive_of(bob, django_capture_on_commit_callbacks, started), "conversations/1.json")

    bodies = [m["body"] for m in room_file["messages"] if m["kind"] == "message"]
    assert bodies == ["before bob left"]
    assert room_file["you"]["left"] is not None
    assert carol.jid not in json.dumps(room_file)  # invited after he left: he never saw her there


def test_asking_twice_starts_one_export_and_again_only_after_the_interval(alice, started, settings):
    settings.IMWEB_EXPORT_INTERVAL_SECONDS = 3600
    first = export.request_export(alice)
    assert export.request_export(alice).pk == first.pk  # still being prepared: the same one
    export.build(first.pk)
    with pytest.raises(export.ExportRefused, match="one export every hour; try again in 1 hour"):
        export.request_export(alice)
    later = export.request_export(alice, now=timezone.now() + timedelta(hours=1, seconds=1))
    assert later.pk != first.pk
    assert DataExport.objects.filter(user=alice).count() == 2


def test_the_email_says_it_is_ready_with_the_link(alice, started, django_capture_on_commit_callbacks, settings):
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    archive_of(alice, django_capture_on_commit_callbacks, started)
    (email,) = mail.outbox
    assert email.to == ["alice@example.org"]
    assert "Your imweb data is ready" in email.subject
    assert f"{settings.IMWEB_SITE_URL}/accounts/data/" in email.body


def test_no_email_to_an_address_nobody_confirmed(alice, started, django_capture_on_commit_callbacks):
    archive_of(alice, django_capture_on_commit_callbacks, started)
    assert mail.outbox == []


def test_the_download_is_served_to_its_owner_only(alice, bob, started, django_capture_on_commit_callbacks):
    archive_of(alice, django_capture_on_commit_callbacks, started)
    ready = DataExport.objects.get(user=alice)
    url = f"/accounts/data/{ready.token}/download/"

    owner = Client()
    owner.force_login(alice)
    response = owner.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert "imweb-data-alice-" in response["Content-Disposition"]
    assert zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).read("profile.json")

    other = Client()
    other.force_login(bob)
    assert other.get(url).status_code == 404
    assert other.get("/accounts/data/not-a-token/download/").status_code == 404
    assert Client().get(url).status_code == 302  # signed out: to the sign-in page


def test_the_page_asks_shows_progress_then_the_download(alice, started, django_capture_on_commit_callbacks):
    browser = Client()
    browser.force_login(alice)
    assert "You have not asked for an archive yet" in browser.get("/accounts/data/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post("/accounts/data/")  # without JavaScript: a plain form
    assert response.status_code == 302
    page = browser.get("/accounts/data/").content.decode()
    assert "Preparing your archive" in page and '<progress class="export__progress" max="100" value="0"' in page
    assert 'hx-trigger="every 2s"' in page
    export.build(started[0])
    status = browser.get("/accounts/data/status/").content.decode()
    assert "Download your data" in status and "Available until" in status
    assert 'hx-trigger="every 2s"' not in status
    refused = browser.post("/accounts/data/", headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "try again in" in refused.content.decode()


def test_an_expired_export_is_deleted_from_storage(alice, started, django_capture_on_commit_callbacks):
    archive_of(alice, django_capture_on_commit_callbacks, started)
    ready = DataExport.objects.get(user=alice)
    name = ready.file.name
    assert name.startswith("exports/") and storages["attachments"].exists(name)
    assert export.expire_exports(now=timezone.now() + timedelta(days=6)) == 0
    assert export.expire_exports(now=timezone.now() + timedelta(days=7, seconds=1)) == 1
    assert not storages["attachments"].exists(name)
    owner = Client()
    owner.force_login(alice)
    assert owner.get(f"/accounts/data/{ready.token}/download/").status_code == 404
    assert "has expired" in owner.get("/accounts/data/").content.decode()


def test_a_deleted_account_takes_its_export_with_it(alice, started, django_capture_on_commit_callbacks):
    archive_of(alice, django_capture_on_commit_callbacks, started)
    name = DataExport.objects.get(user=alice).file.name
    alice.delete()
    assert not storages["attachments"].exists(name)


def test_progress_moves_on_while_the_archive_is_written(alice, bob, monkeypatch):
    befriend(alice, bob)
    for n in range(3):
        send(alice, bob.jid, f"message {n}")
    upload(alice, None, "draft.txt", b"not sent yet")
    asked = export.request_export(alice)
    seen: list[int] = []
    update = export._Progress.__call__

    def record(self, value: float) -> None:
        update(self, value)
        seen.append(DataExport.objects.get(pk=asked.pk).progress)

    monkeypatch.setattr(export._Progress, "__call__", record)
    done = export.build(asked.pk)
    assert seen == sorted(seen) and 0 < seen[0] < 60 <= seen[-1] < 100
    assert done.progress == 100
    with done.file.open("rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    assert archive.read("files/001-draft.txt") == b"not sent yet"  # an upload not sent yet is theirs too
    readme = archive.read("README.txt").decode()
    for name in ("profile.json", "contacts.json", "conversations/<n>.json", "files/"):
        assert name in readme


def test_an_export_whose_worker_died_is_given_up_and_may_be_asked_again(alice, started):
    stuck = export.request_export(alice)
    DataExport.objects.filter(pk=stuck.pk).update(state=DataExport.State.RUNNING)
    export.expire_exports(now=timezone.now() + timedelta(hours=export.STUCK_HOURS, seconds=1))
    stuck.refresh_from_db()
    assert stuck.state == DataExport.State.FAILED and "ask again" in stuck.error
    assert export.request_export(alice).pk != stuck.pk
