"""What a message shows of its sender beside it: their picture, else their initial, the same in the page and in
the push rendered once for everyone, and read with the participants (no query per message)."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from accounts import actions as accounts
from chat import actions, fragments, queries
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def roomy_rate_limits(settings):
    """The tests below write more messages than a person may send in ten seconds."""
    settings.IMWEB_MESSAGE_RATE_LIMITS = ((10_000, 10),)


def send(user, to, body: str) -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


def with_picture(user):
    """A person who uploaded a picture (the file itself is not needed to name it)."""
    user.avatar = f"avatars/{user.pk}.png"
    user.avatar_version = 3
    user.save(update_fields=["avatar", "avatar_version"])
    return user


def message_html(page: str, body: str) -> str:
    """The HTML of the one message whose body is `body`."""
    found = [m for m in re.findall(r"<article .*?</article>", page, re.S) if f"<p>{body}</p>" in m]
    assert len(found) == 1, f"no single message {body!r}"
    return found[0]


@pytest.fixture
def chat(alice, bob):
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    with_picture(bob)
    first = send(alice, bob.jid, "hi bob")
    send(bob, first.conversation_id, "hi alice")
    return first.conversation_id


def test_the_page_shows_the_senders_picture_or_initial_beside_each_message(alice, bob, chat):
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("conversation", args=[chat])).content.decode()

    picture = reverse("avatar", args=["bob"]) + "?v=3"
    theirs = message_html(page, "hi alice")
    assert re.search(rf'class="message__avatar"[^>]*><img class="avatar avatar--sm" src="{re.escape(picture)}"', theirs)
    mine = message_html(page, "hi bob")  # no picture: the initial of her name (CSS hides it on her own side)
    assert re.search(r'class="message__avatar"[^>]*><span class="avatar avatar--initials avatar--sm">A</span>', mine)


def test_the_push_rendered_once_for_everyone_carries_the_same_avatar(bob, chat):
    conversation = Conversation.objects.get(pk=chat)
    items = queries.messages_before(bob, chat)
    html = fragments.messages(chat, queries.decorate(conversation, items), plain=False, viewer_jid=None)

    assert f'src="{reverse("avatar", args=["bob"])}?v=3"' in message_html(html, "hi alice")
    assert '<span class="avatar avatar--initials avatar--sm">A</span>' in message_html(html, "hi bob")


def test_room_events_show_no_avatar(alice, bob, chat):
    room = actions.create_room(alice, "Crag", members=[bob.jid])
    html = fragments.messages(room.pk, queries.decorate(room, queries.messages_before(alice, room.pk)), plain=False)

    assert "message--event" in html
    assert "message__avatar" not in html


def test_avatars_cost_no_query_per_message(alice, bob, chat, django_assert_num_queries):
    for n in range(30):
        send(alice if n % 2 else bob, chat, f"line {n}")
    conversation = Conversation.objects.get(pk=chat)
    items = queries.messages_before(alice, chat)

    with django_assert_num_queries(1):  # the participants, with their accounts
        decorated = queries.decorate(conversation, items, viewer_jid=alice.jid)
        html = fragments.messages(chat, decorated, plain=False, viewer_jid=alice.jid)

    assert html.count("avatar--sm") == 32
    assert html.count(f'src="{reverse("avatar", args=["bob"])}?v=3"') == 16
