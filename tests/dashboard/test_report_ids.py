"""A report cannot quote a message its reporter never received, by any id shape.

As in tests/chat/test_authorization.py, Alice tries every shape of conversation id, and then every shape of
message number in her own conversation, through `file_report` and through the report page (GET and POST):
each must answer the same "no such message" and file, block and audit nothing. Her real messages work, so the
refusals are about the ids, not a broken door.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from accounts import actions as accounts
from accounts.models import BlockedJid
from chat import actions
from chat.models import Conversation, Message
from imweb.dashboard.models import AuditEntry, Report
from imweb.dashboard.reports import NO_SUCH_MESSAGE, ReportError, file_report

pytestmark = pytest.mark.django_db

CONVERSATION_SHAPES = [
    "other_pair",
    "left_room",
    "removed_from_room",
    "nonexistent",
    "zero",
    "negative",
    "huge",
    "non_numeric",
    "float_like",
    "empty",
    "unicode_digits",
]
SEQ_SHAPES = [
    "another_conversations",
    "nonexistent",
    "zero",
    "negative",
    "huge",
    "non_numeric",
    "float_like",
    "empty",
    "unicode_digits",
]
# Shapes that are numbers may also arrive as numbers (from code, or a JSON API built on file_report).
NUMERIC = ["other_pair", "left_room", "removed_from_room", "nonexistent", "zero", "negative", "huge"]


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def send(user, to, body: str = "hello") -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


@pytest.fixture
def world(make_user, settings):
    """Alice; conversations she is not (or no longer) in, each with a message from someone else that she never
    received at seq 4 (in the rooms: 1 is the room's "created" line, 2 a message she received, 3 her leaving);
    her own conversation with Bob, where Bob's message is seq 1; and a conversation with more
    messages than hers, so some seqs exist only elsewhere."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()
    alice, bob, carol, dave = (make_user(name) for name in ("alice", "bob", "carol", "dave"))
    befriend(alice, bob)
    befriend(bob, carol)
    befriend(carol, dave)
    own = send(bob, alice.jid, "bob to alice").conversation_id
    other_pair = send(carol, dave.jid, "carol to dave").conversation_id
    for n in range(5):
        send(dave, carol.jid, f"dave to carol {n}")
    left = actions.create_room(bob, "Left", members=[alice.jid])
    send(bob, left.pk, "before alice left")  # seq 2: she received this one
    actions.leave(alice, left.pk)  # seq 3: the line saying she left
    send(bob, left.pk, "after alice left")  # seq 4: she never received it
    removed = actions.create_room(bob, "Removed", members=[alice.jid, carol.jid])
    send(bob, removed.pk, "before alice was removed")
    actions.remove_member(bob, removed.pk, alice.jid)
    send(bob, removed.pk, "after alice was removed")
    conversations = {
        "other_pair": str(other_pair),
        "left_room": str(left.pk),
        "removed_from_room": str(removed.pk),
        "nonexistent": str(Conversation.objects.order_by("-pk").first().pk + 1000),
        "zero": "0",
        "negative": "-1",
        "huge": str(2**63),
        "non_numeric": "abc",
        "float_like": "2.0",
        "empty": "",
        "unicode_digits": "\u0662",  # ARABIC-INDIC DIGIT TWO: a digit to str.isdigit(), not an id
    }
    seqs = {
        "another_conversations": "4",  # exists in carol and dave's conversation only
        "nonexistent": "1000",
        "zero": "0",
        "negative": "-1",
        "huge": str(2**63),
        "non_numeric": "abc",
        "float_like": "1.0",
        "empty": "",
        "unicode_digits": "\u0661",
    }
    return alice, own, conversations, seqs


def snapshot() -> tuple:
    """Everything a refused report could have changed."""
    return (
        Report.objects.count(),
        list(AuditEntry.objects.values_list("pk", flat=True)),
        list(BlockedJid.objects.values_list("owner_id", "jid")),
    )


def refusal(alice, conversation_id: object, seq: object) -> str:
    try:
        file_report(alice, kind="message", reason="spam", conversation_id=conversation_id, seq=seq, also_block=True)
    except ReportError as err:
        return str(err)
    return "filed"


def test_every_shape_of_foreign_conversation_is_no_such_message(world):
    alice, _, conversations, _ = world
    before = snapshot()
    answers = {shape: refusal(alice, conversations[shape], "4") for shape in CONVERSATION_SHAPES}
    answers |= {f"{shape} (number)": refusal(alice, int(conversations[shape]), 4) for shape in NUMERIC}
    answers["float_like (number)"] = refusal(alice, 2.0, 4)
    answers["true"] = refusal(alice, True, 4)
    answers["none"] = refusal(alice, None, 4)
    assert answers == dict.fromkeys(answers, NO_SUCH_MESSAGE)
    assert snapshot() == before


def test_every_shape_of_message_number_in_her_own_conversation_is_no_such_message(world):
    alice, own, _, seqs = world
    before = snapshot()
    answers = {shape: refusal(alice, own, seqs[shape]) for shape in SEQ_SHAPES}
    for shape in ["another_conversations", "nonexistent", "zero", "negative", "huge"]:
        answers[f"{shape} (number)"] = refusal(alice, own, int(seqs[shape]))
    answers["float_like (number)"] = refusal(alice, own, 1.0)
    answers["true"] = refusal(alice, own, True)
    answers["none"] = refusal(alice, own, None)
    assert answers == dict.fromkeys(answers, NO_SUCH_MESSAGE)
    assert snapshot() == before


def _bodies(client: Client, pairs: dict[str, tuple[str, str]]) -> dict[str, tuple[int, int, bool]]:
    """(GET status, POST status, whether the answer says "no such message") for each (conversation, seq)."""
    answers = {}
    for label, (conversation_id, seq) in pairs.items():
        url = reverse("report:message", args=["C", "S"]).replace("/C/S", f"/{conversation_id}/{seq}")
        got = client.get(url)
        posted = client.post(url, {"reason": "spam", "note": "x", "also_block": "1"})
        answers[label] = (got.status_code, posted.status_code, NO_SUCH_MESSAGE in posted.content.decode())
    return answers


def test_the_report_page_answers_every_shape_alike(world):
    alice, own, conversations, seqs = world
    client = Client()
    client.force_login(alice)
    before = snapshot()
    # An empty id matches no URL at all (Django's own 404); every other shape reaches the page.
    pairs = {f"conversation {s}": (conversations[s], "4") for s in CONVERSATION_SHAPES if s != "empty"}
    pairs |= {f"seq {s}": (str(own), seqs[s]) for s in SEQ_SHAPES if s != "empty"}
    assert _bodies(client, pairs) == dict.fromkeys(pairs, (404, 404, True))
    for conversation_id, seq in [("", "1"), (str(own), "")]:
        url = f"/report/message/{conversation_id}/{seq}"
        assert client.get(url).status_code == 404 and client.post(url, {"reason": "spam"}).status_code == 404
    assert snapshot() == before


def test_what_alice_did_receive_she_can_report(world):
    alice, own, conversations, _ = world
    assert file_report(alice, kind="message", reason="spam", conversation_id=own, seq=1).quoted_body == "bob to alice"
    left = file_report(alice, kind="message", reason="spam", conversation_id=conversations["left_room"], seq="2")
    assert left.quoted_body == "before alice left"
    client = Client()
    client.force_login(alice)
    url = reverse("report:message", args=[conversations["removed_from_room"], 2])
    assert client.post(url, {"reason": "abuse"}).status_code == 302
    assert Report.objects.count() == 3


def test_a_rooms_event_lines_are_not_messages_to_report(world):
    alice, _, conversations, _ = world
    before = snapshot()
    # Seq 1 is "bob created the room", seq 3 "alice left": she saw both, and neither is anybody's message.
    assert refusal(alice, conversations["left_room"], "1") == NO_SUCH_MESSAGE
    assert refusal(alice, conversations["left_room"], 3) == NO_SUCH_MESSAGE
    assert snapshot() == before
