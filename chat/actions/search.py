"""Searching messages: full-text search across the conversations a user is currently in. A hit links to the
conversation page around its seq (chat.views.around), which reads through messages_before/messages_after.

Only current participants see a conversation's messages, here as everywhere: a search never returns a
message from a conversation the user left or was never in, and deleted messages (tombstones) are never hits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from chat import search
from chat.actions.common import membership, parse_seq
from chat.errors import InvalidArgument
from chat.models import Conversation, Message, Participant
from chat.rendering import strip_bidi_controls

QUERY_MAX_CHARS = 200
QUERY_MAX_WORDS = 16
MAX_HITS = 50

_MARKED = re.compile(f"{search.MATCH_START}([^{search.MATCH_START}{search.MATCH_END}]*){search.MATCH_END}")
_MARKS = re.compile(f"[{search.MATCH_START}{search.MATCH_END}]")


@dataclass(frozen=True)
class SearchHit:
    """One message that matched: where it is, who sent it, and a short snippet with the matches marked."""

    id: int  # the message's id: pass it as `before` to get the next (older) page
    conversation_id: int
    conversation_title: str
    is_room: bool
    seq: int
    sender_jid: str
    sender_name: str
    snippet: SafeString  # escaped text; only <mark> elements around the matched words
    created_at: datetime


def clean_query(query: object) -> list[str]:
    """The words to search for, or InvalidArgument saying what is wrong with the query."""
    if not isinstance(query, str):
        raise InvalidArgument("A search must be text.")
    text = query.strip()
    if not text:
        raise InvalidArgument("Type something to search for.")
    if len(text) > QUERY_MAX_CHARS:
        raise InvalidArgument(f"A search can be at most {QUERY_MAX_CHARS} characters long (this one has {len(text)}).")
    words = search.query_words(text)
    if not words:
        raise InvalidArgument("Search for at least one word: letters or digits.")
    if len(words) > QUERY_MAX_WORDS:
        raise InvalidArgument(f"A search can have at most {QUERY_MAX_WORDS} words (this one has {len(words)}).")
    return words


def snippet_html(raw: str) -> SafeString:
    """A raw snippet from chat.search as HTML: the text escaped, the matches in <mark>, bidi controls removed."""
    text = escape(strip_bidi_controls(raw))
    return mark_safe(_MARKS.sub("", _MARKED.sub(r"<mark>\1</mark>", text)))  # noqa: S308 - escaped above


def _page_size(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit must be a whole number, 1 or more.")
    return min(limit, MAX_HITS)


def _titles(user: User, conversations: list[Conversation]) -> dict[int, str]:
    """What the user calls each conversation: a room's name, else the other person's name (one query)."""
    titles = {c.pk: c.name for c in conversations if c.kind == Conversation.Kind.ROOM}
    direct = [c for c in conversations if c.kind == Conversation.Kind.DIRECT]
    peers = {
        p.conversation_id: p
        for p in Participant.objects.filter(conversation__in=direct).exclude(user=user).select_related("user")
    }
    for conversation in direct:
        peer = peers.get(conversation.pk)
        if peer is not None:
            titles[conversation.pk] = peer.user.name if peer.user is not None else peer.jid
        else:  # the other account was deleted: its address is still in the key
            others = [jid for jid in (conversation.direct_key or "").split(" ") if jid and jid != user.jid]
            titles[conversation.pk] = others[0] if others else ""
    return titles


def search_messages(
    user: User,
    query: str,
    *,
    limit: int = 20,
    before: int | str | None = None,
    conversation: int | str | None = None,
) -> list[SearchHit]:
    """Messages matching `query` in the conversations the user is currently in (or only in `conversation`, one
    they are in: NotFound otherwise, as everywhere), newest first.

    Every word must appear (as the start of a word, ignoring case and accents). At most `limit` hits (capped
    at MAX_HITS); for the next page pass the last hit's `id` as `before`. Three queries per page.
    """
    words = clean_query(query)
    size = _page_size(limit)
    before_id = None if before is None else parse_seq(before, "before")
    if not getattr(user, "is_authenticated", False):
        return []
    scope = None if conversation in (None, "") else membership(user, conversation).conversation_id
    found = search.find(user.pk, words, limit=size, before_id=before_id, conversation_id=scope)
    messages = Message.objects.select_related("conversation", "sender").in_bulk([pk for pk, _ in found])
    titles = _titles(user, list({m.conversation_id: m.conversation for m in messages.values()}.values()))
    hits = []
    for pk, raw in found:
        message = messages.get(pk)
        if message is None:  # deleted between the two queries
            continue
        hits.append(
            SearchHit(
                id=pk,
                conversation_id=message.conversation_id,
                conversation_title=titles.get(message.conversation_id, ""),
                is_room=message.conversation.kind == Conversation.Kind.ROOM,
                seq=message.seq,
                sender_jid=message.sender_jid,
                sender_name=message.sender.name if message.sender is not None else message.sender_jid,
                snippet=snippet_html(raw),
                created_at=message.created_at,
            )
        )
    return hits
