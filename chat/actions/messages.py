"""Message actions: sending (one or many at once), read and delivery markers, edits, deletions and reactions.

The delivery contract (what every entry point, consumer and client may rely on):

1. Stored before told. `send_messages` validates, authorises and stores messages in one transaction; only
   after that transaction commits does `chat.delivery` publish them to the participants' sockets, with their
   rendered payload (a `message.new` per person; a quiet one for someone whose copy waits in their Requests).
   A refused send stores nothing and tells nobody; it does not hold back the others of the same batch.
2. Numbered without gaps. Each conversation numbers its messages 1, 2, 3, ...: seqs are taken from the
   conversation's `last_seq` counter by an UPDATE in the same transaction as the inserts, so concurrent
   senders (PostgreSQL row lock; SQLite IMMEDIATE transactions) never share or skip a number.
3. Stored once. A send carries a client-chosen UUID; the same (sender, client_id) sent again returns the
   message already stored, unchanged, and tells nobody. A client may therefore retry until it gets an answer.
4. Catch-up by seq. Pushes may be lost (the pub/sub layer drops under load, sockets reconnect). A socket
   forwards a push only when it is the next seq it expects (chat.cursor); on a gap, and on every reconnect,
   it reads `messages_after(the seq it holds)` (chat.queries) and ends with exactly the stored messages, in
   order. `messages_before` pages backwards for scrolling up; pages are stable because seqs never change.
5. Markers only move forward. `mark_read`/`mark_delivered` never lower a marker; the sender's own read marker
   moves to each message they send.
6. Edits, deletions and reactions change a message in place (same seq); a deleted message stays as a
   tombstone with an empty body, so seqs never gap. A client that missed such an event is corrected when it
   re-reads the page on screen (`messages_before`), as every reconnecting client does.

Sends that arrive together (chat.batching gathers those of a few milliseconds) are stored in one transaction:
one query for the retries, one for the conversations' members, one for blocks, one counter UPDATE and one
INSERT for all of them, whatever their number; a commit costs about as much as the rest together here
(bench/RESULTS.md), so grouping them is what lets a busy server keep up.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import PositiveBigIntegerField, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts import events
from accounts.errors import AccountError, NoSuchUser
from accounts.jid import BareJid, parse_bare_jid
from accounts.lookups import is_blocked, local_user_for
from accounts.models import BlockedJid, RosterItem, User
from chat import delivery, files, queries, ratelimit
from chat.actions.common import (
    clean_body,
    conversation_pk,
    local_user_ids,
    membership,
    parse_seq,
    remote_delivery,
)
from chat.actions.missed_email import schedule_missed_message_email
from chat.errors import ChatError, InvalidArgument, InvalidMessage, NoSuchMessage, NotAllowed, NotFound, SlowDown
from chat.models import Attachment, Conversation, Message, Participant, Reaction
from chat.queries import MAX_PAGE, messages_after, messages_before
from federation import outbox

__all__ = ["MAX_PAGE", "messages_after", "messages_before"]

MAX_REACTIONS_PER_PERSON = 20
# Files one message may carry (each uploaded on its own first: chat.files).
MAX_ATTACHMENTS_PER_MESSAGE = 10


def direct_key(jid_a: str, jid_b: str) -> str:
    """The key of the one direct conversation between two bare JIDs."""
    return " ".join(sorted((jid_a, jid_b)))


# --- Sending ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendRequest:
    """One message someone asked to send: to a conversation (its id) or a person (a bare JID)."""

    user: User
    to: str | int
    body: object
    client_id: uuid.UUID | str
    reply_to_seq: object = None
    attachments: object = ()  # tokens of the sender's own uploads not sent yet (chat.files)


@dataclass(frozen=True)
class RemoteLink:
    """A file that a message from another server shares by link (XEP-0066 out-of-band data)."""

    url: str
    name: str


@dataclass(frozen=True)
class Sent:
    """What a send came to: the stored message, and whether this call stored it (False: a retry)."""

    message: Message
    created: bool


SendResult = Sent | ChatError | AccountError


@dataclass
class _Accepted:
    """A send that passed the checks that need no transaction, waiting for its conversation and seq."""

    index: int
    sender_jid: str
    sender: User | None  # None: a person on another server (receive_remote_message)
    target: int | User | BareJid
    text: str
    client_id: uuid.UUID
    reply_seq: int | None
    tokens: tuple[str, ...] = ()
    links: tuple[RemoteLink, ...] = ()
    slots: ratelimit.Charge | None = None
    conversation: Conversation | None = field(default=None, repr=False)
    members: list[Participant] = field(default_factory=list, repr=False)
    reply_to: Message | None = field(default=None, repr=False)
    files: list[Attachment] = field(default_factory=list, repr=False)


def _client_uuid(client_id: uuid.UUID | str) -> uuid.UUID:
    if isinstance(client_id, uuid.UUID):
        return client_id
    try:
        return uuid.UUID(str(client_id))
    except ValueError:
        raise InvalidMessage("client_id must be a UUID chosen by the sending client.") from None


def _already_stored(pairs: Sequence[tuple[str, uuid.UUID]]) -> dict[tuple[str, uuid.UUID], Message]:
    """The messages already stored for these (sender, client_id) pairs. One query."""
    if not pairs:
        return {}
    wanted = set(pairs)
    rows = Message.objects.filter(client_id__in={cid for _, cid in wanted}).select_related("reply_to")
    return {(m.sender_jid, m.client_id): m for m in rows if (m.sender_jid, m.client_id) in wanted}


def _target(user: User, to: str | int) -> int | User | BareJid:
    """A conversation id, the local account a bare JID names (which must exist and be someone else), or a
    remote bare JID (its server decides whether it exists: an error comes back later, shown on the message)."""
    if isinstance(to, str) and "@" in to:
        jid = parse_bare_jid(to)
        if str(jid) == user.jid:
            raise InvalidArgument("That is your own address; you cannot send messages to yourself.")
        if not jid.is_local:
            if outbox.address_blocked(str(jid)):
                raise ChatError(f"{jid} is blocked by this server's operators.")
            return jid
        peer = local_user_for(jid)
        if peer is None:
            raise NoSuchUser(str(jid))
        return peer
    return conversation_pk(to)


def _blocks(pairs: Sequence[tuple[User, str, int | None]]) -> set[tuple[int, str]]:
    """(owner id, blocked jid or domain) for every block between these (sender, peer jid, peer id) pairs, either
    way, in one query (accounts.actions.is_blocked's rule: a block names a bare JID or a whole domain)."""
    if not pairs:
        return set()
    owners = {user.pk for user, _, _ in pairs} | {peer_id for _, _, peer_id in pairs if peer_id is not None}
    return set(BlockedJid.objects.filter(owner_id__in=owners).values_list("owner_id", "jid"))


def _check_blocks(blocks: set[tuple[int, str]], user: User, peer_jid: str, peer_id: int | None) -> None:
    """Refuse a 1:1 send across a block, either way. Their block looks like a nonexistent account; ours is
    explained. A remote peer (`peer_id` None) keeps its blocks on its own server, which answers with an error."""
    if (user.pk, peer_jid) in blocks or (user.pk, peer_jid.rpartition("@")[2]) in blocks:
        raise ChatError(f"You have blocked {peer_jid}. Unblock them to send them messages.")
    if peer_id is not None and ((peer_id, user.jid) in blocks or (peer_id, user.jid.rpartition("@")[2]) in blocks):
        raise NoSuchUser(peer_jid)


def _direct_conversation(
    sender_jid: str, sender: User | None, peer_jid: str, peer: User | None
) -> tuple[Conversation, list[Participant]]:
    """The direct conversation of this pair (either side may be remote: its `User` is None), created on the
    first message, with both participants (their `user` set)."""
    key = direct_key(sender_jid, peer_jid)
    sender_id, peer_id = (sender.pk if sender else None), (peer.pk if peer else None)
    accounts = {sender_jid: sender, peer_jid: peer}
    conversation, created = Conversation.objects.get_or_create(
        direct_key=key, defaults={"kind": Conversation.Kind.DIRECT}
    )
    if not created:
        members = list(conversation.participants.all())
        if {(p.jid, p.user_id) for p in members} == {(sender_jid, sender_id), (peer_jid, peer_id)}:
            for p in members:
                p.user = accounts[p.jid]
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


def send_message(
    user: User,
    *,
    to: str | int,
    body: str,
    client_id: uuid.UUID | str,
    reply_to_seq: int | None = None,
    attachments: Sequence[str] = (),
) -> Message:
    """Store a message from `user` in a conversation (`to` = its id) or to a person (`to` = a bare JID).

    Raises InvalidMessage / MessageTooLong (body), InvalidJid (address), SlowDown (rate limit), NotFound (not
    a conversation of the user's), NoSuchUser (no such account, or one that blocks the user), ChatError (the
    user blocks them, or it is their own address), NoSuchMessage (reply_to_seq), InvalidArgument (`attachments`:
    the tokens of the user's own uploads not sent yet, chat.files; the body may then be empty). A bare JID on
    another server starts (or continues) the direct conversation with them; their copy leaves through the outbox.
    See the module docstring for what is guaranteed.
    """
    result = send_messages([SendRequest(user, to, body, client_id, reply_to_seq, tuple(attachments))])[0]
    if isinstance(result, Exception):
        raise result
    return result.message


def send_messages(requests: Sequence[SendRequest]) -> list[SendResult]:
    """Store many sends in one transaction; each gets its own answer, in order: `Sent`, or the error that
    `send_message` would raise for it alone (the same checks, one by one, in the same order). A retry (same
    sender and client_id as a stored message, or as an earlier send of the same call) answers with that
    message, `created` False. See the module docstring for what is guaranteed."""
    results: list[SendResult | None] = [None] * len(requests)
    uuids: dict[int, uuid.UUID] = {}
    for index, request in enumerate(requests):
        try:
            uuids[index] = _client_uuid(request.client_id)
        except ChatError as exc:
            results[index] = exc
    # A retry returns what the first attempt stored before anything else is checked: that attempt was
    # accepted, and a client resending after a lost answer must not get an error (or use up its rate).
    stored = _already_stored([(requests[i].user.jid, cid) for i, cid in uuids.items()])
    accepted: list[_Accepted] = []
    first_of: dict[tuple[str, uuid.UUID], int] = {}
    repeats: dict[int, int] = {}
    for index, cid in uuids.items():
        request = requests[index]
        key = (request.user.jid, cid)
        if key in stored:
            results[index] = Sent(stored[key], created=False)
        elif key in first_of:
            repeats[index] = first_of[key]
        else:
            first_of[key] = index
            try:
                accepted.append(_accept(index, request, cid))
            except (ChatError, AccountError) as exc:
                results[index] = exc
    # The rate limits, for all of them at once (one round trip to Redis): a person's earlier sends go first.
    charged = ratelimit.charge_many("message", [item.sender.pk for item in accepted], ratelimit.message_limits())
    admitted = []
    for item, charge in zip(accepted, charged, strict=True):
        if isinstance(charge, SlowDown):
            results[item.index] = charge
        else:
            item.slots = charge
            admitted.append(item)
    for index, result in _store(admitted).items():
        results[index] = result
    for index, first in repeats.items():
        earlier = results[first]
        results[index] = Sent(earlier.message, created=False) if isinstance(earlier, Sent) else earlier
    return [result for result in results if result is not None]


def _accept(index: int, request: SendRequest, client_id: uuid.UUID) -> _Accepted:
    """The checks that need no transaction (and no rate: a send refused here costs none)."""
    user = request.user
    tokens = _tokens(request.attachments)
    text = clean_body(request.body, allow_empty=bool(tokens))
    reply = request.reply_to_seq
    reply_seq = None if reply in (None, "") else parse_seq(reply, "reply_to_seq")
    return _Accepted(index, user.jid, user, _target(user, request.to), text, client_id, reply_seq, tokens)


def _tokens(value: object) -> tuple[str, ...]:
    """The attachment tokens of a send: a list of distinct strings, at most MAX_ATTACHMENTS_PER_MESSAGE."""
    if value in (None, "", ()):
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(token, str) and token for token in value):
        raise InvalidArgument("attachments must be a list of the tokens of your uploads.")
    if len(value) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise InvalidArgument(
            f"A message can carry at most {MAX_ATTACHMENTS_PER_MESSAGE} files; send the rest in another."
        )
    return tuple(dict.fromkeys(token[:64] for token in value))


