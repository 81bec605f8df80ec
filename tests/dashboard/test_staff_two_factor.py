"""IMWEB_REQUIRE_STAFF_2FA: staff without an authenticator app are sent to set one up when they sign in, and
neither the dashboard nor Django's admin opens for them until they have. Off by default."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.test import Client
from django.urls import reverse

from tests.people import PASSWORD

pytestmark = pytest.mark.django_db

SETUP = reverse("mfa_activate_totp")
DASHBOARD = reverse("dashboard:index")
ADMIN = reverse("admin:index")


@pytest.fixture
def required(settings):
    settings.IMWEB_REQUIRE_STAFF_2FA = True


def sign_in(client: Client, username: str) -> str:
    """Sign in with the password; returns where the sign-in page sends the browser."""
    return client.post(reverse("account_login"), {"login": username, "password": PASSWORD})["Location"]


def test_staff_without_an_authenticator_app_are_sent_to_set_one_up(required, operator):
    client = Client()
    home = sign_in(client, "root")

    first = client.get(home)
    assert first.status_code == 302 and first["Location"] == SETUP
    for page in (DASHBOARD, ADMIN, reverse("dashboard:trends")):
        answer = client.get(page, follow=True)
        assert answer.redirect_chain[0] == (SETUP, 302), page
        assert "dashboard and the admin need it" in answer.content.decode()
    # The rest of the service still works: only once after signing in are they taken to the set-up.
    assert client.get(home).status_code == 200


def test_staff_with_an_authenticator_app_reach_the_dashboard_and_the_admin(required, operator):
    secret = generate_totp_secret()
    TOTP.activate(operator, secret)
    client = Client()
    assert sign_in(client, "root") == reverse("mfa_authenticate")
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    home = client.post(reverse("mfa_authenticate"), {"code": code})["Location"]

    assert client.get(home).status_code == 200
    assert client.get(DASHBOARD).status_code == 200
    assert client.get(ADMIN).status_code == 200


def test_people_who_are_not_staff_are_not_asked(required, alice):
    client = Client()
    assert client.get(sign_in(client, "alice")).status_code == 200
    assert client.get(DASHBOARD).status_code == 403


def test_off_by_default_staff_sign_in_with_a_password_alone(operator):
    client = Client()
    assert client.get(sign_in(client, "root")).status_code == 200
    assert client.get(DASHBOARD).status_code == 200
    assert client.get(ADMIN).status_code == 200
