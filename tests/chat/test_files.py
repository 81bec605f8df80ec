"""Sharing files (chat.files and /files/): uploads and their answers, limits shown and enforced, pictures
stripped of their location, thumbnails made in the background, and files leaving storage with their message,
their upload's cancel, the sweep of unsent uploads and the account."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import ExifTags, Image

from accounts import actions as accounts
from chat import actions, files
from chat.models import Attachment, Message
from chat.tasks import make_thumbnail, sweep_unsent_files

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
FIXED_CLOCK = 1_000_000.0


# --- Helpers (imported by the other file tests) -------------------------------------------------------------


def picture(fmt: str = "PNG", size: tuple[int, int] = (64, 48), *, exif: Image.Exif | None = None) -> bytes:
    """A small picture made here, in `fmt`."""
    out = io.BytesIO()
    options = {"exif": exif.tobytes()} if exif is not None else {}
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt, **options)
    return out.getvalue()


def located_exif() -> Image.Exif:
    """EXIF with a camera, an orientation (rotate 90°) and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Camera Maker"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 22.0, 12.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (4.0, 53.0, 42.0),
    }
    return exif


def post_file(client: Client, name: str, data: bytes, **fields: object):
    """POST /files/ with one file, as the composer's script does."""
    return client.post("/files/", {"file": SimpleUploadedFile(name, data), **fields})


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def say(sender, to, body: str = "here") -> Message:
    return actions.send_message(sender, to=to, body=body, client_id=uuid.uuid4())


def attach(token: str, message: Message) -> Attachment:
    """The upload `token` sent with `message` (as the send path does)."""
    Attachment.objects.filter(token=token).update(message=message)
    return Attachment.objects.get(token=token)


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def in_storage(name: str) -> bool:
    return bool(name) and Attachment._meta.get_field("file").storage.exists(name)


@pytest.fixture
def eager_tasks():
    """Celery tasks run at once, in this process, as a worker would run them."""
    from imweb.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def pair(alice, bob, settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setattr("imweb.ratelimit.clock", lambda: FIXED_CLOCK)
    befriend(alice, bob)
    return alice, bob


# --- Uploading ----------------------------------------------------------------------------------------------


def test_an_upload_answers_with_what_the_composer_shows(alice):
    response = post_file(signed_in(alice), "Holiday photo.png", picture(size=(40, 30)))

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "name", "size", "size_label", "content_type", "kind", "url", "thumbnail_url"}
    assert body["name"] == "Holiday photo.png"
    assert body["kind"] == "image" and body["content_type"] == "image/png"
    assert body["url"] == f"/files/{body['token']}/Holiday%20photo.png"
    assert body["size_label"].endswith("bytes")
    stored = Attachment.objects.get(token=body["token"])
    assert (stored.uploader, stored.message, stored.width, stored.height) == (alice, None, 40, 30)
    assert len(body["token"]) >= 24 and "id" not in body and "pk" not in body


def test_the_type_comes_from_the_content_not_the_name(alice):
    client = signed_in(alice)
    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"

    named_as_text = post_file(client, "minutes.txt", pdf).json()
    text = post_file(client, "notes", "Grüße, ok\n".encode()).json()
    table = post_file(client, "budget.csv", b"a,b\n1,2\n").json()

    assert (named_as_text["kind"], named_as_text["content_type"]) == ("file", "application/pdf")
    assert text["content_type"] == "text/plain"
    assert table["content_type"] == "text/csv"


def test_a_logged_out_upload_is_refused_and_stores_nothing():
    response = post_file(Client(), "a.png", picture())

    assert response.status_code == 403
    assert not Attachment.objects.exists()


def test_an_upload_for_a_conversation_you_are_not_in_is_not_found(alice, bob, make_user, pair):
    carol = make_user("carol")
    befriend(bob, carol)
    theirs = say(bob, carol.jid).conversation_id

    response = post_file(signed_in(alice), "a.png", picture(), conversation=str(theirs))
    mine = post_file(signed_in(alice), "a.png", picture(), conversation=str(say(alice, bob.jid).conversation_id))

    assert response.status_code == 404 and "error" in response.json()
    assert mine.status_code == 201
    assert Attachment.objects.count() == 1


