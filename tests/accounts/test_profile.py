"""The profile page: display name, status message, avatar upload with size/type checks, account deletion."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts import actions as accounts_actions
from accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(django_user_model, client):
    user = django_user_model.objects.create_user("alice", "alice@example.org", PASSWORD)
    client.force_login(user)
    return user


def image_bytes(fmt: str, size: tuple[int, int] = (400, 300), **save_args) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(out, format=fmt, **save_args)
    return out.getvalue()


def upload(client, name: str, content: bytes, content_type: str = "image/png"):
    return client.post(reverse("avatar_upload"), {"avatar": SimpleUploadedFile(name, content, content_type)})


def test_profile_edit_saves_display_name_and_status(client, alice):
    response = client.post(reverse("profile"), {"display_name": "Alice L.", "status_message": "at lunch"}, follow=True)

    alice.refresh_from_db()
    assert (alice.display_name, alice.status_message) == ("Alice L.", "at lunch")
    page = response.content.decode()
    assert "Your profile was saved." in page
    assert "at lunch" in page  # the top bar shows the new status


def test_profile_edit_over_htmx_returns_the_form_fragment_and_refreshes_the_top_bar(client, alice):
    response = client.post(
        reverse("profile"), {"display_name": "Alice", "status_message": "busy"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert response["HX-Trigger"] == "profile-changed"
    assert "<html" not in response.content.decode()
    assert next(t.name for t in response.templates) == "accounts/_profile_form.html"
    topbar = client.get(reverse("topbar")).content.decode()
    assert "busy" in topbar


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("display_name", "x" * 65, "at most 64 characters"),
        ("status_message", "y" * 141, "at most 140 characters"),
        ("display_name", "evil\u202eeman", "invisible control characters"),
        ("status_message", "bell\x07", "invisible control characters"),
    ],
    ids=["long-name", "long-status", "rtl-override", "control-char"],
)
def test_bad_profile_input_is_refused_with_a_message_and_changes_nothing(client, alice, field, value, error):
    data = {"display_name": "Alice", "status_message": "hello", field: value}
    response = client.post(reverse("profile"), data)

    assert any(error in e for e in response.context["form"].errors[field]), response.context["form"].errors
    alice.refresh_from_db()
    assert (alice.display_name, alice.status_message) == ("", "")


def test_profile_requires_login(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_avatar_upload_accepts_common_images_and_serves_a_256px_png(client, alice, fmt):
    response = upload(client, f"me.{fmt.lower()}", image_bytes(fmt), f"image/{fmt.lower()}")
    assert response.status_code == 302

    alice.refresh_from_db()
    served = client.get(reverse("avatar", args=["alice"]))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(b"".join(served.streaming_content)))
    assert (image.format, image.size) == ("PNG", (256, 256))


def test_avatar_upload_strips_metadata(client, alice):
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    upload(client, "me.jpg", image_bytes("JPEG", exif=exif.tobytes()), "image/jpeg")
    alice.refresh_from_db()
    with alice.avatar.open("rb") as handle:
        assert b"SpyCam" not in handle.read()


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("notes.png", b"just some text, not an image", "not an image we can read"),
        ("script.png", b"<script>alert(1)</script>", "not an image we can read"),
        ("old.bmp", image_bytes("BMP"), "this file is BMP"),
        ("half.png", image_bytes("PNG")[:200], "damaged or incomplete"),
    ],
    ids=["text", "html", "bmp", "truncated"],
)
def test_avatar_upload_rejects_files_that_are_not_accepted_images(client, alice, name, content, error):
    response = upload(client, name, content)

    assert response.status_code == 400
    assert any(error in e for e in response.context["avatar_form"].errors["avatar"])
    alice.refresh_from_db()
    assert not alice.avatar


def test_avatar_upload_rejects_an_oversize_file_with_its_size_in_the_message(client, alice, settings):
    settings.AVATAR_MAX_BYTES = 100_000
    big = image_bytes("PNG", size=(1200, 1200), compress_level=0)
    assert len(big) > 100_000

    response = upload(client, "big.png", big)

    assert response.status_code in (400, 413)
    assert "avatars can be at most 0.1 MB" in response.content.decode()
    alice.refresh_from_db()
    assert not alice.avatar


def test_replacing_and_removing_the_avatar_leaves_no_files_behind(client, alice, settings):
    upload(client, "a.png", image_bytes("PNG"))
    alice.refresh_from_db()
    first = Path(alice.avatar.path)
    upload(client, "b.png", image_bytes("PNG", size=(50, 50)))
    alice.refresh_from_db()
    second = Path(alice.avatar.path)
    assert second.exists() and not first.exists()

    client.post(reverse("avatar_remove"))
    alice.refresh_from_db()
    assert not alice.avatar and not second.exists()
    assert client.get(reverse("avatar", args=["alice"])).status_code == 404


def test_account_deletion_needs_the_password_then_really_deletes(client, alice, django_capture_on_commit_callbacks):
    upload(client, "a.png", image_bytes("PNG"))
    alice.refresh_from_db()
    avatar_file = Path(alice.avatar.path)

    wrong = client.post(reverse("account_delete"), {"password": "nope"})
    assert "That password is not correct." in wrong.content.decode()
    assert User.objects.filter(username="alice").exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("account_delete"), {"password": PASSWORD}, follow=True)
    assert "were deleted" in done.content.decode()
    assert not User.objects.filter(username="alice").exists()
    assert not done.context["user"].is_authenticated
    assert not avatar_file.exists()
    assert client.post(reverse("account_login"), {"login": "alice", "password": PASSWORD}).status_code == 200


def test_privacy_settings_are_saved_and_validated(client, alice):
    page = client.get(reverse("profile")).content.decode()
    assert "Show my contacts when I was last online" in page

    client.post(reverse("privacy"), {"directory_visible": "on", "idle_away_minutes": "15"})
    alice.refresh_from_db()
    assert (alice.show_last_seen, alice.directory_visible, alice.idle_away_minutes) == (False, True, 15)

    assert alice.email_missed_messages is False  # an unticked box is a no

    client.post(reverse("privacy"), {"email_missed_messages": "on", "idle_away_minutes": "15"})
    alice.refresh_from_db()
    assert alice.email_missed_messages is True

    bad = client.post(reverse("privacy"), {"idle_away_minutes": "0"})
    assert bad.status_code == 400
    assert "greater than or equal to 1" in bad.content.decode()
    alice.refresh_from_db()
    assert alice.idle_away_minutes == 15


def test_the_idle_delay_reaches_the_page_that_detects_idleness(client, alice):
    alice.idle_away_minutes = 7
    alice.save()
    assert 'data-idle-minutes="7"' in client.get(reverse("home")).content.decode()


def test_an_avatar_looks_the_same_to_a_blocked_person_and_to_anonymous_visitors_as_a_missing_account(
    client, alice, make_user
):
    upload(client, "me.png", image_bytes("PNG"), "image/png")
    bob, carol = make_user("bob"), make_user("carol")
    accounts_actions.block_jid(alice, bob.jid)

    def fetch(viewer, username: str):
        browser = Client()
        if viewer is not None:
            browser.force_login(viewer)
        response = browser.get(reverse("avatar", args=[username]))
        if response.status_code == 200:
            return 200, b"an image"
        return response.status_code, re.sub(rb"[A-Za-z0-9]{64}", b"(csrf token)", response.content)

    assert fetch(carol, "alice")[0] == 200  # a signed-in person alice does not block sees it
    missing = fetch(bob, "nobody-here")
    assert missing[0] == 404
    assert fetch(bob, "alice") == missing  # alice blocks bob: her avatar answers as if she did not exist
    assert fetch(None, "alice") == fetch(None, "nobody-here")  # sign in first, either way


def test_private_pages_are_never_cached_and_avatars_only_privately(client, alice):
    client.force_login(alice)
    for url in (reverse("home"), reverse("profile")):
        cache_control = client.get(url)["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control
    upload(client, "me.png", image_bytes("PNG"), "image/png")
    assert client.get(reverse("avatar", args=["alice"]))["Cache-Control"] == "private, max-age=3600"
    assert "no-store" not in Client().get(reverse("home")).get("Cache-Control", "")  # the public landing page
