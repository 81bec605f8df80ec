"""A process refreshes the presence sessions of all its sockets on one beat, in one write, and brings back
online the ones the sweeper closed while it could not reach the database."""

from __future__ import annotations

import asyncio

import pytest
from django.utils import timezone

from accounts import actions
from accounts.heartbeats import Heartbeats
from accounts.models import PresenceSession

pytestmark = pytest.mark.django_db(transaction=True)


def test_all_sessions_of_a_process_are_refreshed_together_and_a_swept_one_comes_back(alice, bob):
    for user, resource in ((alice, "a1"), (alice, "a2"), (bob, "b1")):
        actions.open_session(user, resource)
    long_ago = timezone.now() - timezone.timedelta(hours=1)
    PresenceSession.objects.update(heartbeat_at=long_ago)
    actions.close_session("b1")  # swept while this process could not reach the database
    reopened = []

    def reopen_for(user, resource):
        async def reopen():
            reopened.append(resource)
            await asyncio.to_thread(actions.open_session, user, resource)

        return reopen

    beats = Heartbeats()

    async def scenario():
        for user, resource in ((alice, "a1"), (alice, "a2"), (bob, "b1")):
            beats.sessions[resource] = reopen_for(user, resource)
        await beats.beat()

    asyncio.run(scenario())
    assert reopened == ["b1"]
    assert set(PresenceSession.objects.values_list("resource", flat=True)) == {"a1", "a2", "b1"}
    assert not PresenceSession.objects.filter(heartbeat_at=long_ago).exists()
    assert actions.effective_show(bob) == "available"


def test_refreshing_many_sessions_is_one_write_and_one_read(alice, django_assert_num_queries):
    resources = [f"tab{n}" for n in range(50)]
    for resource in resources:
        actions.open_session(alice, resource)
    with django_assert_num_queries(2):
        alive = actions.refresh_sessions([*resources, "gone"])
    assert alive == set(resources)
