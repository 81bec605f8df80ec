"""Every kind of socket in a user's group handles every event of the catalogue (Channels would close a socket
on an event it has no handler for), and the catalogue's constructors make the events those handlers read."""

from __future__ import annotations

import pytest

from accounts import events
from chat.api.stream import ApiStream
from chat.consumers import UserSocket


@pytest.mark.parametrize("socket", [UserSocket, ApiStream], ids=["web", "api"])
@pytest.mark.parametrize("event_type", events.EVENT_TYPES)
def test_every_socket_kind_handles_every_event(socket, event_type):
    handler = getattr(socket, event_type.replace(".", "_"), None)
    assert callable(handler), f"{socket.__name__} has no handler for {event_type!r}"


def test_each_constructor_names_its_event_type_from_the_catalogue():
    made = [
        events.message_new(1, 2, html="", api="{}", row="", unread=0, quiet=False, sender="a@x"),
        events.message_changed(1, 2, change="edited", html="", api="{}", row="", unread=0),
        events.receipt(1, 2, kind="read", jid="a@x", html="", unread=None),
        events.message_status(1, 2, html="", hops=[]),
        events.typing(1, jid="a@x", name="A", started=True),
        events.conversation_updated(1),
        events.conversation_removed(1),
        events.roster_changed(),
        events.account_closed("suspended"),
        events.profile_changed("a@x", name="A", avatar_url=""),
    ]
    assert sorted(event["type"] for event in made) == sorted(events.EVENT_TYPES)
