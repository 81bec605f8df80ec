"""Message actions: sending, catching up, read and delivery markers, edits, deletions and reactions.

The delivery contract (what every entry point, consumer and client may rely on):

1. Stored before told. `send_message` validates, authorises and stores the message in one transaction;
   only after that transaction commits are the participants' sockets woken (`message.new`, or a quiet
   `conversation.request` for someone whose copy waits in their Requests). A refused send stores nothing
   and wakes nobody.
2. Numbered without gaps. Each conversation numbers its messages 1, 2, 3, ...: the seq is taken from the
   conversation's `last_seq` counter by an UPDATE in the same transaction as the insert, so concurrent
   senders (PostgreSQL row lock; SQLite IMMEDIATE transactions) never share or skip a number.
3. Stored once. A send carries a client-chosen UUID; the same (sender, client_id) sent again returns the
   message already stored, unchanged, and wakes nobody. A client may therefore retry until it gets an answer.
4. Catch-up by seq. Pushes are only wake-ups and may be lost (the pub/sub layer drops under load, sockets
   reconnect). A client remembers the highest seq it holds per conversation and, on every wake-up and every
   reconnect, asks `messages_after(that seq)`; it ends with exactly the stored messages, in order.
   `messages_before` pages backwards for scrolling up; pages are stable because seqs never change.
5. Markers only move forward. `mark_read`/`mark_delivered` never lower a marker; the sender's own read marker
   moves to each message they send.
6. Edits, deletions and reactions change a message in place (same seq); a deleted message stays as a
   tombstone with an empty body, so seqs never gap. A client that missed such an event is corrected when it
   re-reads the page on screen (`messages_before`), as every reconnecting client does.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from django.db import IntegrityError, transaction
from django.db.models import F, PositiveBigIntegerField, Q, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.actions.roster import is_blocked, local_user_for
from accounts.errors import NoSuchUser
from accounts.events import notify_users
from accounts.jid import BareJid, parse_bare_jid
from accounts.models import BlockedJid, RosterItem, User
from chat import ratelimit
from chat.actions.common import (
    CONVERSATION_REQUEST,
    MESSAGE_DELETED,
    MESSAGE_EDITED,
    MESSAGE_NEW,
    MESSAGE_REACTIONS,
    RECEIPT_DELIVERED,
    RECEIPT_READ,
    clean_body,
    conversation_pk,
    current_members,
    local_user_ids,
    membership,
    parse_seq,
    remote_delivery,
)
from chat.actions.missed_email import schedule_missed_message_email
from chat.errors import ChatError, InvalidArgument, InvalidMessage, NoSuchMessage, NotAllowed, NotFound
from chat.models import Conversation, Message, Participant, Reaction
from federation import outbox, stanzas

MAX_PAGE = 500
MAX_REACTIONS_PER_PERSON = 20


def direct_key(jid_a: str, jid_b: str) -> str:
    """The key of the one direct conversation between two bare JIDs."""
    return " ".join(sorted((jid_a, jid_b)))


# --- Sending ----------------------------------------------------------------------------------------------


def _client_uuid(client_id: uuid.UUID | str) -> uuid.UUID:
    if isinstance(client_id, uuid.UUID):
        return client_id
    try:
        return uuid.UUID(str(client_id))
    except ValueError:
        raise InvalidMessage("client_id must be a UUID chosen by the sending client.") from None


def _already_stored(user: User, client_id: uuid.UUID) -> Message | None:
    return Message.objects.filter(sender_jid=user.jid, client_id=client_id).select_related("reply_to").first()


def _target(user: User, to: str | int) -> int | User | BareJid:
    """A conversation id, the local account a bare JID names (which must exist and be someone else), or a
    remote bare JID (its server decides whether it exists: an error comes back later, shown on the message)."""
    if isinstance(to, str) and "@" in to:
        jid = parse_bare_jid(to)
        if str(jid) == user.jid:
            raise InvalidArgument("That is your own address; you cannot send messages to yourself.")
        if not jid.is_local:
            return jid
        peer = local_user_for(jid)
        if peer is None:
            raise NoSuchUser(str(jid))
        return peer
    return conversation_pk(to)


def _check_blocks(user: User, peer_jid: str, peer_id: int | None) -> None:
    """Refuse a 1:1 send across a block, either way, in one query (accounts.actions.is_blocked's rule: a block
    names a bare JID or a whole domain). Their block looks like a nonexistent account; ours is explained.
    A remote peer (`peer_id` None) keeps its blocks on its own server, which answers with an error."""
    own_domain = user.jid.rpartition("@")[2]
    peer_domain = peer_jid.rpartition("@")[2]
    owners = set(
        BlockedJid.objects.filter(
            Q(owner=user, jid__in=[peer_jid, peer_domain]) | Q(owner_id=peer_id, jid__in=[user.jid, own_domain])
        ).values_list("owner_id", flat=True)
    )
    if user.pk in owners:
        raise ChatError(f"You have blocked {peer_jid}. Unblock them to send them messages.")
    if peer_id in owners:
        raise NoSuchUser(peer_jid)


def _direct_conversation(
    sender_jid: str, sender: User | None, peer_jid: str, peer: User | None
) -> tuple[Conversation, list[Participant]]:
    """The direct conversation of this pair (either side may be remote: its `User` is None), created on the
    first message, with both participants."""
    key = direct_key(sender_jid, peer_jid)
    sender_id, peer_id = (sender.pk if sender else None), (peer.pk if peer else None)
    conversation, created = Conversation.objects.get_or_create(
        direct_key=key, defaults={"kind": Conversation.Kind.DIRECT}
    )
    if not created:
        members = list(conversation.participants.all())
        if {(p.jid, p.user_id) for p in members} == {(sender_jid, sender_id), (peer_jid, peer_id)}:
            return conversation, members
        # One side's account was deleted (its participant row went with it) and the address belongs to someone
        # new now: the old history stays with the one who remains, and the new pair starts afresh.
        Conversation.objects.filter(pk=conversation.pk).update(direct_key=None)
        conversation = Conversation.objects.create(kind=Conversation.Kind.DIRECT, direct_key=key)
    # A first message from someone the recipient has not listed as a contact waits in their Requests.
    # A remote peer's server keeps its own Requests, so their copy here is never one.
    is_contact = peer is None or RosterItem.objects.filter(owner=peer, jid=sender_jid, listed=True).exists()
    members = Participant.objects.bulk_create(
        [
            Participant(conversation=conversation, jid=sender_jid, user=sender),
            Participant(conversation=conversation, jid=peer_jid, user=peer, is_request=not is_contact),
        ]
    )
    return conversation, members


def _conversation_by_id(user: User, pk: int) -> tuple[Conversation, list[Participant]]:
    """A conversation the user is in, with its current participants (one query), checked for blocks if 1:1."""
    members = list(Participant.objects.filter(conversation_id=pk, left_at__isnull=True).select_related("conversation"))
    mine = next((p for p in members if p.user_id == user.pk), None)
    if mine is None:
        raise NotFound
    conversation = mine.conversation
    if conversation.kind == Conversation.Kind.DIRECT:
        peer = next((p for p in members if p is not mine), None)
        if peer is None:  # their account was deleted: as for any address without an account
            others = [jid for jid in (conversation.direct_key or "").split(" ") if jid != user.jid]
            raise NoSuchUser(others[0] if others else "for this conversation")
        _check_blocks(user, peer.jid, peer.user_id)
    return conversation, members


def send_message(
    user: User,
    *,
    to: str | int,
    body: str,
    client_id: uuid.UUID | str,
    reply_to_seq: int | None = None,
) -> Message:
    """Store a message from `user` in a conversation (`to` = its id) or to a person (`to` = a bare JID).

    Raises InvalidMessage / MessageTooLong (body), InvalidJid (address), SlowDown (rate limit), NotFound (not
    a conversation of the user's), NoSuchUser (no such account, or one that blocks the user), ChatError (the
    user blocks them, or it is their own address), NoSuchMessage (reply_to_seq). A bare JID on another server
    starts (or continues) the direct conversation with them; their copy leaves through the outbox.
    See the module docstring for what is guaranteed.
    """
    client_uuid = _client_uuid(client_id)
    # A retry returns what the first attempt stored before anything else is checked: that attempt was
    # accepted, and a client resending after a lost answer must not get an error (or use up its rate).
    stored = _already_stored(user, client_uuid)
    if stored is not None:
        return stored
    text = clean_body(body)
    reply_seq = None if reply_to_seq is None else parse_seq(reply_to_seq, "reply_to_seq")
    slots = ratelimit.charge("message", user.pk, ratelimit.message_limits())
    target = _target(user, to)
    try:
        return _store(user.jid, user, target, text, client_uuid, reply_seq)
    except IntegrityError:
        # The same client_id sent twice at once: the first commit won, this one rolled back whole.
        stored = _already_stored(user, client_uuid)
        if stored is None:
            raise
        slots.refund()
        return stored


def _store(
    sender_jid: str,
    sender: User | None,
    target: int | User | BareJid,
    text: str,
    client_id: uuid.UUID,
    reply_seq: int | None,
) -> Message:
    """Store one message in one transaction and tell everyone on commit. `sender` is None for a remote sender,
    whose `target` is then the local recipient; a local sender may target anyone or a conversation id."""
    now = timezone.now()
    with transaction.atomic():
        if isinstance(target, BareJid):
            assert sender is not None
            _check_blocks(sender, str(target), None)
            conversation, members = _direct_conversation(sender_jid, sender, str(target), None)
        elif isinstance(target, User):
            if sender is not None:
                _check_blocks(sender, target.jid, target.pk)
            conversation, members = _direct_conversation(sender_jid, sender, target.jid, target)
        else:
            assert sender is not None
            conversation, members = _conversation_by_id(sender, target)
        reply_to = None
        if reply_seq is not None:
            reply_to = Message.objects.filter(conversation=conversation, seq=reply_seq).first()
            if reply_to is None:
                raise NoSuchMessage(reply_seq)
        # The counter's row lock (PostgreSQL) or the IMMEDIATE write lock (SQLite) is held from here to the
        # commit, so senders in one conversation queue for a few statements only; membership was read first.
        Conversation.objects.filter(pk=conversation.pk).update(last_seq=F("last_seq") + 1, last_message_at=now)
        seq = Conversation.objects.filter(pk=conversation.pk).values_list("last_seq", flat=True).get()
        message = Message.objects.create(
            conversation=conversation,
            seq=seq,
            sender_jid=sender_jid,
            sender=sender,
            client_id=client_id,
            body=text,
            created_at=now,
            reply_to=reply_to,
        )
        # Writing in a conversation reads it, and answering a request accepts it.
        Participant.objects.filter(conversation=conversation, jid=sender_jid).update(
            last_read_seq=seq, last_delivered_seq=seq, is_request=False
        )
        remote_delivery(message, members)
        sender_id = sender.pk if sender else None
        waiting = [p.user_id for p in members if p.is_request and p.user_id not in (None, sender_id)]
        told = [uid for uid in local_user_ids(members) if uid not in waiting]
        notify_users(told, MESSAGE_NEW, conversation=conversation.pk, seq=seq)
        notify_users(waiting, CONVERSATION_REQUEST, conversation=conversation.pk, seq=seq)
        schedule_missed_message_email([uid for uid in told if uid != sender_id])
    return message


def receive_remote_message(
    sender_jid: str, recipient: User, body: str, client_id: uuid.UUID, *, receipt_id: str | None = None
) -> Message:
    """Store a message that `sender_jid` (a bare JID on another server) sent `recipient` over federation.

    The same path as a local send: the direct conversation of the pair, the next seq, the same events; a first
    message from someone `recipient` has not listed waits in their Requests without a notification. Stored once
    per (sender, client_id): the federation handler derives client_id from the stanza's origin-id or id, so a
    re-delivered stanza returns the stored message. `receipt_id`: the sender asked for a XEP-0184 receipt; it is
    queued in the same transaction as the message, because "received" is true once the message is stored and
    pushed to the recipient's screens (the server is their client here), and re-queued for a re-delivery, whose
    sender evidently missed the first one. Raises InvalidMessage / MessageTooLong (body), NoSuchUser (the
    recipient blocks the sender or their server: the same answer as for nobody).
    """

    def answer_receipt() -> None:
        if receipt_id:
            reply = stanzas.receipt(recipient.jid, sender_jid, receipt_id)
            outbox.enqueue(reply, recipient=sender_jid)

    stored = Message.objects.filter(sender_jid=sender_jid, client_id=client_id).first()
    if stored is None:
        text = clean_body(body)
        if is_blocked(recipient, sender_jid):
            raise NoSuchUser(recipient.jid)
        try:
            with transaction.atomic():
                message = _store(sender_jid, None, recipient, text, client_id, None)
                answer_receipt()
            return message
        except IntegrityError:  # the same stanza on two streams at once: the first commit won
            stored = Message.objects.filter(sender_jid=sender_jid, client_id=client_id).first()
            if stored is None:
                raise
    with transaction.atomic():
        answer_receipt()
    return stored


# --- Reading ----------------------------------------------------------------------------------------------


def _page_size(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit must be a whole number, 1 or more.")
    return min(limit, MAX_PAGE)


def _messages(conversation_id: int) -> QuerySet[Message]:
    # Replies show what they answer and messages show their reactions: both loaded per page, not per message.
    return (
        Message.objects.filter(conversation_id=conversation_id).select_related("reply_to").prefetch_related("reactions")
    )


def messages_after(user: User, conversation_id: int | str, after_seq: int, limit: int = 100) -> list[Message]:
    """Messages with seq > after_seq, oldest first, at most `limit` (capped at MAX_PAGE): the catch-up read.

    A client that gets a full page asks again from the last seq it got.
    """
    after = parse_seq(after_seq, "after_seq")
    size = _page_size(limit)
    mine = membership(user, conversation_id)
    return list(_messages(mine.conversation_id).filter(seq__gt=after).order_by("seq")[:size])


def messages_before(
    user: User, conversation_id: int | str, before_seq: int | None = None, limit: int = 50
) -> list[Message]:
    """The `limit` messages just before `before_seq` (the newest ones when None), oldest first.

    For scrolling up: pass the smallest seq on screen to get the page above it.
    """
    before = None if before_seq is None else parse_seq(before_seq, "before_seq")
    size = _page_size(limit)
    mine = membership(user, conversation_id)
    rows = _messages(mine.conversation_id)
    if before is not None:
        rows = rows.filter(seq__lt=before)
    page = list(rows.order_by("-seq")[:size])
    page.reverse()
    return page


# --- Markers ----------------------------------------------------------------------------------------------


def _receipt_audience(mine: Participant) -> list[int]:
    """Who learns that this participant's marker moved: the others in the conversation, except while the
    conversation still waits in this participant's Requests (reading a request must not tell the sender)."""
    if mine.is_request:
        return []
    return [uid for uid in local_user_ids(current_members(mine.conversation)) if uid != mine.user_id]