def _store(items: list[_Accepted]) -> dict[int, SendResult]:
    """Store accepted sends: all in one transaction, or, if that meets a conflict (the same client_id sent
    twice at once through two processes; a deadlock between two batches on PostgreSQL), each in its own."""
    if not items:
        return {}
    try:
        return _store_together(items)
    except (IntegrityError, DatabaseError):
        if len(items) == 1:
            return {items[0].index: _store_alone(items[0])}
    return {item.index: _store_alone(item) for item in items}


def _store_alone(item: _Accepted) -> SendResult:
    item.conversation, item.members, item.reply_to, item.files = None, [], None, []
    try:
        return _store_together([item])[item.index]
    except IntegrityError:
        # The same client_id sent twice at once: the first commit won, this one rolled back whole.
        found = _already_stored([(item.sender_jid, item.client_id)]).get((item.sender_jid, item.client_id))
        if found is None:
            raise
        if item.slots is not None:
            item.slots.refund()
        return Sent(found, created=False)


def _resolve(items: list[_Accepted]) -> dict[int, SendResult]:
    """Inside the transaction: each send's conversation and current members (with accounts), checked for
    membership, blocks and the reply; the refused ones' errors by index."""
    refused: dict[int, SendResult] = {}
    by_id = {item.target for item in items if isinstance(item.target, int)}
    rows: dict[int, list[Participant]] = defaultdict(list)
    conversations: dict[int, Conversation] = {}
    if by_id:
        for p in Participant.objects.filter(conversation_id__in=by_id, left_at__isnull=True).select_related(
            "conversation", "user"
        ):
            conversation = conversations.setdefault(p.conversation_id, p.conversation)
            p.conversation = conversation  # one object per conversation: its counter moves once for all
            rows[p.conversation_id].append(p)
    pairs: list[tuple[User, str, int | None]] = []
    for item in items:
        if isinstance(item.target, int):
            members = rows.get(item.target, [])
            if item.sender is None or not any(p.user_id == item.sender.pk for p in members):
                refused[item.index] = NotFound()
                continue
            item.conversation, item.members = conversations[item.target], members
            if item.conversation.kind == Conversation.Kind.DIRECT:
                peer = next((p for p in members if p.user_id != item.sender.pk), None)
                if peer is None:  # their account was deleted: as for any address without an account
                    others = [j for j in (item.conversation.direct_key or "").split(" ") if j != item.sender_jid]
                    refused[item.index] = NoSuchUser(others[0] if others else "for this conversation")
                    continue
                pairs.append((item.sender, peer.jid, peer.user_id))
        elif item.sender is not None:
            target = item.target
            pairs.append((item.sender, str(target) if isinstance(target, BareJid) else target.jid, None
                          if isinstance(target, BareJid) else target.pk))  # fmt: skip
    blocks = _blocks(pairs)
    _find_files(items, refused)
    for item in items:
        if item.index in refused:
            continue
        try:
            if isinstance(item.target, int):
                if item.conversation.kind == Conversation.Kind.DIRECT:
                    peer = next(p for p in item.members if p.jid != item.sender_jid)
                    _check_blocks(blocks, item.sender, peer.jid, peer.user_id)
            else:
                # A first message (or one by address): the conversation may have to be created, so a refusal
                # after that (a reply to nothing) rolls back only this send.
                with transaction.atomic():
                    _open_direct(item, blocks)
                    _find_reply(item)
                continue
            _find_reply(item)
        except (ChatError, AccountError) as exc:
            refused[item.index] = exc
    return refused


