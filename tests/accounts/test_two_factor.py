"""Two-factor sign-in (an authenticator app and recovery codes) and the list of signed-in sessions."""

from __future__ import annotations

import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.usersessions.models import UserSession
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from imweb.dashboard.models import AuditEntry
from tests.people import PASSWORD

pytestmark = pytest.mark.django_db


def code_for(secret: str) -> str:
    """What an authenticator app shows now for `secret`."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def sign_in(client: Client, username: str = "alice", *, agent: str = "") -> object:
    extra = {"HTTP_USER_AGENT": agent} if agent else {}
    return client.post(reverse("account_login"), {"login": username, "password": PASSWORD}, **extra)


def reauthenticate(client: Client) -> None:
    """Changing two-factor settings asks for the password again (allauth's rule, whatever the sign-in was)."""
    answer = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert answer.status_code == 302, answer.content.decode()


def signed_in(client: Client) -> bool:
    return client.get(reverse("home")).context["user"].is_authenticated


@pytest.fixture
def protected(alice) -> tuple[str, list[str]]:
    """Alice with an authenticator app set up: its secret and her recovery codes."""
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    codes = RecoveryCodes.activate(alice).generate_codes()
    return secret, codes


def test_setting_up_an_authenticator_app_from_the_profile(client, alice, django_capture_on_commit_callbacks):
    sign_in(client)
    profile = client.get(reverse("profile")).content.decode()
    assert "Two-factor sign-in" in profile and "Set up two-factor sign-in" in profile
    assert reverse("usersessions_list") in profile

    assert reverse("account_reauthenticate") in client.get(reverse("mfa_activate_totp"))["Location"]
    reauthenticate(client)
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'src="data:image/svg+xml;base64,' in html  # the QR code, allowed by the CSP's img-src data:
    assert "style=" not in html and "<script>" not in html
    secret = page.context["form"].secret
    assert secret in html

    refused = client.post(reverse("mfa_activate_totp"), {"code": "000000" if code_for(secret) != "000000" else "1"})
    assert refused.status_code == 200 and "Incorrect code" in refused.content.decode()
    assert not Authenticator.objects.filter(user=alice).exists()

    with django_capture_on_commit_callbacks(execute=True):  # allauth signals after the commit
        done = client.post(reverse("mfa_activate_totp"), {"code": code_for(secret)})
    assert done.status_code == 302
    assert Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists()
    profile = client.get(reverse("profile")).content.decode()
    assert "Two-factor sign-in is on" in profile
    assert "View recovery codes" in profile and "10 unused codes" in profile
    assert AuditEntry.objects.get(action="mfa.enabled").target == alice.jid


def test_an_unverified_address_must_be_verified_before_setting_it_up(client, alice):
    EmailAddress.objects.create(user=alice, email=alice.email, verified=False, primary=True)
    sign_in(client)
    profile = client.get(reverse("profile")).content.decode()
    assert "To set it up, first verify your email address" in profile
    assert reverse("mfa_activate_totp") not in profile
    assert client.get(reverse("mfa_activate_totp")).status_code == 302  # allauth sends them back


def test_sign_in_asks_for_a_code_after_the_password(client, alice, protected):
    secret, _ = protected
    answer = sign_in(client)
    assert answer.status_code == 302 and answer["Location"] == reverse("mfa_authenticate")
    assert not signed_in(client)
    page = client.get(reverse("mfa_authenticate")).content.decode()
    assert "Enter the 6-digit code" in page

    done = client.post(reverse("mfa_authenticate"), {"code": code_for(secret)})
    assert done.status_code == 302
    assert signed_in(client)


def test_sign_in_with_a_recovery_code_works_once(client, alice, protected):
    _, codes = protected
    sign_in(client)
    assert client.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 302
    assert signed_in(client)

    other = Client()
    sign_in(other)
    again = other.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert again.status_code == 200 and "Incorrect code" in again.content.decode()
    assert not signed_in(other)
    assert other.post(reverse("mfa_authenticate"), {"code": codes[1]}).status_code == 302
    assert signed_in(other)


def test_a_wrong_code_is_refused_and_guessing_is_rate_limited(client, alice, protected):
    secret, _ = protected
    wrong = "123456" if code_for(secret) != "123456" else "654321"
    sign_in(client)
    for _ in range(5):
        refused = client.post(reverse("mfa_authenticate"), {"code": wrong})
        assert refused.status_code == 200 and "Incorrect code" in refused.content.decode()
        assert not signed_in(client)

    blocked = client.post(reverse("mfa_authenticate"), {"code": code_for(secret)})
    assert blocked.status_code == 200
    assert "Too many failed login attempts" in blocked.content.decode()
    assert not signed_in(client)


def test_api_tokens_are_still_issued_for_the_password(alice, protected):
    answer = Client().post(
        "/api/v1/token",
        {"username": "alice", "password": PASSWORD, "name": "bot"},
        content_type="application/json",
    )
    assert answer.status_code == 201 and answer.json()["token"]


def test_turning_it_off_and_new_recovery_codes_are_audited(
    client, alice, protected, django_capture_on_commit_callbacks
):
    secret, codes = protected
    sign_in(client)
    client.post(reverse("mfa_authenticate"), {"code": code_for(secret)})
    reauthenticate(client)

    shown = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert all(code in shown for code in codes)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("mfa_generate_recovery_codes")).status_code == 302
    assert AuditEntry.objects.filter(action="mfa.recovery_codes_regenerated", target=alice.jid).exists()
    assert codes[0] not in client.get(reverse("mfa_view_recovery_codes")).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("mfa_deactivate_totp")).status_code == 302
    assert not Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists()
    assert AuditEntry.objects.filter(action="mfa.disabled", target=alice.jid).exists()
    assert "Two-factor sign-in is off" in client.get(reverse("profile")).content.decode()