def mark_read(user: User, conversation_id: int | str, seq: int) -> int:
    """Move the user's read marker forward to `seq` (never back; capped at the newest message).

    Returns the marker after the call. The user's other tabs are told (unread counts change); the other
    participants get `receipt.read` unless the user chose not to send read markers.
    """
    wanted = parse_seq(seq)
    with transaction.atomic():
        mine = membership(user, conversation_id)
        target = min(wanted, mine.conversation.last_seq)
        # Conditional UPDATE: of two racing calls the lower one matches no row, so the marker cannot go back.
        moved = Participant.objects.filter(pk=mine.pk, last_read_seq__lt=target).update(
            last_read_seq=target,
            last_delivered_seq=Greatest("last_delivered_seq", Value(target), output_field=PositiveBigIntegerField()),
        )
        if not moved:  # already there or further
            return max(mine.last_read_seq, target)
        audience = [user.pk]
        if getattr(user, "send_read_markers", True):
            audience += _receipt_audience(mine)
        notify_users(audience, RECEIPT_READ, conversation=mine.conversation_id, seq=target, jid=user.jid)
    return target


def mark_delivered(user: User, conversation_id: int | str, seq: int) -> int:
    """Move the user's delivery marker forward to `seq` (never back; capped at the newest message).

    Returns the marker after the call; the other participants get `receipt.delivered`. Delivery markers are
    not covered by the read-marker privacy setting: they say a device got the message, not that anyone read it.
    """
    wanted = parse_seq(seq)
    with transaction.atomic():
        mine = membership(user, conversation_id)
        target = min(wanted, mine.conversation.last_seq)
        moved = Participant.objects.filter(pk=mine.pk, last_delivered_seq__lt=target).update(last_delivered_seq=target)
        if not moved:
            return max(mine.last_delivered_seq, target)
        notify_users(
            _receipt_audience(mine), RECEIPT_DELIVERED, conversation=mine.conversation_id, seq=target, jid=user.jid
        )
    return target