def test_limits_are_shown_before_uploading_and_follow_what_is_used(alice, settings):
    settings.IMWEB_MAX_FILE_BYTES = 25 * 1024 * 1024
    settings.IMWEB_FILE_QUOTA_BYTES = 1024 * 1024 * 1024

    before = files.limits_for(alice)
    post_file(signed_in(alice), "big.txt", b"x" * (3 * 1024 * 1024))
    after = files.limits_for(alice)

    assert before.summary == "Up to 25 MB per file · 1 GB left"
    assert "image/png" in before.accept and ".pdf" in before.accept
    assert after.used_bytes == 3 * 1024 * 1024
    assert after.left_bytes == before.left_bytes - 3 * 1024 * 1024


def test_a_file_over_the_size_limit_is_refused_saying_how_large_both_are(alice, settings):
    settings.IMWEB_MAX_FILE_BYTES = 1024 * 1024

    response = post_file(signed_in(alice), "photo.png", b"x" * (1024 * 1024 + 600_000))
    far_too_large = post_file(signed_in(alice), "huge.png", b"x" * (5 * 1024 * 1024))

    assert response.status_code == 413
    assert response.json()["error"] == "photo.png is 1.6 MB; files can be up to 1 MB."
    assert far_too_large.status_code == 413  # refused from its length alone, before the body is parsed
    assert far_too_large.json()["error"] == "This file is 5 MB; files can be up to 1 MB."
    assert not Attachment.objects.exists()


def test_a_file_over_what_is_left_of_the_quota_is_refused(alice, settings):
    settings.IMWEB_FILE_QUOTA_BYTES = 5 * 1024 * 1024
    client = signed_in(alice)
    assert post_file(client, "first.txt", b"x" * (2 * 1024 * 1024)).status_code == 201

    response = post_file(client, "second.txt", b"y" * (4 * 1024 * 1024))

    assert response.status_code == 413
    assert response.json()["error"] == (
        "You have 3 MB of your 5 MB left for files; delete some messages with files to make room."
    )
    assert Attachment.objects.count() == 1


def test_uploads_are_rate_limited_per_person(alice, bob, settings, monkeypatch):
    settings.IMWEB_UPLOAD_RATE_LIMITS = ((2, 60),)
    monkeypatch.setattr("imweb.ratelimit.clock", lambda: FIXED_CLOCK)
    client = signed_in(alice)
    statuses = [post_file(client, f"{n}.txt", b"hello").status_code for n in range(3)]
    refused = post_file(client, "again.txt", b"hello")

    assert statuses == [201, 201, 429]
    assert int(refused["Retry-After"]) >= 1
    assert "too fast" in refused.json()["error"]
    assert post_file(signed_in(bob), "bob.txt", b"hello").status_code == 201  # a limit of Alice's only


def test_a_cancelled_upload_is_removed_with_its_file(alice, bob, django_capture_on_commit_callbacks):
    token = post_file(signed_in(alice), "a.txt", b"hello").json()["token"]
    name = Attachment.objects.get(token=token).file.name
    assert in_storage(name)

    assert signed_in(bob).post(f"/files/{token}/remove").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert signed_in(alice).post(f"/files/{token}/remove").status_code == 204

    assert not Attachment.objects.filter(token=token).exists()
    assert not in_storage(name)
    assert signed_in(alice).post(f"/files/{token}/remove").status_code == 404


def test_a_sent_file_cannot_be_cancelled(alice, bob, pair):
    token = post_file(signed_in(alice), "a.txt", b"hello").json()["token"]
    attach(token, say(alice, bob.jid))

    assert signed_in(alice).post(f"/files/{token}/remove").status_code == 404
    assert Attachment.objects.filter(token=token).exists()


# --- Serving ------------------------------------------------------------------------------------------------


def test_a_picture_is_served_inline_and_inert(alice):
    data = picture()
    token = post_file(signed_in(alice), "a.png", data).json()["token"]

    response = signed_in(alice).get(f"/files/{token}/a.png")

    assert response.status_code == 200
    assert content(response) == data
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Cache-Control"] == "private"


