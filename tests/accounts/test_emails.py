"""allauth's emails name the service ("Hello from imweb!", or IMWEB_SITE_NAME), never the host and port the
request happened to come to."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.urls import reverse

from tests.servers import BASE_DIR

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
# The host:port of a request (the test client's "testserver", or an address and port such as 127.0.0.1:18100).
HOST_PORT = re.compile(r"\btestserver\b|\b\d{1,3}(\.\d{1,3}){3}:\d+|\blocalhost:\d+")


def greeting_and_sign_off(body: str) -> tuple[str, str]:
    lines = [line for line in body.splitlines() if line.strip()]
    return lines[0], "\n".join(lines[-2:])


def without_links(body: str) -> str:
    return re.sub(r"https?://\S+", "", body)


def test_the_sign_up_confirmation_greets_with_the_service_name(client, mailoutbox):
    client.post(
        reverse("account_signup"),
        {"username": "alice", "email": "alice@example.org", "password1": PASSWORD},
        HTTP_HOST="127.0.0.1",
    )

    [mail] = mailoutbox
    greeting, sign_off = greeting_and_sign_off(mail.body)
    assert greeting == "Hello from imweb!"
    assert sign_off == "Thank you for using imweb!\nimweb.localhost"
    assert "register an account on imweb.localhost" in mail.body
    assert not HOST_PORT.search(without_links(mail.body)), mail.body
    assert mail.subject.startswith("[imweb] ")


def test_a_password_reset_greets_with_the_configured_name(client, django_user_model, settings, mailoutbox):
    settings.IMWEB_SITE_NAME = "Example Chat"
    django_user_model.objects.create_user("bob", "bob@example.org", PASSWORD)

    client.post(reverse("account_reset_password"), {"email": "bob@example.org"})

    [mail] = mailoutbox
    greeting, sign_off = greeting_and_sign_off(mail.body)
    assert greeting == "Hello from Example Chat!"
    assert sign_off == "Thank you for using Example Chat!\nimweb.localhost"
    assert "/accounts/password/reset/key/" in mail.body  # the link itself still leads to where it was asked
    assert not HOST_PORT.search(without_links(mail.body)), mail.body


@pytest.mark.parametrize(("environment", "name"), [({"IMWEB_SITE_NAME": "  Acme Talk "}, "Acme Talk"), ({}, "imweb")])
def test_the_site_name_comes_from_the_environment_with_imweb_by_default(environment, name, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "IMWEB_SITE_NAME"}
    env.update({"IMWEB_VAR_DIR": str(tmp_path), **environment})
    shown = subprocess.run(
        [sys.executable, "-c", "import imweb.settings as s; print(s.IMWEB_SITE_NAME)"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == name