# --- Changing a message -----------------------------------------------------------------------------------


def _message_for_change(user: User, conversation_id: int | str, seq: object) -> tuple[Participant, Message]:
    """Inside a transaction: the user's participation and the message at `seq`, locked for the change."""
    number = parse_seq(seq)
    mine = membership(user, conversation_id)
    message = Message.objects.select_for_update().filter(conversation_id=mine.conversation_id, seq=number).first()
    if message is None:
        raise NoSuchMessage(number)
    return mine, message


def _own(user: User, message: Message, verb: str) -> None:
    if message.sender_id != user.pk:
        raise NotAllowed(f"You can only {verb} your own messages.")
    if message.is_deleted:
        raise NotAllowed("That message was deleted.")


def _tell_members(mine: Participant, event: str, seq: int) -> None:
    notify_users(local_user_ids(current_members(mine.conversation)), event, conversation=mine.conversation_id, seq=seq)


def edit_message(user: User, conversation_id: int | str, seq: int, body: str) -> Message:
    """Replace the body of one of the user's own messages (not a deleted one); sets `edited_at`.

    Edits count against the same rate limit as sends: each one reaches every participant.
    """
    text = clean_body(body)
    ratelimit.charge("message", user.pk, ratelimit.message_limits())
    with transaction.atomic():
        mine, message = _message_for_change(user, conversation_id, seq)
        _own(user, message, "edit")
        if message.body == text:
            return message
        message.body = text
        message.edited_at = timezone.now()
        message.save(update_fields=["body", "edited_at"])
        _tell_members(mine, MESSAGE_EDITED, message.seq)
    return message