def _find_files(items: list[_Accepted], refused: dict[int, SendResult]) -> None:
    """Each send's attachments, which must all be its sender's own uploads not sent yet. One query, and none
    when no send of the batch carries files."""
    wanted = {token for item in items if item.index not in refused for token in item.tokens}
    if not wanted:
        return
    found = {a.token: a for a in Attachment.objects.filter(token__in=wanted, message__isnull=True)}
    for item in items:
        if item.index in refused or not item.tokens:
            continue
        chosen = [found.get(token) for token in item.tokens]
        if any(f is None or item.sender is None or f.uploader_id != item.sender.pk for f in chosen):
            refused[item.index] = InvalidArgument("That file is not one of your uploads, or it was sent already.")
        else:
            item.files = chosen


def _attach(ready: list[_Accepted], messages: list[Message]) -> None:
    """Attach each send's files (uploads, or links from another server) to its message just stored, and give
    the message its list for rendering (chat.queries.files_of), so the delivery step reads none."""
    remote = []
    for item, message in zip(ready, messages, strict=True):
        if item.files:
            # The condition is the guard against the same upload sent twice at once: the second one attaches
            # nothing, and the rollback sends it on alone (`_store`), where `_find_files` refuses it.
            attached = Attachment.objects.filter(pk__in=[f.pk for f in item.files], message__isnull=True).update(
                message=message
            )
            if attached != len(item.files):
                raise IntegrityError("an attachment was sent by another message meanwhile")
            for f in item.files:
                f.message = message
        for link in item.links:
            # A picture by its name only: nothing is fetched until someone opens it (chat.remote_files).
            named_image = link.name.rpartition(".")[2].lower() in files.IMAGE_EXTENSIONS and "." in link.name
            kind = Attachment.Kind.IMAGE if named_image else Attachment.Kind.FILE
            remote.append(Attachment(message=message, kind=kind, name=link.name, content_type="", remote_url=link.url))
            item.files.append(remote[-1])
        queries.with_files(message, item.files)
    if remote:
        Attachment.objects.bulk_create(remote)


