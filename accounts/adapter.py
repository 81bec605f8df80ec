"""allauth hooks: usernames are folded to lowercase before validation, as XMPP localparts are; a suspended
person who signs in with the right password is told why they cannot; emails name the service."""

from __future__ import annotations

from types import SimpleNamespace

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import User


class AccountAdapter(DefaultAccountAdapter):
    def clean_username(self, username: str, shallow: bool = False) -> str:
        # "Alice" and "alice" are the same address (RFC 7622 case-folds localparts), so accept either spelling
        # and store the folded one; the validators then see exactly what will be stored.
        return super().clean_username(username.strip().lower(), shallow=shallow)

    def respond_user_inactive(self, request: HttpRequest, user: User) -> HttpResponse:
        # allauth reaches this only after the password matched, so the reason is shown to the account's owner
        # alone (anyone else gets the usual "incorrect password" answer).
        return render(request, "account/suspended.html", {"person": user}, status=403)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # Without django.contrib.sites allauth names the site after the request's host ("Hello from
        # 127.0.0.1:8000!"); every email names the service and its domain instead.
        site = SimpleNamespace(name=settings.IMWEB_SITE_NAME, domain=settings.IMWEB_DOMAIN)
        super().send_mail(template_prefix, email, {**context, "current_site": site})