def delete_message(user: User, conversation_id: int | str, seq: int) -> Message:
    """Delete one of the user's own messages: it stays as a tombstone (empty body, `deleted_at` set) and loses
    its reactions. Deleting a tombstone again changes nothing."""
    with transaction.atomic():
        mine, message = _message_for_change(user, conversation_id, seq)
        if message.sender_id != user.pk:
            raise NotAllowed("You can only delete your own messages.")
        if message.is_deleted:
            return message
        message.body = ""
        message.deleted_at = timezone.now()
        message.save(update_fields=["body", "deleted_at"])
        Reaction.objects.filter(message=message).delete()
        _tell_members(mine, MESSAGE_DELETED, message.seq)
    return message


# --- Reactions --------------------------------------------------------------------------------------------

_SHORTCODE = re.compile(r":[a-z0-9_+\-]{1,32}:")
_ZWJ = 0x200D
_VARIATION_SELECTORS = (0xFE0E, 0xFE0F)
_KEYCAP = 0x20E3
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
_TAGS = range(0xE0020, 0xE007F)
_CANCEL_TAG = 0xE007F
# Unicode's Extended_Pictographic blocks (emoji-data.txt), coarsened to whole ranges: precise enough to tell an
# emoji from text, and Python's unicodedata has no emoji property to ask.
_PICTOGRAPHIC = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x21AA), (0x231A, 0x23FF), (0x24C2, 0x24C2), (0x25AA, 0x25FE),
    (0x2600, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D),
    (0x3297, 0x3299), (0x1F000, 0x1F1E5), (0x1F201, 0x1F3FA), (0x1F400, 0x1FAFF), (0x1FC00, 0x1FFFD),
)  # fmt: skip
_MAX_EMOJI_CODE_POINTS = 16


