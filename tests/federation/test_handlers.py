"""Inbound stanzas (federation.handlers): what a remote server sends becomes state our users (and the remote
server) can observe: stored messages, Requests, presence, hop states, and the stanza errors that come back."""

from __future__ import annotations

import uuid

import pytest
from lxml import etree

from accounts import actions as account_actions
from accounts.models import RosterItem
from accounts.roster import roster_view
from chat import actions as chat_actions
from chat.actions.typing import set_typing
from chat.errors import RemoteNotSupported
from chat.models import Message, Participant
from federation import handlers, policy
from federation.models import OutboxItem, RemotePresence
from imweb import ratelimit as counters

pytestmark = pytest.mark.django_db

REMOTE = "prosody.localhost"
ROMEO = f"romeo@{REMOTE}"
ME = "alice@imweb.localhost"
CHATSTATES = "http://jabber.org/protocol/chatstates"


def stanza(xml: str) -> etree._Element:
    """A stanza as the transport hands it over: parsed in jabber:server."""
    return etree.fromstring(f"<stream xmlns='jabber:server'>{xml}</stream>")[0]


def receive(xml: str, domain: str = REMOTE) -> None:
    handlers.process(domain, stanza(xml))


def chat(body: str = "Hello", *, sender: str = f"{ROMEO}/phone", to: str = ME, id_: str | None = "m1") -> str:
    ident = f" id='{id_}'" if id_ else ""
    return (
        f"<message from='{sender}' to='{to}' type='chat'{ident}><body>{body}</body>"
        "<request xmlns='urn:xmpp:receipts'/></message>"
    )


def sent(kind: str | None = None) -> list[etree._Element]:
    """Stanzas queued for remote servers, oldest first, parsed back from the outbox."""
    rows = OutboxItem.objects.order_by("id")
    if kind is not None:
        rows = rows.filter(kind=kind)
    return [stanza(row.stanza) for row in rows]


def errors() -> list[tuple[str, str, str]]:
    """(to, id, condition) of every stanza error we queued."""
    found = []
    for element in sent():
        if element.get("type") != "error":
            continue
        error = element.find("{jabber:server}error")
        condition = next(etree.QName(child).localname for child in error if etree.QName(child).localname != "text")
        found.append((element.get("to"), element.get("id"), condition))
    return found


@pytest.fixture
def me(make_user):
    return make_user("alice")


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(counters, "clock", lambda: 1_700_000_000.0)


def make_contacts(user, jid: str = ROMEO) -> None:
    """`user` asked `jid`, who accepted and asked back, and `user` accepted: subscription both."""
    account_actions.request_subscription(user, jid)
    account_actions.receive_subscription(user, jid, "subscribed")
    account_actions.receive_subscription(user, jid, "subscribe")
    account_actions.accept_subscription(user, jid)
    assert RosterItem.objects.get(owner=user, jid=jid).subscription == "both"


# --- authorisation ----------------------------------------------------------------------------------------


def test_a_spoofed_from_is_refused_to_the_authenticated_server_and_nothing_is_stored(me):
    receive(chat(sender="mallory@evil.example/x"))

    assert Message.objects.count() == 0
    assert errors() == [(REMOTE, "m1", "forbidden")]  # never to the claimed address


@pytest.mark.parametrize(
    "to", ["nobody@imweb.localhost", "alice@imweb.localhost"], ids=["nonexistent", "blocks the sender"]
)
def test_a_blocked_sender_gets_exactly_what_a_nonexistent_user_gets(me, to):
    account_actions.block_jid(me, ROMEO)
    receive(chat(to=to))

    assert Message.objects.count() == 0
    # The same reply, from the address they wrote to, whichever of the two it is.
    reply = sent()[-1]
    assert (reply.get("from"), reply.get("to"), reply.get("id"), reply.get("type")) == (to, f"{ROMEO}/phone", "m1",
                                                                                         "error")  # fmt: skip
    assert errors() == [(f"{ROMEO}/phone", "m1", "service-unavailable")]


