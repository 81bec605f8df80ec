"""Bearer-token authentication for the API and its stream. Only tokens count: a browser session is never
enough, so no page on another site can make a signed-in browser call the API (and it needs no CSRF token)."""

from __future__ import annotations

from urllib.parse import parse_qs

from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.models import ApiToken
from accounts.tokens import authenticate_token


class BearerAuth(HttpBearer):
    """`Authorization: Bearer <token>`; on success `request.auth` is the token row and `request.user` its user."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        row = authenticate_token(token.strip())
        if row is not None:
            request.user = row.user
        return row


def query_params(scope: dict) -> dict[str, str]:
    """The query string of a WebSocket scope, last value of each name winning."""
    raw = scope.get("query_string", b"").decode("latin-1")
    try:
        parsed = parse_qs(raw, max_num_fields=20)
    except ValueError:  # more fields than any client of ours sends
        return {}
    return {name: values[-1] for name, values in parsed.items()}


def token_from_scope(scope: dict) -> str:
    """The token of a WebSocket upgrade: the Authorization header, else `?token=` (which ends up in access logs,
    so clients that can set headers should)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
            return ""
    return query_params(scope).get("token", "")
