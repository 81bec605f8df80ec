"""Fixtures for people on this server, and a recorder of whose screens an action wakes (a pytest plugin)."""

from __future__ import annotations

import pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, **fields):
        return django_user_model.objects.create_user(username, f"{username}@example.org", PASSWORD, **fields)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice", display_name="Alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob", display_name="Bob")


@pytest.fixture
def woken(monkeypatch):
    """The set of user ids whose sockets actions woke (recorded where events leave the process)."""
    seen: set[int] = set()

    async def record(user_ids, event):
        seen.update(user_ids)

    monkeypatch.setattr("accounts.events._send_all", record)
    return seen