def test_blocking_the_whole_server_refuses_its_people_the_same_way(me):
    account_actions.block_jid(me, REMOTE)
    receive(chat())
    receive(f"<presence from='{ROMEO}' to='{ME}' type='subscribe'/>")

    assert Message.objects.count() == 0
    assert not RosterItem.objects.filter(owner=me, jid=ROMEO).exists()
    assert errors() == [(f"{ROMEO}/phone", "m1", "service-unavailable")]  # presence: silence, as for nobody


def test_a_denied_server_gets_nothing_not_even_an_error(me):
    policy.set_policy(REMOTE, "deny")
    receive(chat())

    assert Message.objects.count() == 0
    assert sent() == []


def test_a_stanza_to_another_domain_is_refused(me):
    receive(chat(to="alice@elsewhere.example"))
    assert errors() == [(f"{ROMEO}/phone", "m1", "item-not-found")]
    assert sent()[-1].get("from") == "imweb.localhost"


# --- messages ---------------------------------------------------------------------------------------------


def test_a_message_from_a_contact_is_stored_told_and_acknowledged(me, woken, django_capture_on_commit_callbacks):
    make_contacts(me)
    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        receive(chat("Wherefore art thou?"))

    message = Message.objects.get()
    assert (message.sender_jid, message.sender, message.body, message.seq) == (ROMEO, None, "Wherefore art thou?", 1)
    mine = Participant.objects.get(conversation=message.conversation, user=me)
    assert not mine.is_request
    assert woken == {me.pk}
    receipt = sent("receipt")[-1]
    assert (receipt.get("from"), receipt.get("to")) == (ME, ROMEO)
    assert receipt.find("{urn:xmpp:receipts}received").get("id") == "m1"


def test_the_conversation_is_the_same_one_a_local_send_uses(me):
    make_contacts(me)
    mine = chat_actions.send_message(me, to=ROMEO, body="Romeo?", client_id=uuid.uuid4())
    receive(chat("Here!"))

    theirs = Message.objects.get(sender_jid=ROMEO)
    assert theirs.conversation_id == mine.conversation_id
    assert [m.body for m in chat_actions.messages_after(me, mine.conversation_id, 0)] == ["Romeo?", "Here!"]


