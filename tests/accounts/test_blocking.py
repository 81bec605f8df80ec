"""Blocking (XEP-0191 semantics): a blocked party gets nothing, and cannot tell blocked from nonexistent."""

from __future__ import annotations

import pytest

from accounts import actions
from accounts.errors import ContactError, NoSuchUser
from accounts.models import RosterItem

pytestmark = pytest.mark.django_db


def test_a_blocked_user_gets_the_same_answer_as_for_a_nonexistent_account(alice, bob):
    actions.block_jid(bob, alice.jid)

    with pytest.raises(NoSuchUser) as blocked:
        actions.request_subscription(alice, bob.jid)
    with pytest.raises(NoSuchUser) as missing:
        actions.request_subscription(alice, "nobody@imweb.localhost")

    assert str(blocked.value) == str(missing.value).replace("nobody", "bob")
    assert not RosterItem.objects.filter(owner=bob).exists()  # nothing reached Bob


def test_blocking_from_requests_removes_the_request(alice, bob):
    actions.request_subscription(alice, bob.jid)
    actions.block_jid(bob, alice.jid)

    assert not RosterItem.objects.filter(owner=bob, pending_in=True).exists()


def test_a_blocked_user_probing_presence_sees_nothing(alice, bob):
    actions.request_subscription(alice, bob.jid)
    actions.accept_subscription(bob, alice.jid)
    actions.open_session(bob, "tab")
    actions.block_jid(bob, alice.jid)

    assert actions.presence_for_viewer(alice, bob) is None


def test_blocking_a_domain_covers_every_address_on_it(alice):
    actions.block_jid(alice, "spam.example")
    assert actions.is_blocked(alice, "anyone@spam.example")
    assert actions.is_blocked(alice, "other@spam.example")
    assert not actions.is_blocked(alice, "friend@good.example")


def test_unblocking_restores_presence(alice, bob):
    actions.request_subscription(alice, bob.jid)
    actions.accept_subscription(bob, alice.jid)
    actions.open_session(bob, "tab")
    actions.block_jid(bob, alice.jid)
    actions.unblock_jid(bob, alice.jid)

    assert actions.presence_for_viewer(alice, bob).show == "available"


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("alice@imweb.localhost", "cannot block yourself"),
        ("imweb.localhost", "cannot block your own server"),
        ("not an address", "contains spaces"),
    ],
)
def test_unblockable_targets_are_refused(alice, target, error):
    with pytest.raises(Exception, match=error):
        actions.block_jid(alice, target)


def test_blocking_twice_and_unblocking_a_stranger_explain_themselves(alice, bob):
    actions.block_jid(alice, bob.jid)
    with pytest.raises(ContactError, match="already blocked"):
        actions.block_jid(alice, bob.jid)
    with pytest.raises(ContactError, match="is not blocked"):
        actions.unblock_jid(alice, "carol@imweb.localhost")


def test_you_cannot_add_someone_you_blocked(alice, bob):
    actions.block_jid(alice, bob.jid)
    with pytest.raises(ContactError, match="Unblock them first"):
        actions.request_subscription(alice, bob.jid)


def test_directory_search_finds_people_by_name_but_not_those_hiding_or_blocking(alice, make_user):
    make_user("bobby", display_name="Robert Tables")
    make_user("bobcat", directory_visible=False)
    blocker = make_user("bobo")
    actions.block_jid(blocker, alice.jid)

    assert [u.username for u in actions.search_directory(alice, "bob")] == ["bobby"]
    assert [u.username for u in actions.search_directory(alice, "tables")] == ["bobby"]
    assert actions.search_directory(alice, "b") == []  # too short to search
    assert actions.search_directory(alice, "alice") == []  # not yourself