def _open_direct(item: _Accepted, blocks: set[tuple[int, str]]) -> None:
    target = item.target
    if isinstance(target, BareJid):
        assert item.sender is not None
        _check_blocks(blocks, item.sender, str(target), None)
        item.conversation, item.members = _direct_conversation(item.sender_jid, item.sender, str(target), None)
    else:
        assert isinstance(target, User)
        if item.sender is not None:
            _check_blocks(blocks, item.sender, target.jid, target.pk)
        item.conversation, item.members = _direct_conversation(item.sender_jid, item.sender, target.jid, target)


def _find_reply(item: _Accepted) -> None:
    if item.reply_seq is not None:
        item.reply_to = Message.objects.filter(conversation=item.conversation, seq=item.reply_seq).first()
        if item.reply_to is None:
            raise NoSuchMessage(item.reply_seq)
        if item.reply_to.is_event:
            raise InvalidArgument("That is a line of the room's history, not a message: it cannot be replied to.")


def _store_together(items: list[_Accepted]) -> dict[int, SendResult]:
    """Store the sends in one transaction and publish them on commit (chat.delivery)."""
    now = timezone.now()
    with transaction.atomic():
        results = _resolve(items)
        ready = [item for item in items if item.index not in results]
        for item in items:
            if item.index in results and item.slots is not None:
                item.slots.refund()
        if not ready:
            return results
        conversations = {item.conversation.pk: item.conversation for item in ready}
        counts = Counter(item.conversation.pk for item in ready)
        # The counter's row lock (PostgreSQL) or the IMMEDIATE write lock (SQLite) is held from here to the
        # commit, so senders in one conversation queue for a few statements only; membership was read first.
        newest = _take_seqs(counts, now)
        next_seq = {pk: newest[pk] - n + 1 for pk, n in counts.items()}
        messages = []
        for item in ready:
            conversation = item.conversation
            seq = next_seq[conversation.pk]
            next_seq[conversation.pk] += 1
            messages.append(
                Message(
                    conversation=conversation,
                    seq=seq,
                    sender_jid=item.sender_jid,
                    sender=item.sender,
                    client_id=item.client_id,
                    body=item.text,
                    created_at=now,
                    reply_to=item.reply_to,
                )
            )
        Message.objects.bulk_create(messages)
        for message in messages:
            queries.without_reactions(message)
        _attach(ready, messages)
        for pk, conversation in conversations.items():
            conversation.last_seq, conversation.last_message_at = newest[pk], now
        reads = _writers_read(ready, messages)
        members = {item.conversation.pk: item.members for item in ready}
        told: set[int] = set()
        for item, message in zip(ready, messages, strict=True):
            remote_delivery(message, item.members)
            waiting = {p.user_id for p in item.members if p.is_request and p.jid != item.sender_jid}
            told |= {uid for uid in local_user_ids(item.members) if uid not in waiting and uid != getattr(
                item.sender, "pk", None)}  # fmt: skip
            results[item.index] = Sent(message, created=True)
        schedule_missed_message_email(sorted(told))
        transaction.on_commit(lambda: delivery.new_messages(messages, members, reads))
    return results