def test_other_files_are_downloads_under_their_own_name(alice):
    token = post_file(signed_in(alice), "Überblick 2026.txt", b"plain words\n").json()["token"]

    response = signed_in(alice).get(f"/files/{token}/anything")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%C3%9Cberblick%202026.txt" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_gps_is_stripped_from_a_jpeg_and_the_rest_of_its_exif_kept(alice):
    data = picture("JPEG", exif=located_exif())
    assert ExifTags.IFD.GPSInfo in Image.open(io.BytesIO(data)).getexif()

    token = post_file(signed_in(alice), "beach.jpg", data).json()["token"]
    served = Image.open(io.BytesIO(content(signed_in(alice).get(f"/files/{token}/beach.jpg"))))

    exif = served.getexif()
    assert ExifTags.IFD.GPSInfo not in exif
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert exif[ExifTags.Base.Orientation] == 6
    assert exif[ExifTags.Base.Make] == "Camera Maker"
    assert served.format == "JPEG" and served.size == (64, 48)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_gps_is_stripped_from_png_and_webp(alice, fmt):
    token = post_file(signed_in(alice), f"pic.{fmt.lower()}", picture(fmt, exif=located_exif())).json()["token"]

    served = Image.open(io.BytesIO(content(signed_in(alice).get(f"/files/{token}/pic"))))

    assert ExifTags.IFD.GPSInfo not in served.getexif()
    assert served.getexif()[ExifTags.Base.Orientation] == 6


def test_a_picture_without_location_is_stored_as_it_came(alice):
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Camera Maker"
    data = picture("JPEG", exif=exif)

    token = post_file(signed_in(alice), "a.jpg", data).json()["token"]

    assert content(signed_in(alice).get(f"/files/{token}/a.jpg")) == data


# --- Thumbnails ---------------------------------------------------------------------------------------------


def test_an_uploaded_picture_gets_a_webp_thumbnail_of_at_most_480(
    alice, eager_tasks, django_capture_on_commit_callbacks
):
    client = signed_in(alice)
    with django_capture_on_commit_callbacks(execute=True):
        body = post_file(client, "wide.png", picture(size=(1200, 900))).json()

    thumb = client.get(f"/files/{body['token']}/thumb")

    assert thumb.status_code == 200
    assert thumb["Content-Type"] == "image/webp"
    assert thumb["X-Content-Type-Options"] == "nosniff"
    image = Image.open(io.BytesIO(content(thumb)))
    assert image.format == "WEBP" and image.size == (480, 360)
    assert files.thumbnail_url(Attachment.objects.get(token=body["token"])) == f"/files/{body['token']}/thumb"