def _pictographic(cp: int) -> bool:
    return any(low <= cp <= high for low, high in _PICTOGRAPHIC)


def _element_end(cps: list[int], i: int) -> int | None:
    """Where one emoji element starting at `i` ends (exclusive), or None if none starts there."""
    n = len(cps)
    if cps[i] in _REGIONAL_INDICATORS:  # a flag is exactly two regional indicators
        return i + 2 if i + 1 < n and cps[i + 1] in _REGIONAL_INDICATORS else None
    if chr(cps[i]) in "0123456789#*":  # keycap: digit, optional VS16, U+20E3
        j = i + 1 + (i + 1 < n and cps[i + 1] == 0xFE0F)
        return j + 1 if j < n and cps[j] == _KEYCAP else None
    if not _pictographic(cps[i]):
        return None
    j = i + 1
    if j < n and cps[j] in _VARIATION_SELECTORS:
        j += 1
    if j < n and cps[j] in _SKIN_TONES:
        j += 1
    if j < n and cps[j] in _TAGS:  # subdivision flags: tag characters closed by CANCEL TAG
        while j < n and cps[j] in _TAGS:
            j += 1
        if j >= n or cps[j] != _CANCEL_TAG:
            return None
        j += 1
    return j


def _is_one_emoji(text: str) -> bool:
    """One emoji as people pick it: an element, or elements joined by ZWJ (families, professions, ...)."""
    cps = [ord(ch) for ch in text]
    if not cps or len(cps) > _MAX_EMOJI_CODE_POINTS:
        return False
    i = 0
    while True:
        end = _element_end(cps, i)
        if end is None:
            return False
        if end == len(cps):
            return True
        if cps[end] != _ZWJ or end + 1 >= len(cps):
            return False
        i = end + 1


