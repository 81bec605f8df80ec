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

    async def record(batch):
        seen.update(user_id for user_id, _ in batch)

    monkeypatch.setattr("accounts.events._send", record)
    return seen


# What identifies an event in tests; the rest of it is its payload (rendered HTML, JSON text, counts).
EVENT_KEYS = ("conversation", "seq")


def summarize(batch) -> list[tuple[str, frozenset[int], dict[str, object]]]:
    """Published (user id, event) pairs as (type, user ids, identifying data), one entry per event however
    many people it went to (each person's copy carries their own payload)."""
    merged: dict[tuple, set[int]] = {}
    for user_id, event in batch:
        data = tuple((key, event[key]) for key in EVENT_KEYS if key in event)
        merged.setdefault((event["type"], data), set()).add(user_id)
    return [(kind, frozenset(users), dict(data)) for (kind, data), users in merged.items()]


@pytest.fixture
def pushes(monkeypatch):
    """Every event that left the process, in order, as (type, user ids, identifying data)."""
    sent: list[tuple[str, frozenset[int], dict[str, object]]] = []

    async def record(batch):
        sent.extend(summarize(batch))

    monkeypatch.setattr("accounts.events._send", record)
    return sent


@pytest.fixture
def published(monkeypatch):
    """Every event that left the process, in order, as (user id, event) with its whole payload."""
    sent: list[tuple[int, dict]] = []

    async def record(batch):
        sent.extend(batch)

    monkeypatch.setattr("accounts.events._send", record)
    return sent
