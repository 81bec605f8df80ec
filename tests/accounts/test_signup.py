"""Sign-up: usernames are XMPP localparts, each bad kind gets its own clear error, and nothing is created."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def signup(client, username: str, email: str = "someone@example.org", password: str = PASSWORD):
    return client.post(
        reverse("account_signup"), {"username": username, "email": email, "password1": password}, follow=True
    )


def test_signup_creates_a_lowercase_account_with_an_xmpp_address_and_sends_a_verification_email(client, mailoutbox):
    response = signup(client, "Alice.Liddell", "alice@example.org")

    user = User.objects.get()
    assert user.username == "alice.liddell"
    assert user.jid == "alice.liddell@imweb.localhost"
    assert response.context["user"] == user  # signed in straight away
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["alice@example.org"]
    assert "/accounts/confirm-email/" in mailoutbox[0].body


def test_passwords_are_hashed_with_argon2(client):
    signup(client, "bob")
    assert User.objects.get().password.startswith("argon2")


@pytest.mark.parametrize(
    ("username", "expected_error"),
    [
        ("", "This field is required."),
        ("a" * 65, "at most 64 characters"),
        ("bob smith", "Not allowed: space"),
        ("bob@home", "Not allowed: '@'"),
        ("bob/work", "Not allowed: '/'"),
        ("bøb", "Not allowed: 'ø'"),
        ("bob:1", "Not allowed: ':'"),
        ("admin", "The username 'admin' is reserved"),
        ("Postmaster", "The username 'postmaster' is reserved"),
        ("abuse", "The username 'abuse' is reserved"),
    ],
    ids=["empty", "too-long", "space", "at-sign", "slash", "non-ascii", "colon", "admin", "postmaster", "abuse"],
)
def test_each_bad_username_gets_its_own_clear_error(client, username, expected_error):
    response = signup(client, username)

    errors = response.context["form"].errors["username"]
    assert any(expected_error in error for error in errors), errors
    assert expected_error in response.content.decode().replace("&#x27;", "'")
    assert not User.objects.exists()


def test_a_taken_username_is_refused_whatever_its_case(client, django_user_model):
    django_user_model.objects.create_user("alice", "first@example.org", PASSWORD)

    for attempt in ("alice", "ALICE", "Alice"):
        response = signup(client, attempt, email=f"{attempt}@example.net")
        assert "username already exists" in " ".join(response.context["form"].errors["username"])
    assert User.objects.count() == 1


def test_a_bad_email_and_a_weak_password_are_reported_next_to_their_fields(client):
    response = signup(client, "carol", email="not-an-email", password="123")

    errors = response.context["form"].errors
    assert "email" in errors
    assert "password1" in errors
    assert not User.objects.exists()


def test_signup_is_rate_limited_per_address(client, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "3/m/ip"}
    for n in range(3):
        assert signup(client, f"user{n}", email=f"user{n}@example.org").status_code == 200
        client.logout()
    response = signup(client, "user3", email="user3@example.org")
    assert response.status_code == 429
    assert "Too many" in response.content.decode()
    assert User.objects.count() == 3


def test_unverified_user_can_log_in_but_sees_a_banner_until_the_link_is_followed(client, mailoutbox):
    signup(client, "dave", "dave@example.org")

    home = client.get(reverse("home"))
    assert "Please confirm your email address" in home.content.decode()

    link = next(line for line in mailoutbox[0].body.splitlines() if "/accounts/confirm-email/" in line).strip()
    path = link[link.index("/accounts/confirm-email/") :]
    assert client.get(path).status_code == 200  # a confirmation page, not a state change on GET
    client.post(path)

    assert EmailAddress.objects.get(email="dave@example.org").verified
    assert "Please confirm your email address" not in client.get(reverse("home")).content.decode()