def _take_seqs(counts: Counter[int], now: datetime) -> dict[int, int]:
    """Move each conversation's counter on by its count of new messages; returns each one's newest seq.

    Plain SQL for the same reason as in `_writers_read`: one UPDATE ... RETURNING for every conversation of the
    batch (SQLite 3.35+ and PostgreSQL both return the rows they changed).
    """
    table = Conversation._meta.db_table
    cases = " ".join(["WHEN %s THEN %s"] * len(counts))
    marks = ", ".join(["%s"] * len(counts))
    sql = (
        f"UPDATE {table} SET last_seq = last_seq + CASE id {cases} END, last_message_at = %s"  # noqa: S608
        f" WHERE id IN ({marks}) RETURNING id, last_seq"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(value for pk, n in counts.items() for value in (pk, n)), now, *counts])
        return {pk: last for pk, last in cursor.fetchall()}


def record_event(
    conversation: Conversation, actor: User, text: str, event: dict[str, str], members: list[Participant]
) -> Message:
    """Inside the caller's transaction: a room event (what `actor` did, as the line `text`) takes the room's next
    seq like a message, and once the transaction commits it is published to `members` (the current
    participants, with `user` loaded) by the same delivery step as messages. It asks for no email and leaves
    for no other server (rooms are local); the unread counts never count it."""
    now = timezone.now()
    seq = _take_seqs(Counter({conversation.pk: 1}), now)[conversation.pk]
    conversation.last_seq, conversation.last_message_at = seq, now
    message = Message.objects.create(
        conversation=conversation,
        seq=seq,
        sender_jid=actor.jid,
        sender=actor,
        client_id=uuid.uuid4(),
        body=text,
        created_at=now,
        kind=Message.Kind.EVENT,
        event=event,
    )
    queries.without_reactions(message)
    transaction.on_commit(lambda: delivery.new_messages([message], {conversation.pk: members}))
    return message