# --- Signed-in sessions ------------------------------------------------------------------------------------

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


def test_the_sessions_page_lists_each_browser_and_signs_one_out(alice):
    laptop, office = Client(HTTP_USER_AGENT=FIREFOX), Client(HTTP_USER_AGENT=CHROME)
    sign_in(laptop, agent=FIREFOX)
    sign_in(office, agent=CHROME)

    page = laptop.get(reverse("usersessions_list")).content.decode()
    assert "Firefox on Linux" in page and "Chrome on Windows" in page
    assert "This browser" in page and "127.0.0.1" in page and "last seen" in page
    office_session = UserSession.objects.get(user=alice, user_agent=CHROME)
    assert reverse("usersession_sign_out", args=[office_session.pk]) in page

    laptop.post(reverse("usersession_sign_out", args=[office_session.pk]))
    assert not signed_in(office)
    assert signed_in(laptop)
    assert "Chrome on Windows" not in laptop.get(reverse("usersessions_list")).content.decode()
    entry = AuditEntry.objects.get(action="session.signed_out")
    assert entry.target == alice.jid and "Chrome" in entry.details


def test_sign_out_everywhere_else_keeps_this_browser(alice):
    here, phone, tablet = Client(), Client(), Client()
    for client in (here, phone, tablet):
        sign_in(client)
    assert "Sign out everywhere else" in here.get(reverse("usersessions_list")).content.decode()

    here.post(reverse("usersessions_list"))
    assert signed_in(here)
    assert not signed_in(phone) and not signed_in(tablet)
    assert "Sign out everywhere else" not in here.get(reverse("usersessions_list")).content.decode()


def test_nobody_can_sign_out_someone_elses_session(alice, bob):
    mine, theirs = Client(), Client()
    sign_in(mine, "alice")
    sign_in(theirs, "bob")
    bobs = UserSession.objects.get(user=bob)

    answer = mine.post(reverse("usersession_sign_out", args=[bobs.pk]), follow=True)
    assert "already signed out" in answer.content.decode()
    assert signed_in(theirs)
    assert mine.get(reverse("usersession_sign_out", args=[bobs.pk])).status_code == 405


def test_last_seen_is_refreshed_at_most_once_a_minute(alice):
    client = Client()
    sign_in(client)
    session = UserSession.objects.get(user=alice)

    def age_it() -> None:
        UserSession.objects.filter(pk=session.pk).update(last_seen_at=session.last_seen_at.replace(year=2020))

    def seen_year() -> int:
        return UserSession.objects.get(pk=session.pk).last_seen_at.year

    age_it()
    client.get(reverse("profile"))
    assert seen_year() > 2020
    age_it()
    client.get(reverse("profile"))
    assert seen_year() == 2020  # not written again within the minute

    cache.delete(f"usersession-seen:{session.session_key}")  # the minute is over
    client.get(reverse("profile"))
    assert seen_year() > 2020
