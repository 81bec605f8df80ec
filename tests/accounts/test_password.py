"""Password reset by email (same answer whether or not the account exists) and password change."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new and better passphrase"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.org", PASSWORD)


def reset_link(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", body)
    assert match, body
    return match.group(1)


def test_password_reset_by_email_lets_the_user_choose_a_new_password(client, alice, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.org"})
    assert response.status_code == 302

    assert len(mailoutbox) == 1
    link = reset_link(mailoutbox[0].body)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    done = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else link,
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert done.status_code == 302

    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert not alice.check_password(PASSWORD)


def test_password_reset_answers_the_same_for_an_unknown_address(client, alice, mailoutbox):
    known = client.post(reverse("account_reset_password"), {"email": "alice@example.org"}, follow=True)
    unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.org"}, follow=True)

    assert known.status_code == unknown.status_code == 200
    assert known.redirect_chain == unknown.redirect_chain
    # The unknown address gets a notice rather than a link, so its owner learns someone tried.
    assert [m.to for m in mailoutbox] == [["alice@example.org"], ["nobody@example.org"]]
    assert "/accounts/password/reset/key/" not in mailoutbox[1].body


def test_password_reset_requests_are_rate_limited(client, alice, settings, mailoutbox):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "reset_password": "2/m/key"}
    for _ in range(2):
        client.post(reverse("account_reset_password"), {"email": "alice@example.org"})
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.org"})
    assert response.status_code == 429
    assert len(mailoutbox) == 2


def test_change_password_needs_the_current_one(client, alice):
    client.force_login(alice)
    wrong = client.post(
        reverse("account_change_password"),
        {"oldpassword": "nope", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert "oldpassword" in wrong.context["form"].errors
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)

    right = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert right.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