def test_the_thumbnail_follows_the_exif_orientation(alice, eager_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        body = post_file(signed_in(alice), "tall.jpg", picture("JPEG", (600, 300), exif=located_exif())).json()

    image = Image.open(io.BytesIO(content(signed_in(alice).get(f"/files/{body['token']}/thumb"))))

    assert image.size == (240, 480)  # orientation 6: the camera was turned, the picture stands upright


def test_no_thumbnail_until_it_is_made_and_none_for_other_files(alice):
    client = signed_in(alice)
    picture_token = post_file(client, "a.png", picture()).json()["token"]
    text_token = post_file(client, "a.txt", b"words").json()["token"]

    assert client.get(f"/files/{picture_token}/thumb").status_code == 404
    assert make_thumbnail(Attachment.objects.get(token=text_token).pk) is False
    assert client.get(f"/files/{text_token}/thumb").status_code == 404


def test_making_a_thumbnail_twice_or_for_a_removed_file_is_harmless(alice, django_capture_on_commit_callbacks):
    token = post_file(signed_in(alice), "a.png", picture()).json()["token"]
    attachment = Attachment.objects.get(token=token)

    assert make_thumbnail(attachment.pk) is True
    first = Attachment.objects.get(pk=attachment.pk).thumbnail.name
    assert make_thumbnail(attachment.pk) is False
    assert Attachment.objects.get(pk=attachment.pk).thumbnail.name == first
    with django_capture_on_commit_callbacks(execute=True):
        attachment.delete()
    assert make_thumbnail(attachment.pk) is False
    assert not in_storage(first)


def test_a_thumbnail_made_after_sending_reaches_the_open_tabs(
    alice, bob, pair, published, django_capture_on_commit_callbacks
):
    token = post_file(signed_in(alice), "a.png", picture()).json()["token"]
    message = say(alice, bob.jid)
    attach(token, message)
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        make_thumbnail(Attachment.objects.get(token=token).pk)

    changed = [(user, event) for user, event in published if event["type"] == "message.changed"]
    assert {user for user, _ in changed} == {alice.pk, bob.pk}
    assert all(event["seq"] == message.seq and event["change"] == "attachment" for _, event in changed)


# --- Removal ------------------------------------------------------------------------------------------------


def test_removing_a_messages_files_removes_them_from_storage(alice, bob, pair, django_capture_on_commit_callbacks):
    token = post_file(signed_in(alice), "a.png", picture()).json()["token"]
    message = say(alice, bob.jid)
    attachment = attach(token, message)
    make_thumbnail(attachment.pk)
    attachment.refresh_from_db()
    names = [attachment.file.name, attachment.thumbnail.name]
    assert all(in_storage(name) for name in names)

    with django_capture_on_commit_callbacks(execute=True):
        assert files.remove_for_message(message) == 1

    assert not any(in_storage(name) for name in names)
    assert signed_in(bob).get(f"/files/{token}/a.png").status_code == 404


def test_deleting_an_account_leaves_none_of_its_files(alice, bob, pair, django_capture_on_commit_callbacks):
    client = signed_in(alice)
    sent = post_file(client, "sent.png", picture()).json()["token"]
    attach(sent, say(alice, bob.jid))
    unsent = post_file(client, "unsent.txt", b"draft").json()["token"]
    make_thumbnail(Attachment.objects.get(token=sent).pk)
    names = [n for a in Attachment.objects.all() for n in (a.file.name, a.thumbnail.name) if n]
    assert len(names) == 3 and all(in_storage(name) for name in names)

    with django_capture_on_commit_callbacks(execute=True):
        alice.delete()

    assert not Attachment.objects.filter(token__in=[sent, unsent]).exists()
    assert not any(in_storage(name) for name in names)


def test_uploads_never_sent_are_swept_after_a_day(alice, bob, pair, django_capture_on_commit_callbacks):
    client = signed_in(alice)
    old = post_file(client, "old.txt", b"old").json()["token"]
    sent = post_file(client, "sent.txt", b"sent").json()["token"]
    fresh = post_file(client, "fresh.txt", b"fresh").json()["token"]
    attach(sent, say(alice, bob.jid))
    day_ago = timezone.now() - timedelta(hours=25)
    Attachment.objects.filter(token__in=[old, sent]).update(created_at=day_ago)
    old_name = Attachment.objects.get(token=old).file.name

    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_unsent_files() == 1

    assert set(Attachment.objects.values_list("token", flat=True)) == {sent, fresh}
    assert not in_storage(old_name)


def test_the_sweep_makes_a_thumbnail_whose_task_was_lost(alice):
    token = post_file(signed_in(alice), "a.png", picture()).json()["token"]
    Attachment.objects.filter(token=token).update(created_at=timezone.now() - timedelta(minutes=5))

    sweep_unsent_files()

    assert signed_in(alice).get(f"/files/{token}/thumb").status_code == 200


# --- Scaled mode: S3 ----------------------------------------------------------------------------------------


def test_a_bucket_in_the_environment_puts_files_in_an_s3_compatible_store(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "imweb.settings",
        "IMWEB_VAR_DIR": str(tmp_path),
        "IMWEB_S3_BUCKET": "imweb-files",
        "IMWEB_S3_ENDPOINT_URL": "https://s3.example.org",
        "IMWEB_S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "IMWEB_S3_SECRET_ACCESS_KEY": "secret-example",
        "IMWEB_S3_REGION": "eu-west-1",
    }
    script = (
        "import django, json; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "s = storages['attachments']\n"
        "print(json.dumps([type(s).__module__ + '.' + type(s).__name__, s.bucket_name, s.endpoint_url,"
        " s.access_key, s.secret_key, s.region_name, s.default_acl, s.file_overwrite]))\n"
    )
    unset = {**env}
    for name in [n for n in unset if n.startswith("IMWEB_S3_")]:
        del unset[name]

    s3 = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    local = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.core.files.storage import storages;"
         " print(type(storages['attachments']).__name__, storages['attachments'].location)"],
        env=unset, cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip

    assert json.loads(s3.stdout) == [
        "storages.backends.s3.S3Storage", "imweb-files", "https://s3.example.org", "AKIDEXAMPLE", "secret-example",
        "eu-west-1", None, False,
    ]  # fmt: skip
    assert local.stdout.split() == ["FileSystemStorage", str((tmp_path / "files").resolve())]
