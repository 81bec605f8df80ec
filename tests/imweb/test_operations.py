"""Operational contract: health endpoint, security headers, admin search, and a clean `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.urls import reverse

from tests.servers import BASE_DIR

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_channel_layer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}


def test_healthz_is_503_when_the_channel_layer_is_down(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"].startswith("error")


def test_pages_carry_a_strict_content_security_policy_and_no_inline_script(client):
    response = client.get(reverse("home"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    page = response.content.decode()
    assert "<script>" not in page and " onclick=" not in page


def test_landing_page_explains_imweb_and_offers_sign_up_and_log_in(client):
    page = client.get(reverse("home")).content.decode()
    assert reverse("account_signup") in page
    assert reverse("account_login") in page
    assert "XMPP" in page


def test_staff_can_search_users_in_the_admin(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.org", "a long admin password")
    django_user_model.objects.create_user("alice", "alice@example.org", "x" * 12, display_name="Alice Liddell")
    django_user_model.objects.create_user("bob", "bob@example.org", "x" * 12)
    client.force_login(admin)

    response = client.get("/admin/accounts/user/", {"q": "liddell"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list.values_list("username", flat=True)) == ["alice"]


def test_admin_is_closed_to_non_staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice", "alice@example.org", "x" * 12))
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "imweb.settings",
        "IMWEB_VAR_DIR": str(tmp_path),
        "DEBUG": "0",
        "IMWEB_HTTPS": "1",
        "SECRET_KEY": "k7#Vq2!xP9$mW4&zL8@nR3^tY6*bH1(cJ5)fG0_sD2+aE7=uI9-oK4~lM8",
        "ALLOWED_HOSTS": "chat.example.org",
        "IMWEB_DOMAIN": "example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_staff_can_see_contact_lists_and_sessions_but_not_edit_them(client, django_user_model):
    from accounts import actions

    admin = django_user_model.objects.create_superuser("boss", "boss@example.org", "a long admin password")
    alice = django_user_model.objects.create_user("alice", "alice@example.org", "x" * 12)
    bob = django_user_model.objects.create_user("bob", "bob@example.org", "x" * 12)
    actions.request_subscription(alice, bob.jid)
    client.force_login(admin)

    listing = client.get("/admin/accounts/rosteritem/", {"q": "bob@imweb.localhost"})
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list.values_list("owner__username", flat=True)) == ["alice"]
    assert client.get("/admin/accounts/rosteritem/add/").status_code == 403