def test_a_first_message_from_a_stranger_waits_in_requests(me, woken, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        receive(chat("Buy my potion"))

    mine = Participant.objects.get(user=me)
    assert mine.is_request
    summary = chat_actions.conversations_for(me)
    assert [s.participant.is_request for s in summary] == [True]


def test_a_redelivered_message_is_stored_once_and_acknowledged_again(me):
    receive(chat("once", id_="same"))
    receive(chat("once", id_="same"))

    assert Message.objects.count() == 1
    assert [r.find("{urn:xmpp:receipts}received").get("id") for r in sent("receipt")] == ["same", "same"]


def test_the_origin_id_deduplicates_even_when_the_stanza_id_changes(me):
    for stanza_id in ("first", "second"):
        receive(
            f"<message from='{ROMEO}' to='{ME}' type='chat' id='{stanza_id}'><body>hi</body>"
            "<origin-id xmlns='urn:xmpp:sid:0' id='o-1'/></message>"
        )
    assert Message.objects.count() == 1


def test_messages_without_any_id_are_all_stored(me):
    receive(chat("one", id_=None))
    receive(chat("two", id_=None))

    assert list(Message.objects.order_by("seq").values_list("body", flat=True)) == ["one", "two"]
    assert sent("receipt") == []  # a receipt needs an id to name


@pytest.mark.parametrize(
    ("xml", "condition"),
    [
        (f"<message from='{ROMEO}' to='{ME}' type='chat' id='m1'><body>   </body></message>", "not-acceptable"),
        (chat("x" * 10_001), "not-acceptable"),
        (f"<message from='{ROMEO}' to='{ME}' type='groupchat' id='m1'><body>hi</body></message>",
         "service-unavailable"),
        (f"<iq from='{ROMEO}/a' to='{ME}' type='get' id='m1'><query xmlns='jabber:iq:version'/></iq>",
         "service-unavailable"),
        (f"<message from='{ROMEO}' to='{ME}@' type='chat' id='m1'><body>hi</body></message>", "jid-malformed"),
    ],
    ids=["empty body", "too long", "groupchat", "iq get", "malformed to"],
)  # fmt: skip
def test_what_cannot_be_processed_gets_a_precise_error_and_nothing_is_stored(me, xml, condition):
    receive(xml)

    assert Message.objects.count() == 0
    assert [error[2] for error in errors()] == [condition]
    # The next good stanza is served as usual.
    receive(chat("fine", id_="m2"))
    assert Message.objects.get().body == "fine"


@pytest.mark.parametrize(
    "xml",
    [
        f"<message from='{ROMEO}' to='{ME}' type='headline'><body>news</body></message>",
        f"<iq from='{ROMEO}/a' to='{ME}' type='result' id='x'/>",
        f"<message from='{ROMEO}' to='{ME}' type='error' id='unknown'><error type='cancel'/></message>",
        f"<presence from='{ROMEO}' to='{ME}' type='error'/>",
    ],
    ids=["headline", "iq result", "error about nothing of ours", "presence error"],
)
def test_what_needs_no_answer_gets_none(me, xml):
    receive(xml)
    assert Message.objects.count() == 0
    assert sent() == []


def test_the_rate_limit_per_sender_refuses_with_one_resource_constraint_per_window(me, settings, fixed_clock):
    settings.IMWEB_FEDERATION_SENDER_RATE_LIMITS = ((3, 60),)
    for n in range(6):
        receive(chat(f"spam {n}", id_=f"s{n}"))

    assert Message.objects.count() == 3
    assert [error[2] for error in errors()] == ["resource-constraint"]
    # Another sender on the same server still gets through: the per-sender budget is theirs alone.
    receive(chat("hello", sender=f"juliet@{REMOTE}", id_="j1"))
    assert Message.objects.filter(sender_jid=f"juliet@{REMOTE}").count() == 1


def test_the_rate_limit_per_domain_covers_all_its_senders(me, settings, fixed_clock):
    settings.IMWEB_FEDERATION_DOMAIN_RATE_LIMITS = ((4, 60),)
    for n in range(6):
        receive(chat(f"n{n}", sender=f"user{n}@{REMOTE}", id_=f"d{n}"))
    assert Message.objects.count() == 4
    assert [error[2] for error in errors()] == ["resource-constraint"]


# --- receipts and errors for what we sent -------------------------------------------------------------------


def test_a_receipt_marks_our_copy_delivered(me):
    message = chat_actions.send_message(me, to=ROMEO, body="Are you there?", client_id=uuid.uuid4())
    receive(
        f"<message from='{ROMEO}/phone' to='{ME}' id='r1'>"
        f"<received xmlns='urn:xmpp:receipts' id='{message.client_id}'/></message>"
    )
    assert OutboxItem.objects.get(message=message).state == OutboxItem.State.DELIVERED


def test_an_error_marks_our_copy_failed_with_the_reason_in_plain_words(me):
    message = chat_actions.send_message(me, to=ROMEO, body="Are you there?", client_id=uuid.uuid4())
    receive(
        f"<message from='{ROMEO}' to='{ME}' type='error' id='{message.client_id}'><error type='cancel'>"
        "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    )
    item = OutboxItem.objects.get(message=message)
    assert (item.state, item.error) == (OutboxItem.State.FAILED, f"{REMOTE} refused it: service unavailable")


def test_someone_else_cannot_mark_our_copy(me):
    message = chat_actions.send_message(me, to=ROMEO, body="Are you there?", client_id=uuid.uuid4())
    receive(
        f"<message from='mallory@{REMOTE}' to='{ME}' id='r1'>"
        f"<received xmlns='urn:xmpp:receipts' id='{message.client_id}'/></message>"
    )
    assert OutboxItem.objects.get(message=message).state == OutboxItem.State.QUEUED


# --- subscriptions and presence ---------------------------------------------------------------------------


def test_a_remote_request_lands_in_requests(me):
    receive(f"<presence from='{ROMEO}' to='{ME}' type='subscribe'/>")

    assert [row.jid for row in roster_view(me).requests] == [ROMEO]


def test_a_request_to_nobody_gets_silence(me):
    receive(f"<presence from='{ROMEO}' to='nobody@imweb.localhost' type='subscribe'/>")
    assert sent() == []
    assert not RosterItem.objects.exists()


def test_remote_presence_is_kept_and_shown_to_subscribed_users(me, woken, django_capture_on_commit_callbacks):
    make_contacts(me)
    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        receive(f"<presence from='{ROMEO}/phone' to='{ME}'><show>away</show><status>balcony</status></presence>")

    assert woken == {me.pk}
    row = next(row for group in roster_view(me).groups for row in group.rows)
    assert (row.jid, row.show, row.presence.status) == (ROMEO, "away", "balcony")

    receive(f"<presence from='{ROMEO}/phone' to='{ME}' type='unavailable'/>")
    assert [row.jid for row in roster_view(me).offline] == [ROMEO]


def test_presence_from_someone_nobody_subscribed_to_is_not_kept(me):
    receive(f"<presence from='{ROMEO}' to='{ME}'><show>chat</show></presence>")
    assert not RemotePresence.objects.exists()


@pytest.mark.parametrize("contact", [True, False], ids=["contact", "stranger"])
def test_a_probe_is_answered_only_for_a_contact(me, contact):
    if contact:
        make_contacts(me)
    already = len(sent("presence"))
    account_actions.open_session(me, "tab-1")

    receive(f"<presence from='{ROMEO}' to='{ME}' type='probe'/>")

    answers = sent("presence")[already:]
    if contact:
        assert [a.get("type") for a in answers][-1] is None  # available
    else:
        assert answers == []


def test_handle_never_lets_a_failure_reach_the_stream(me, monkeypatch):
    import asyncio

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(handlers, "process", broken)
    asyncio.run(handlers.handle(REMOTE, stanza(chat())))  # logged, not raised


# --- chat states (XEP-0085) -------------------------------------------------------------------------------


@pytest.fixture
def typing_events(monkeypatch):
    """Typing events published to users' groups, as (user ids, event) (recorded where they leave the process)."""
    seen = []

    async def record(batch):
        for user_id, event in batch:
            if event["type"] == "typing.update":
                seen.append(({user_id}, event))

    monkeypatch.setattr("accounts.events._send", record)
    return seen


def test_remote_typing_reaches_the_recipient_s_screens(me, typing_events, django_capture_on_commit_callbacks):
    make_contacts(me)
    account_actions.rename_contact(me, ROMEO, "Romeo M.")
    message = chat_actions.send_message(me, to=ROMEO, body="Romeo?", client_id=uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=True):
        receive(f"<message from='{ROMEO}/phone' to='{ME}' type='chat'><composing xmlns='{CHATSTATES}'/></message>")
        receive(f"<message from='{ROMEO}/phone' to='{ME}' type='chat'><paused xmlns='{CHATSTATES}'/></message>")

    assert [(ids, e["conversation"], e["jid"], e["name"], e["started"]) for ids, e in typing_events] == [
        ({me.pk}, message.conversation_id, ROMEO, "Romeo M.", True),
        ({me.pk}, message.conversation_id, ROMEO, "Romeo M.", False),
    ]
    assert Message.objects.count() == 1  # chat states are never stored
    assert sent("chatstate") == []


def test_a_stranger_s_typing_is_not_shown(me, typing_events, django_capture_on_commit_callbacks):
    receive(chat("hello"))  # waits in Requests
    with django_capture_on_commit_callbacks(execute=True):
        receive(f"<message from='{ROMEO}' to='{ME}' type='chat'><composing xmlns='{CHATSTATES}'/></message>")
    assert typing_events == []


@pytest.mark.parametrize("send_typing", [True, False], ids=["typing on", "typing off"])
def test_our_typing_goes_to_the_remote_person_unless_turned_off_and_is_never_stored(
    me, send_typing, monkeypatch, django_capture_on_commit_callbacks
):
    make_contacts(me)
    message = chat_actions.send_message(me, to=ROMEO, body="Romeo?", client_id=uuid.uuid4())
    me.send_typing = send_typing
    me.save()
    handed: list[dict[str, str]] = []  # what went to the federation process
    monkeypatch.setattr("federation.outbox.publish", handed.append)

    with django_capture_on_commit_callbacks(execute=True):
        set_typing(me, message.conversation_id, True)
        set_typing(me, message.conversation_id, False)

    assert sent("chatstate") == []  # typing is ephemeral: never an outbox row
    assert all(event["type"] == "federation.ephemeral" and event["domain"] == REMOTE for event in handed)
    states = [[etree.QName(child).localname for child in etree.fromstring(e["stanza"])] for e in handed]
    assert states == ([["composing", "no-store"], ["paused", "no-store"]] if send_typing else [])


def test_coming_online_announces_us_and_probes_remote_contacts_once(me):
    make_contacts(me)
    already = len(sent("presence"))

    account_actions.open_session(me, "tab-1")
    account_actions.open_session(me, "tab-2")  # a second tab changes nothing remote

    assert [(p.get("type"), p.get("to")) for p in sent("presence")[already:]] == [(None, ROMEO), ("probe", ROMEO)]
    account_actions.close_session("tab-1")
    account_actions.close_session("tab-2")
    assert sent("presence")[-1].get("type") == "unavailable"


def test_rooms_stay_local_with_a_clear_error(me):
    make_contacts(me)
    with pytest.raises(RemoteNotSupported, match="Rooms can only have members on this server for now"):
        chat_actions.create_room(me, "Verona", members=[ROMEO])


def test_floods_of_presence_and_errors_are_counted_but_never_answered(me, settings, fixed_clock):
    settings.IMWEB_FEDERATION_SENDER_RATE_LIMITS = ((2, 60),)
    message = chat_actions.send_message(me, to=ROMEO, body="Are you there?", client_id=uuid.uuid4())
    already = len(sent())
    for _ in range(3):
        receive(f"<presence from='{ROMEO}' to='{ME}' type='subscribe'/>")
    receive(
        f"<message from='{ROMEO}' to='{ME}' type='error' id='{message.client_id}'><error type='cancel'>"
        "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    )

    assert sent()[already:] == []
    # The error answers our own message, so it counts against the server's budget only and still lands.
    assert OutboxItem.objects.get(message=message).state == OutboxItem.State.FAILED


def test_a_burst_of_receipts_after_an_outage_is_not_a_flood(me, settings, fixed_clock):
    settings.IMWEB_FEDERATION_SENDER_RATE_LIMITS = ((3, 60),)
    settings.IMWEB_MESSAGE_RATE_LIMITS = ((100, 10),)
    messages = [chat_actions.send_message(me, to=ROMEO, body=f"m{n}", client_id=uuid.uuid4()) for n in range(10)]
    for message in messages:
        receive(
            f"<message from='{ROMEO}/phone' to='{ME}' id='r{message.seq}'>"
            f"<received xmlns='urn:xmpp:receipts' id='{message.client_id}'/></message>"
        )

    states = set(OutboxItem.objects.filter(message__in=messages).values_list("state", flat=True))
    assert states == {OutboxItem.State.DELIVERED}
    assert errors() == []
    # The person's own budget is untouched by the receipts: their next messages still get through.
    for n in range(3):
        receive(chat(f"after {n}", id_=f"a{n}"))
    assert Message.objects.filter(sender_jid=ROMEO).count() == 3
