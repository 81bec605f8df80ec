"""Subscriptions (RFC 6121 §3) between two local people: every transition, table-driven, plus bad input."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from accounts import actions
from accounts.errors import AccountError, ContactError, InvalidJid, NoSuchUser, RateLimited
from accounts.models import RosterItem

pytestmark = pytest.mark.django_db

# A row as (listed, subscription, ask_out, pending_in); None = no row at all.
NO_ROW = None


def row(owner, other):
    item = RosterItem.objects.filter(owner=owner, jid=other.jid).first()
    return None if item is None else (item.listed, item.subscription, item.ask_out, item.pending_in)


STEPS = {
    "A requests B": lambda a, b: actions.request_subscription(a, b.jid),
    "B requests A": lambda a, b: actions.request_subscription(b, a.jid),
    "B accepts A": lambda a, b: actions.accept_subscription(b, a.jid),
    "B declines A": lambda a, b: actions.decline_subscription(b, a.jid),
    "A removes B": lambda a, b: actions.remove_contact(a, b.jid),
    "B removes A": lambda a, b: actions.remove_contact(b, a.jid),
}

TRANSITIONS = [
    # history, event, A's row about B, B's row about A
    ([], "A requests B", (True, "none", True, False), (False, "none", False, True)),
    (["A requests B"], "B accepts A", (True, "both", False, False), (True, "both", False, False)),
    (["A requests B"], "B declines A", (True, "none", False, False), NO_ROW),
    (["A requests B"], "A removes B", NO_ROW, NO_ROW),
    (["A requests B"], "B requests A", (True, "both", False, False), (True, "both", False, False)),
    (["A requests B", "B accepts A"], "A removes B", NO_ROW, (True, "none", False, False)),
    (["A requests B", "B accepts A"], "B removes A", (True, "none", False, False), NO_ROW),
    (["A requests B", "B declines A"], "B requests A", (True, "none", False, True), (True, "none", True, False)),
    (["A requests B", "B accepts A", "A removes B"], "A requests B", (True, "none", True, False),
     (True, "none", False, True)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("history", "event", "a_row", "b_row"), TRANSITIONS, ids=[t[1] + " after " + "; ".join(t[0]) for t in TRANSITIONS]
)
def test_subscription_transition(alice, bob, woken, history, event, a_row, b_row, django_capture_on_commit_callbacks):
    for step in history:
        STEPS[step](alice, bob)

    with django_capture_on_commit_callbacks(execute=True):
        STEPS[event](alice, bob)

    assert row(alice, bob) == a_row
    assert row(bob, alice) == b_row
    assert woken == {alice.pk, bob.pk}  # both screens update


@pytest.mark.parametrize(
    ("history", "event", "error"),
    [
        (["A requests B"], "A requests B", "already asked"),
        (["A requests B", "B accepts A"], "A requests B", "already in your contacts"),
        (["A requests B", "A removes B"], "B accepts A", "may have been withdrawn"),
        (["A requests B", "A removes B"], "B declines A", "may have been withdrawn"),
        ([], "B accepts A", "no request from"),
        ([], "A removes B", "is not in your contacts"),
        (["A requests B", "B declines A"], "A requests B", "declined your request"),
    ],
    ids=["double request", "already a contact", "accept withdrawn", "decline withdrawn", "accept nothing",
         "remove stranger", "ask again too soon"],
)  # fmt: skip
def test_refused_transitions_explain_and_change_nothing(
    alice, bob, woken, history, event, error, django_capture_on_commit_callbacks
):
    for step in history:
        STEPS[step](alice, bob)
    before = (row(alice, bob), row(bob, alice))

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(AccountError) as raised:
        STEPS[event](alice, bob)

    assert error in str(raised.value)
    assert (row(alice, bob), row(bob, alice)) == before
    assert woken == set()


def test_asking_again_after_a_decline_is_allowed_once_the_cooldown_is_over(alice, bob, settings):
    actions.request_subscription(alice, bob.jid)
    actions.decline_subscription(bob, alice.jid)
    with pytest.raises(RateLimited):
        actions.request_subscription(alice, bob.jid)

    RosterItem.objects.filter(owner=alice).update(
        declined_at=timezone.now() - timezone.timedelta(seconds=settings.IMWEB_REREQUEST_COOLDOWN_SECONDS + 1)
    )
    actions.request_subscription(alice, bob.jid)
    assert row(bob, alice) == (False, "none", False, True)


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("", "Please enter an address"),
        ("bob", "missing the '@'"),
        ("@imweb.localhost", "nothing before the '@'"),
        ("bob@", "no server name"),
        ("bo b@imweb.localhost", "contains spaces"),
        ("bob<x>@imweb.localhost", "characters an address cannot have"),
        ("bob@exa mple.org", "contains spaces"),
        ("bob@-bad-.org", "not a valid server name"),
        ("bob@under_score.org", "not a valid server name"),
    ],
)
def test_malformed_addresses_get_a_precise_error(alice, typed, error):
    with pytest.raises(InvalidJid) as raised:
        actions.request_subscription(alice, typed)
    assert error in str(raised.value)
    assert not RosterItem.objects.exists()


def test_adding_yourself_is_refused(alice):
    with pytest.raises(ContactError, match="your own address"):
        actions.request_subscription(alice, "ALICE@imweb.localhost/phone")


def test_adding_a_nonexistent_local_user_is_refused_clearly(alice):
    with pytest.raises(NoSuchUser, match=re.escape("There is no account nobody@imweb.localhost")):
        actions.request_subscription(alice, "nobody@imweb.localhost")
    assert not RosterItem.objects.exists()


def test_addresses_are_normalised_before_use(alice, bob):
    item = actions.request_subscription(alice, "  xmpp:BOB@IMWEB.LOCALHOST/laptop ")
    assert item.jid == "bob@imweb.localhost"


def test_a_request_carries_an_optional_note(alice, bob):
    actions.request_subscription(alice, bob.jid, message="Hi Bob, it's Alice from the climbing club")
    assert RosterItem.objects.get(owner=bob).request_message == "Hi Bob, it's Alice from the climbing club"


def test_nicknames_and_groups(alice, bob, make_user):
    carol = make_user("carol")
    for other in (bob, carol):
        actions.request_subscription(alice, other.jid)
        actions.accept_subscription(other, alice.jid)

    actions.rename_contact(alice, bob.jid, "Bobby")
    actions.set_contact_groups(alice, bob.jid, ["Friends", "Climbing", " friends ", ""])
    actions.set_contact_groups(alice, carol.jid, ["Work"])

    item = RosterItem.objects.get(owner=alice, jid=bob.jid)
    assert item.name == "Bobby"
    assert sorted(g.name for g in item.groups.all()) == ["Climbing", "Friends", "friends"]
    actions.set_contact_groups(alice, carol.jid, [])
    assert sorted(alice.roster_groups.values_list("name", flat=True)) == ["Climbing", "Friends", "friends"]

    with pytest.raises(ContactError, match="at most 64"):
        actions.set_contact_groups(alice, bob.jid, ["x" * 65])
    with pytest.raises(ContactError, match="not in your contacts"):
        actions.rename_contact(alice, "nobody@imweb.localhost", "X")


# --- Remote contacts: our side of RFC 6121 §3; their server answers with presence stanzas -----------------

ROMEO = "romeo@montague.example"

REMOTE_STEPS = {
    "A requests R": lambda a: actions.request_subscription(a, ROMEO),
    "A accepts R": lambda a: actions.accept_subscription(a, ROMEO),
    "A declines R": lambda a: actions.decline_subscription(a, ROMEO),
    "A removes R": lambda a: actions.remove_contact(a, ROMEO),
    "R subscribes": lambda a: actions.receive_subscription(a, ROMEO, "subscribe"),
    "R subscribed": lambda a: actions.receive_subscription(a, ROMEO, "subscribed"),
    "R unsubscribes": lambda a: actions.receive_subscription(a, ROMEO, "unsubscribe"),
    "R unsubscribed": lambda a: actions.receive_subscription(a, ROMEO, "unsubscribed"),
}

REMOTE_TRANSITIONS = [
    # history, event, A's row about R, presence stanzas queued for R by the event (type or "available")
    ([], "A requests R", (True, "none", True, False), ["subscribe"]),
    (["A requests R"], "R subscribed", (True, "to", False, False), []),
    (["A requests R"], "R unsubscribed", (True, "none", False, False), []),
    (["A requests R"], "A removes R", NO_ROW, ["unsubscribe", "unsubscribed"]),
    ([], "R subscribes", (False, "none", False, True), []),
    (["R subscribes"], "A accepts R", (True, "from", True, False), ["subscribed", "unavailable", "subscribe"]),
    (["R subscribes"], "A declines R", NO_ROW, ["unsubscribed"]),
    (["R subscribes"], "A requests R", (True, "from", True, False), ["subscribed", "unavailable", "subscribe"]),
    (["A requests R"], "R subscribes", (True, "from", True, False), ["subscribed", "unavailable"]),
    (["R subscribes", "A accepts R"], "R subscribed", (True, "both", False, False), []),
    (["R subscribes", "A accepts R", "R subscribed"], "R unsubscribes", (True, "to", False, False), []),
    (["R subscribes", "A accepts R", "R subscribed"], "R unsubscribed", (True, "from", False, False), []),
    (["R subscribes", "A accepts R", "R subscribed"], "R subscribes", (True, "both", False, False), ["subscribed"]),
    (["R subscribes", "A accepts R", "R subscribed"], "A removes R", NO_ROW, ["unsubscribe", "unsubscribed"]),
    ([], "R subscribed", NO_ROW, []),  # §3.1.6: an approval nobody asked for changes nothing
    ([], "R unsubscribes", NO_ROW, []),
]  # fmt: skip


def queued_presence(jid):
    from federation.models import OutboxItem

    types = []
    for item in OutboxItem.objects.filter(recipient=jid, kind="presence").order_by("id"):
        found = re.search(r"type='([a-z]+)'", item.stanza)
        types.append(found.group(1) if found else "available")
    return types


@pytest.mark.parametrize(
    ("history", "event", "a_row", "sent"),
    REMOTE_TRANSITIONS,
    ids=[t[1] + " after " + "; ".join(t[0]) for t in REMOTE_TRANSITIONS],
)
def test_remote_subscription_transition(alice, woken, history, event, a_row, sent, django_capture_on_commit_callbacks):
    for step in history:
        REMOTE_STEPS[step](alice)
    already = len(queued_presence(ROMEO))
    before = remote_row(alice)
    woken.clear()

    with django_capture_on_commit_callbacks(execute=True):
        REMOTE_STEPS[event](alice)

    assert remote_row(alice) == a_row
    assert queued_presence(ROMEO)[already:] == sent
    assert woken == ({alice.pk} if a_row != before else set())  # her screens update when her list changed


def remote_row(owner):
    item = RosterItem.objects.filter(owner=owner, jid=ROMEO).first()
    return None if item is None else (item.listed, item.subscription, item.ask_out, item.pending_in)


def test_a_remote_decline_starts_the_cooldown_like_a_local_one(alice):
    actions.request_subscription(alice, ROMEO)
    actions.receive_subscription(alice, ROMEO, "unsubscribed")

    with pytest.raises(RateLimited, match="declined your request"):
        actions.request_subscription(alice, ROMEO)


def test_a_subscription_presence_from_a_local_address_is_refused(alice, bob):
    with pytest.raises(ContactError, match="on this server"):
        actions.receive_subscription(alice, bob.jid, "subscribe")


def test_deleting_an_account_removes_it_from_everyone_s_lists(alice, bob, woken, django_capture_on_commit_callbacks):
    actions.request_subscription(alice, bob.jid)
    actions.accept_subscription(bob, alice.jid)

    with django_capture_on_commit_callbacks(execute=True):
        actions.delete_account(bob)

    assert row(alice, bob) is None
    assert alice.pk in woken


def test_deleting_an_account_tells_remote_contacts_servers_to_drop_their_subscriptions(alice):
    juliet, nurse, friar = "juliet@capulet.example", "nurse@capulet.example", "friar@verona.example"
    for step in ("R subscribes", "A accepts R", "R subscribed"):  # Romeo: both ways
        REMOTE_STEPS[step](alice)
    actions.request_subscription(alice, juliet)  # asked, no answer yet
    actions.receive_subscription(alice, nurse, "subscribe")  # her request waits in Alice's Requests
    RosterItem.objects.create(owner=alice, jid=friar, listed=True)  # listed, nothing shared
    already = {jid: len(queued_presence(jid)) for jid in (ROMEO, juliet, nurse, friar)}

    actions.delete_account(alice)

    assert queued_presence(ROMEO)[already[ROMEO] :] == ["unavailable", "unsubscribe", "unsubscribed"]
    assert queued_presence(juliet)[already[juliet] :] == ["unsubscribe"]
    assert queued_presence(nurse)[already[nurse] :] == ["unsubscribed"]
    assert queued_presence(friar)[already[friar] :] == []


def test_blocking_a_remote_contact_stops_our_presence_and_unblocking_restores_it(alice):
    actions.receive_subscription(alice, ROMEO, "subscribe")
    actions.accept_subscription(alice, ROMEO)
    actions.open_session(alice, "tab")
    already = len(queued_presence(ROMEO))

    actions.block_jid(alice, "montague.example")  # the whole server: XEP-0191 §3.3
    actions.set_presence(alice, show="dnd", status="busy")  # not told to a blocked contact
    actions.unblock_jid(alice, "montague.example")

    assert queued_presence(ROMEO)[already:] == ["unavailable", "available"]


def test_contact_requests_are_limited_per_person_and_say_when_to_try_again(alice, make_user, settings):
    settings.IMWEB_CONTACT_REQUEST_RATE_LIMITS = ((3, 60),)
    people = [make_user(f"friend{n}") for n in range(5)]
    for person in people[:3]:
        actions.request_subscription(alice, person.jid)
    with pytest.raises(
        RateLimited, match=r"many contact requests in a short time. Try again in \d+ seconds?"
    ) as caught:
        actions.request_subscription(alice, people[3].jid)
    assert 1 <= caught.value.retry_after <= 60
    assert not RosterItem.objects.filter(owner=alice, jid=people[3].jid, ask_out=True).exists()
    # Someone who asked first can still be accepted: answering is not asking.
    actions.request_subscription(people[4], alice.jid)
    actions.request_subscription(alice, people[4].jid)
    assert RosterItem.objects.get(owner=alice, jid=people[4].jid).subscription == "both"
