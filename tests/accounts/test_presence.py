"""Presence: derived from live tabs, shown only to contacts who were granted it, never to the blocked."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts import actions
from accounts.errors import InvalidProfile
from accounts.models import PresenceSession, RosterItem, Show

pytestmark = pytest.mark.django_db


@pytest.fixture
def friends(alice, bob):
    actions.request_subscription(alice, bob.jid)
    actions.accept_subscription(bob, alice.jid)
    return alice, bob


def reload(user):
    user.refresh_from_db()
    return user


@pytest.mark.parametrize(
    ("chosen", "tabs_idle", "seen"),
    [
        ("available", [], "offline"),
        ("available", [False], "available"),
        ("available", [True], "away"),
        ("available", [True, False], "available"),  # the most available tab wins
        ("available", [True, True], "away"),
        ("dnd", [True], "dnd"),
        ("dnd", [False], "dnd"),
        ("away", [False], "away"),
        ("xa", [False, True], "xa"),
        ("invisible", [False], "offline"),
        ("invisible", [], "offline"),
    ],
)
def test_effective_presence_from_the_chosen_state_and_the_open_tabs(alice, chosen, tabs_idle, seen):
    actions.set_presence(alice, show=chosen)
    for n, idle in enumerate(tabs_idle):
        actions.open_session(alice, f"tab{n}")
        actions.set_session_idle(f"tab{n}", idle)
    assert actions.effective_show(reload(alice)) == seen


def test_contacts_see_presence_and_status(friends):
    alice, bob = friends
    actions.open_session(bob, "bob-tab")
    actions.set_presence(bob, show=Show.AWAY, status="at lunch")

    seen = actions.presence_for_viewer(alice, reload(bob))

    assert (seen.show, seen.status) == ("away", "at lunch")


def test_a_non_contact_learns_nothing(alice, bob, make_user):
    stranger = make_user("mallory")
    actions.open_session(bob, "bob-tab")
    actions.set_presence(bob, show=Show.AVAILABLE, status="here")
    actions.request_subscription(stranger, bob.jid)  # asking is not enough

    assert actions.presence_for_viewer(stranger, reload(bob)) is None
    assert actions.presence_for_viewer(alice, reload(bob)) is None


def test_presence_follows_the_subscription_direction(alice, bob):
    # Bob shares with Alice (Bob's row: from), but Alice does not share with Bob.
    RosterItem.objects.create(owner=bob, jid=alice.jid, subscription="from", listed=True)
    RosterItem.objects.create(owner=alice, jid=bob.jid, subscription="to", listed=True)
    actions.open_session(alice, "a")
    actions.open_session(bob, "b")

    assert actions.presence_for_viewer(alice, bob).show == "available"
    assert actions.presence_for_viewer(bob, alice) is None


@pytest.mark.parametrize("who_blocks", ["bob blocks alice", "alice blocks bob"])
def test_a_block_either_way_hides_presence_even_between_contacts(friends, who_blocks):
    alice, bob = friends
    actions.open_session(bob, "bob-tab")
    blocker, blocked = (bob, alice) if who_blocks == "bob blocks alice" else (alice, bob)
    actions.block_jid(blocker, blocked.jid)

    assert actions.presence_for_viewer(alice, reload(bob)) is None
    assert actions.presence_for_viewer(bob, reload(alice)) is None


def test_closing_the_last_tab_goes_offline_and_records_last_seen(friends):
    alice, bob = friends
    actions.open_session(bob, "one")
    actions.open_session(bob, "two")
    actions.close_session("one")
    assert actions.presence_for_viewer(alice, reload(bob)).show == "available"

    actions.close_session("two")

    seen = actions.presence_for_viewer(alice, reload(bob))
    assert seen.show == "offline"
    assert seen.last_seen is not None
    assert (timezone.now() - seen.last_seen).total_seconds() < 60


def test_last_seen_can_be_hidden(friends):
    alice, bob = friends
    bob.show_last_seen = False
    bob.save()
    actions.open_session(bob, "one")
    actions.close_session("one")
    assert actions.presence_for_viewer(alice, reload(bob)).last_seen is None


def test_only_real_changes_wake_the_audience(friends, woken, django_capture_on_commit_callbacks, make_user):
    alice, bob = friends
    stranger = make_user("mallory")
    with django_capture_on_commit_callbacks(execute=True):
        actions.open_session(bob, "one")
    assert woken == {alice.pk, bob.pk}  # not the stranger
    assert stranger.pk not in woken

    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        actions.open_session(bob, "two")  # still "available": nobody needs a re-render
    assert woken == set()


def test_swept_sessions_go_offline(friends, settings):
    alice, bob = friends
    actions.open_session(bob, "crashed-process-tab")
    PresenceSession.objects.update(heartbeat_at=timezone.now() - timezone.timedelta(hours=1))

    assert actions.sweep_stale_sessions() == 1
    assert actions.presence_for_viewer(alice, reload(bob)).show == "offline"


def test_a_heartbeat_keeps_a_session_and_reports_a_swept_one(alice):
    actions.open_session(alice, "tab")
    assert actions.heartbeat("tab") is True
    actions.close_session("tab")
    assert actions.heartbeat("tab") is False


@pytest.mark.parametrize(
    ("show", "status", "error"),
    [
        ("sleeping", None, "is not a presence state"),
        ("offline", None, "is not a presence state"),
        ("away", "z" * 141, "at most 140"),
        ("away", "hi\u202e", "control characters"),
    ],
)
def test_bad_presence_input_is_refused_and_changes_nothing(alice, show, status, error):
    with pytest.raises(InvalidProfile, match=error):
        actions.set_presence(alice, show=show, status=status)
    assert (reload(alice).presence_show, alice.status_message) == ("available", "")