def clean_emoji(value: object) -> str:
    """A reaction as stored: one emoji, or a short :name: in lowercase."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFC", value.strip())
        if _SHORTCODE.fullmatch(text.lower()):
            return text.lower()
        if _is_one_emoji(text):
            return text
    raise InvalidArgument("A reaction is one emoji, or a short :name: of letters, digits, _, + or -.")


def react(user: User, conversation_id: int | str, seq: int, emoji: str) -> Reaction:
    """Add the user's `emoji` to a message (adding it twice changes nothing). Returns the reaction."""
    emoji = clean_emoji(emoji)
    ratelimit.charge("reaction", user.pk, ratelimit.reaction_limits())
    with transaction.atomic():
        mine, message = _message_for_change(user, conversation_id, seq)
        if message.is_deleted:
            raise NotAllowed("That message was deleted.")
        existing = list(Reaction.objects.filter(message=message, jid=user.jid).values_list("emoji", flat=True))
        if emoji not in existing and len(existing) >= MAX_REACTIONS_PER_PERSON:
            raise InvalidArgument(f"You can add at most {MAX_REACTIONS_PER_PERSON} reactions to one message.")
        reaction, created = Reaction.objects.get_or_create(message=message, jid=user.jid, emoji=emoji)
        if created:
            _tell_members(mine, MESSAGE_REACTIONS, message.seq)
    return reaction


def unreact(user: User, conversation_id: int | str, seq: int, emoji: str) -> None:
    """Take the user's `emoji` off a message (taking off one that is not there changes nothing)."""
    emoji = clean_emoji(emoji)
    ratelimit.charge("reaction", user.pk, ratelimit.reaction_limits())
    with transaction.atomic():
        mine, message = _message_for_change(user, conversation_id, seq)
        deleted, _ = Reaction.objects.filter(message=message, jid=user.jid, emoji=emoji).delete()
        if deleted:
            _tell_members(mine, MESSAGE_REACTIONS, message.seq)
