"""Logging in and out, and the rate limit on failed logins (kept in the shared cache)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings
from django.urls import reverse

from tests.servers import BASE_DIR

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.org", PASSWORD)


def login(client, login: str, password: str):
    return client.post(reverse("account_login"), {"login": login, "password": password})


def test_login_with_username_or_email_then_logout(client, alice):
    assert login(client, "alice", PASSWORD).status_code == 302
    assert client.get(reverse("home")).context["user"] == alice
    client.post(reverse("account_logout"))
    assert not client.get(reverse("home")).context["user"].is_authenticated

    assert login(client, "alice@example.org", PASSWORD).status_code == 302


def test_wrong_password_and_unknown_user_get_the_same_answer(client, alice):
    wrong_password = login(client, "alice", "not the password")
    no_such_user = login(client, "nobody", "not the password")

    assert wrong_password.status_code == no_such_user.status_code == 200
    assert wrong_password.context["form"].non_field_errors() == no_such_user.context["form"].non_field_errors()


def test_failed_logins_are_rate_limited_even_for_the_right_password(client, alice):
    for _ in range(5):
        assert login(client, "alice", "wrong").status_code == 200

    blocked = login(client, "alice", PASSWORD)

    assert "Too many failed login attempts" in " ".join(blocked.context["form"].non_field_errors())
    assert "Too many failed login attempts" in blocked.content.decode()
    assert not client.get(reverse("home")).context["user"].is_authenticated


def test_login_rate_limit_is_shared_between_processes(client, alice):
    """Failures counted by this process lock the account in another web process too (counters live in Redis)."""
    for _ in range(5):
        login(client, "alice", "wrong")
    script = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().post('/accounts/login/', {'login': 'alice', 'password': 'whatever'}); "
        "print('locked' if b'Too many failed login attempts' in r.content else 'open')"
    )
    other_process = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={
            "DJANGO_SETTINGS_MODULE": "imweb.settings",
            "IMWEB_VAR_DIR": str(settings.VAR_DIR),
            "ALLOWED_HOSTS": "testserver",
            "PATH": "",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other_process.stdout.strip().splitlines()[-1:] == ["locked"], other_process.stderr