def _writers_read(ready: list[_Accepted], messages: list[Message]) -> list[tuple[Participant, int]]:
    """Writing in a conversation reads it, and answering a request accepts it: each writer's markers move to
    their newest message here (one UPDATE for all), in the database and on the rows the delivery step uses.
    Returns (writer, read marker before) for the writers who passed messages of others, whose senders then see
    them read."""
    newest: dict[int, int] = {}
    passed: dict[int, tuple[Participant, int]] = {}
    for item, message in zip(ready, messages, strict=True):
        writer = next(p for p in item.members if p.jid == item.sender_jid)
        if writer.pk not in newest and writer.last_read_seq < message.seq - 1:
            passed[writer.pk] = (writer, writer.last_read_seq)
        newest[writer.pk] = max(newest.get(writer.pk, 0), message.seq)
        writer.last_read_seq = max(writer.last_read_seq, message.seq)
        writer.last_delivered_seq = max(writer.last_delivered_seq, message.seq)
        writer.is_request = False
    # Plain SQL (one statement for any number of writers; the ORM's Case/When took 0.4 ms per message to build
    # at a batch of 100, bench/RESULTS.md). Setting the seq is right without comparing: it is the newest of the
    # conversation, and no marker is ever past the newest message.
    table = Participant._meta.db_table
    cases = " ".join(["WHEN %s THEN %s"] * len(newest))
    marks = ", ".join(["%s"] * len(newest))
    pairs = [value for pk, seq in newest.items() for value in (pk, seq)]
    sql = (
        f"UPDATE {table} SET last_read_seq = CASE id {cases} END, last_delivered_seq = CASE id {cases} END,"  # noqa: S608
        f" is_request = %s WHERE id IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*pairs, *pairs, False, *newest])
    return list(passed.values())


def receive_remote_message(
    sender_jid: str,
    recipient: User,
    body: str,
    client_id: uuid.UUID,
    *,
    receipt_id: str | None = None,
    links: Sequence[RemoteLink] = (),
) -> Message:
    """Store a message that `sender_jid` (a bare JID on another server) sent `recipient` over federation.

    The same path as a local send: the direct conversation of the pair, the next seq, the same events; a first
    message from someone `recipient` has not listed waits in their Requests without a notification. Stored once
    per (sender, client_id): the federation handler derives client_id from the stanza's origin-id or id, so a
    re-delivered stanza returns the stored message. `receipt_id`: the sender asked for a XEP-0184 receipt; it is
    queued in the same transaction as the message, because "received" is true once the message is stored and
    pushed to the recipient's screens (the server is their client here), and re-queued for a re-delivery, whose
    sender evidently missed the first one. `links`: files the message shares by link (XEP-0066), stored as
    remote attachments (fetched only when someone opens them: chat.remote_files); the body may then be empty.
    Raises InvalidMessage / MessageTooLong (body), NoSuchUser (the recipient blocks the sender or their server:
    the same answer as for nobody).
    """

    def answer_receipt() -> None:
        if receipt_id:
            outbox.receipt(recipient.jid, sender_jid, receipt_id)

    stored = _already_stored([(sender_jid, client_id)]).get((sender_jid, client_id))
    if stored is None:
        links = tuple(links)[:MAX_ATTACHMENTS_PER_MESSAGE]
        text = clean_body(body, allow_empty=bool(links))
        if is_blocked(recipient, sender_jid):
            raise NoSuchUser(recipient.jid)
        item = _Accepted(0, sender_jid, None, recipient, text, client_id, None, links=links)
        with transaction.atomic():
            result = _store_alone(item)
            if isinstance(result, Exception):
                raise result
            answer_receipt()
        return result.message
    with transaction.atomic():
        answer_receipt()
    return stored


# --- Markers ----------------------------------------------------------------------------------------------


def mark_read(user: User, conversation_id: int | str, seq: int) -> int:
    """Move the user's read marker forward to `seq` (never back; capped at the newest message).

    Returns the marker after the call. The user's other tabs learn their new unread count; the other
    participants see their messages' status move (a receipt), as Delivered only when the user chose not to
    send read markers, and not at all while the conversation waits in the user's Requests (reading a request
    must not tell its sender).
    """
    wanted = parse_seq(seq)
    with transaction.atomic():
        mine = membership(user, conversation_id)
        target = min(wanted, mine.conversation.last_seq)
        # Reading on past where the person marked the conversation as unread takes the mark off.
        unmark = mine.unread_mark_seq is not None and target > mine.unread_mark_seq
        # Conditional UPDATE: of two racing calls the lower one matches no row, so the marker cannot go back.
        moved = Participant.objects.filter(pk=mine.pk, last_read_seq__lt=target).update(
            last_read_seq=target,
            last_delivered_seq=Greatest("last_delivered_seq", Value(target), output_field=PositiveBigIntegerField()),
            **({"unread_mark_seq": None} if unmark else {}),
        )
        if not moved:  # already there or further
            return max(mine.last_read_seq, target)
        before = mine.last_read_seq if user.send_read_markers else max(mine.last_delivered_seq, mine.last_read_seq)
        transaction.on_commit(lambda: delivery.receipt(mine, "read", before, target))
        if unmark:  # rare: the person's tabs draw their list again, without the mark
            transaction.on_commit(
                lambda: events.notify_users([user.pk], events.conversation_updated(mine.conversation_id))
            )
    return target


def mark_delivered(user: User, conversation_id: int | str, seq: int) -> int:
    """Move the user's delivery marker forward to `seq` (never back; capped at the newest message).

    Returns the marker after the call; the other participants see their messages' status move. Delivery
    markers are not covered by the read-marker privacy setting: they say a device got the message, not that
    anyone read it.
    """
    wanted = parse_seq(seq)
    with transaction.atomic():
        mine = membership(user, conversation_id)
        target = min(wanted, mine.conversation.last_seq)
        moved = Participant.objects.filter(pk=mine.pk, last_delivered_seq__lt=target).update(last_delivered_seq=target)
        if not moved:
            return max(mine.last_delivered_seq, target)
        before = max(mine.last_delivered_seq, mine.last_read_seq)
        transaction.on_commit(lambda: delivery.receipt(mine, "delivered", before, target))
    return target


# --- Changing a message -----------------------------------------------------------------------------------


def _message_for_change(user: User, conversation_id: int | str, seq: object) -> tuple[Participant, Message]:
    """Inside a transaction: the user's participation and the message at `seq`, locked for the change."""
    number = parse_seq(seq)
    mine = membership(user, conversation_id)
    message = Message.objects.select_for_update().filter(conversation_id=mine.conversation_id, seq=number).first()
    if message is None:
        raise NoSuchMessage(number)
    if message.is_event:
        raise NotAllowed("That is a line of the room's history, not a message: it cannot be changed.")
    return mine, message


def _own(user: User, message: Message, verb: str) -> None:
    if message.sender_id != user.pk:
        raise NotAllowed(f"You can only {verb} your own messages.")
    if message.is_deleted:
        raise NotAllowed("That message was deleted.")


def _tell_members(mine: Participant, change: str, seq: int) -> None:
    """On commit: every current member's screens show the message as it is now."""
    transaction.on_commit(lambda: delivery.message_changed(mine.conversation_id, seq, change))


def edit_message(user: User, conversation_id: int | str, seq: int, body: str) -> Message:
    """Replace the body of one of the user's own messages (not a deleted one); sets `edited_at`.

    Edits count against the same rate limit as sends: each one reaches every participant.
    """
    text = clean_body(body, allow_empty=True)
    ratelimit.charge("message", user.pk, ratelimit.message_limits())
    with transaction.atomic():
        mine, message = _message_for_change(user, conversation_id, seq)
        _own(user, message, "edit")
        if not text and not message.attachments.exists():
            clean_body(text)  # the files carry a message without words; nothing else may be empty
        if message.body == text:
            return message
        message.body = text
        message.edited_at = timezone.now()
        message.save(update_fields=["body", "edited_at"])
        _tell_members(mine, "edited", message.seq)
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
        # Its files go with it, from storage too (chat.signals): nobody can open them any more.
        Attachment.objects.filter(message=message).delete()
        _tell_members(mine, "deleted", message.seq)
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


def has_reacted(user: User, conversation_id: int | str, seq: object, emoji: str) -> bool:
    """Whether the user's reactions on the message at `seq` include `emoji` (NotFound/NoSuchMessage as usual)."""
    number = parse_seq(seq)
    mine = membership(user, conversation_id)
    return Reaction.objects.filter(
        message__conversation_id=mine.conversation_id, message__seq=number, jid=user.jid, emoji=clean_emoji(emoji)
    ).exists()


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
            _tell_members(mine, "reactions", message.seq)
    return reaction


def unreact(user: User, conversation_id: int | str, seq: int, emoji: str) -> None:
    """Take the user's `emoji` off a message (taking off one that is not there changes nothing)."""
    emoji = clean_emoji(emoji)
    ratelimit.charge("reaction", user.pk, ratelimit.reaction_limits())
    with transaction.atomic():
        mine, message = _message_for_change(user, conversation_id, seq)
        deleted, _ = Reaction.objects.filter(message=message, jid=user.jid, emoji=emoji).delete()
        if deleted:
            _tell_members(mine, "reactions", message.seq)
