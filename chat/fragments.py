"""Rendering what the messenger shows, one function per thing on screen. The full page, htmx answers, the
delivery step's pushes and the sockets' catch-up all render through here, with the same template partials,
so a message looks the same whichever door it came through. Nothing here queries the database except the
`*_for(user)` helpers, which read through `chat.queries` first.

Pushes are rendered once for everyone who sees them the same way: a message fragment knows no viewer
(`viewer_jid` None), and static/js/chat.js marks the viewer's own messages and reactions from the page's own
address (`data-me`). Pages know their viewer and mark them on the server, so they read right without script.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.template import engines
from django.template.loader import render_to_string

from accounts.models import User
from chat import queries
from chat.jinja import unread_badge
from chat.models import Message, Participant

__all__ = ["unread_badge"]

# The common reactions offered by the picker; any other emoji can still arrive from other clients.
PICKER_EMOJI = ("👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀")


_compiled: dict[str, object] = {}


def render_fast(name: str, context: dict[str, object]) -> str:
    """A partial of the delivery path (templates/jinja2/, chat.jinja), rendered by Jinja2 itself: these partials
    need nothing from a request (no CSRF input, no request object), which is all Django's wrapper would add."""
    template = _compiled.get(name)
    if template is None:
        template = _compiled[name] = engines["jinja2"].get_template(name).template
    return template.render(context)  # type: ignore[attr-defined]


def inbox(*parts: str) -> str:
    """Fragments for static/js/chat.js to place (messages by seq, rows by id, statuses, errors), in one swap."""
    body = "".join(parts)
    return f'<div hx-swap-oob="beforeend:#chat-inbox">{body}</div>' if body else ""


def message_context(conversation_id: int, *, plain: bool, viewer_jid: str | None) -> dict[str, object]:
    return {"conversation_id": conversation_id, "plain": plain, "picker": PICKER_EMOJI, "viewer_jid": viewer_jid}


def messages(
    conversation_id: int,
    items: Iterable[Message],
    *,
    plain: bool,
    viewer_jid: str | None = None,
    highlight: int | None = None,
) -> str:
    """Decorated messages (chat.queries.decorate) as HTML. `plain`: links stay text (a conversation waiting in
    the viewer's Requests)."""
    context = {
        **message_context(conversation_id, plain=plain, viewer_jid=viewer_jid),
        "chat_messages": items,
        "highlight": highlight,
    }
    return render_fast("chat/_messages.html", context)


def messages_for(user: User, mine: Participant, items: Iterable[Message]) -> str:
    """Messages as `user` sees them in the conversation of `mine` (reads names, markers and hops)."""
    decorated = queries.decorate(mine.conversation, items, viewer_jid=user.jid)
    return messages(mine.conversation_id, decorated, plain=mine.is_request, viewer_jid=user.jid)


def statuses(conversation_id: int, items: Iterable[Message]) -> str:
    """The status lines of decorated messages from local senders (only their senders' screens show them)."""
    shown = [m for m in items if getattr(m, "has_status", False)]
    if not shown:
        return ""
    return render_fast("chat/_statuses.html", {"chat_messages": shown, "conversation_id": conversation_id})


def row(
    summary: queries.ConversationSummary, *, viewer_jid: str, open_id: int | None = None, bump: bool = False
) -> str:
    """One row of the conversation list, as `viewer_jid` sees it (title, "You:"). `bump`: pushed for a new
    message, so static/js/chat.js moves it to the top of its list."""
    context = {"summary": summary, "open_id": open_id, "viewer_jid": viewer_jid, "bump": bump}
    return render_fast("chat/_conversation_row.html", context).strip()


def conversation_list(user: User, context: dict[str, object], *, open_id: int | None, oob: bool) -> str:
    return render_to_string(
        "chat/_conversation_list.html", {**context, "open_id": open_id, "oob": oob, "viewer_jid": user.jid}
    )


def conversation_list_for(user: User, *, open_id: int | None = None, oob: bool = True) -> str:
    """The whole conversation list (a re-sync, or after the set of conversations changed)."""
    return conversation_list(user, queries.conversation_list(user), open_id=open_id, oob=oob)


def pane_head_for(user: User, mine: Participant) -> str:
    """The open conversation's header alone, for a push after the room changed (name, topic, members)."""
    return render_to_string("chat/_pane_head.html", {**queries.head(user, mine), "oob": True})


def typing(conversation_id: int, names: list[str]) -> str:
    return render_to_string("chat/_typing.html", {"conversation_id": conversation_id, "names": names})


def opened(conversation_id: int) -> str:
    return render_to_string("chat/_opened.html", {"conversation_id": conversation_id})


def composer_error(text: str, client_id: str, conversation_id: object, retry_after: int | None = None) -> str:
    context = {"error": text, "client_id": client_id, "conversation_id": conversation_id, "retry_after": retry_after}
    return render_to_string("chat/_composer_error.html", context)


def error(text: str) -> str:
    return render_to_string("accounts/_feedback.html", {"error": text, "oob": True})
