"""The messenger's pages and fragments: the three-pane home, an open conversation, history pages, message
changes and room management. Each view reads through `chat.actions` (which authorise) or calls one action,
and answers htmx with the same partials the full page and the WebSocket pushes use.

The rendering helpers here (`pane_context`, `render_messages`, `render_conversation_list`, ...) are shared
with `chat.consumers`, so a message looks the same whichever door it came through.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import wraps

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts import actions as accounts
from accounts.contacts_views import contacts_context
from accounts.errors import AccountError
from accounts.jid import parse_bare_jid
from accounts.models import RosterItem, Subscription, User
from chat import actions
from chat.actions.common import membership, message_max_chars
from chat.errors import ChatError, NotFound
from chat.models import Conversation, Message, Participant

# htmx swaps 422 (see the htmx-config meta in base.html): an error replaces the feedback next to the form.
ERROR_STATUS = 422
PAGE_SIZE = 50
AROUND = 25
LIST_LIMIT = 200
# The common reactions offered by the picker; any other emoji can still arrive from other clients.
PICKER_EMOJI = ("👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀")


# --- Reading for display ----------------------------------------------------------------------------------


def conversation_list_context(user: User) -> dict[str, object]:
    """What `chat/_conversation_list.html` needs: the list split into chats and Requests, and unread totals."""
    summaries = actions.conversations_for(user, limit=LIST_LIMIT)
    chats = [s for s in summaries if not s.is_request]
    requests = [s for s in summaries if s.is_request]
    return {
        "chats": chats,
        "chat_requests": requests,
        "unread_total": sum(s.unread for s in chats),
        "top": [s.id for s in summaries[:1]],
    }


def render_conversation_list(user: User, *, open_id: int | None = None, oob: bool = False) -> str:
    return render_conversation_list_top(user, open_id=open_id, oob=oob)[0]


def render_conversation_list_top(
    user: User, *, open_id: int | None = None, oob: bool = False
) -> tuple[str, int | None]:
    """The conversation list, and the id of its most recent conversation (None when there is none)."""
    context = {**conversation_list_context(user), "open_id": open_id, "oob": oob, "user": user}
    top = next(iter(context["top"]), None)  # type: ignore[call-overload]
    return render_to_string("chat/_conversation_list.html", context), top


def render_list_top(user: User, conversation_id: int, *, open_id: int | None = None) -> str | None:
    """The conversation list's first row alone, as an out-of-band swap of that row, when `conversation_id` is
    the user's most recent conversation; None otherwise. The caller knows it was on top of the list on screen:
    then the order did not change (otherwise it must render the whole list).

    A message in the conversation already on top (the usual case in a busy chat) changes only that row, and
    re-rendering it alone costs one short query set and one row instead of every row of the list.
    """
    top = actions.conversations_for(user, limit=1)
    if not top or top[0].id != conversation_id:
        return None
    context = {"summary": top[0], "open_id": open_id, "user": user, "row_oob": True}
    return render_to_string("chat/_conversation_row.html", context).strip()


def _names(conversation_id: int) -> dict[str, str]:
    """Every jid that ever took part here → the name the UI shows (people who left still have names)."""
    rows = Participant.objects.filter(conversation_id=conversation_id).select_related("user")
    return {p.jid: (p.user.name if p.user is not None else p.jid.partition("@")[0] or p.jid) for p in rows}


def _status(message: Message, others: list[Participant], names: dict[str, str], is_room: bool) -> tuple[str, str]:
    """The sender's view of one of their messages: (label, title) from the other participants' markers."""
    if not others:
        return "Sent", ""
    readers = [p for p in others if p.last_read_seq >= message.seq]
    if is_room:
        if readers:
            who = ", ".join(sorted(names.get(p.jid, p.jid) for p in readers))
            return f"Read by {len(readers)}", f"Read by {who}"
        if any(p.last_delivered_seq >= message.seq for p in others):
            return "Delivered", ""
        return "Sent", ""
    if readers:
        return "Read", ""
    if any(p.last_delivered_seq >= message.seq for p in others):
        return "Delivered", ""
    return "Sent", ""


def decorate(user: User, mine: Participant, items: Iterable[Message]) -> list[Message]:
    """Attach what `chat/_message.html` shows beyond the row: sender name, reactions grouped, delivery status.

    At most two queries for any number of messages (names, and markers when some are the user's own);
    reactions and replies come prefetched.
    """
    items = list(items)
    if not items:
        return items
    conversation = mine.conversation
    is_room = conversation.kind == Conversation.Kind.ROOM
    names = _names(conversation.pk)
    others: list[Participant] = []
    if any(m.sender_jid == user.jid for m in items):  # only the user's own messages show markers
        current = Participant.objects.filter(conversation=conversation, left_at__isnull=True)
        others = [p for p in current if p.pk != mine.pk]
    for message in items:
        message.sender_name = names.get(message.sender_jid, message.sender_jid)
        message.is_mine = message.sender_jid == user.jid
        chips: dict[str, list[str]] = defaultdict(list)
        for reaction in message.reactions.all():
            chips[reaction.emoji].append(reaction.jid)
        message.chips = [
            {"emoji": emoji, "count": len(who), "mine": user.jid in who, "who": ", ".join(names.get(j, j) for j in who)}
            for emoji, who in chips.items()
        ]
        if message.is_mine:
            message.status_label, message.status_title = _status(message, others, names, is_room)
        if message.reply_to is not None:
            message.reply_to.sender_name = names.get(message.reply_to.sender_jid, message.reply_to.sender_jid)
    return items


def message_context(user: User, mine: Participant) -> dict[str, object]:
    return {
        "conversation_id": mine.conversation_id,
        "plain": mine.is_request,
        "picker": PICKER_EMOJI,
        "user": user,
    }


def render_messages(user: User, mine: Participant, items: Iterable[Message], *, inbox: bool = False) -> str:
    """Messages as HTML; with `inbox`, wrapped for a WebSocket push (static/js/chat.js places each one)."""
    context = {**message_context(user, mine), "chat_messages": decorate(user, mine, items), "inbox": inbox}
    return render_to_string("chat/_messages.html", context)


def render_statuses(user: User, mine: Participant, items: Iterable[Message]) -> str:
    """The delivery status of the user's own messages among `items`, for a push after a receipt."""
    own = [m for m in decorate(user, mine, items) if m.sender_jid == user.jid and not m.is_deleted]
    if not own:
        return ""
    return render_to_string("chat/_statuses.html", {"chat_messages": own, "conversation_id": mine.conversation_id})


def members_of(conversation: Conversation) -> list[Participant]:
    rows = Participant.objects.filter(conversation=conversation, left_at__isnull=True).select_related("user")
    return sorted(rows, key=lambda p: (p.role != Participant.Role.OWNER, p.joined_at, p.pk))


def head_context(user: User, mine: Participant) -> dict[str, object]:
    """What `chat/_pane_head.html` needs: the title, the topic and, in rooms, members and settings."""
    conversation = mine.conversation
    members = members_of(conversation)
    peer = next((p for p in members if p.user_id != user.pk), None) if conversation.kind != "room" else None
    if conversation.kind == Conversation.Kind.ROOM:
        title = conversation.name
    elif peer is not None and peer.user is not None:
        title = peer.user.name
    else:
        title = next((j for j in (conversation.direct_key or "").split(" ") if j != user.jid), "Conversation")
    invitable: list[RosterItem] = []
    if conversation.kind == Conversation.Kind.ROOM and mine.role == Participant.Role.OWNER:
        inside = {p.jid for p in members}
        invitable = [
            item
            for item in RosterItem.objects.filter(owner=user, subscription=Subscription.BOTH).order_by("jid")
            if item.jid not in inside
        ]
    return {
        "conversation": conversation,
        "mine": mine,
        "is_room": conversation.kind == Conversation.Kind.ROOM,
        "is_owner": mine.role == Participant.Role.OWNER,
        "title": title,
        "peer": peer,
        "members": members,
        "invitable": invitable,
        "user": user,
    }


def render_pane_head(user: User, mine: Participant) -> str:
    """The open conversation's header alone, for a push after the room changed (name, topic, members)."""
    return render_to_string("chat/_pane_head.html", {**head_context(user, mine), "oob": True})


def pane_context(user: User, mine: Participant, items: list[Message], *, mode: str = "newest") -> dict[str, object]:
    """Everything `chat/_pane.html` needs. `mode`: "newest" (the last page) or "around" (a jump target)."""
    return {
        **message_context(user, mine),
        **head_context(user, mine),
        "chat_messages": decorate(user, mine, items),
        "oldest_seq": items[0].seq if items else None,
        "newest_seq": items[-1].seq if items else 0,
        "has_older": bool(items) and items[0].seq > 1,
        "at_newest": not items or items[-1].seq >= mine.conversation.last_seq,
        "mode": mode,
        "max_chars": message_max_chars(),
    }


def _home_context(user: User, open_id: int | None = None) -> dict[str, object]:
    return {
        **contacts_context(user),
        **conversation_list_context(user),
        "open_id": open_id,
        "room_candidates": _room_candidates(user),
        "max_chars": message_max_chars(),
    }


def _membership_or_404(user: User, conversation_id: object) -> Participant:
    try:
        return membership(user, conversation_id)
    except NotFound:
        raise Http404("There is no such conversation.") from None


def _chat_errors_as_404(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A conversation the user is not in answers 404 everywhere, exactly like one that does not exist."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFound:
            raise Http404("There is no such conversation.") from None

    return wrapper


# --- Pages ------------------------------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "landing.html")
    return render(request, "home.html", _home_context(request.user))


@login_required
def topbar(request: HttpRequest) -> HttpResponse:
    """The signed-in top bar alone, for htmx to refresh after the profile changes."""
    return render(request, "_topbar.html")


@login_required
@require_GET
@_chat_errors_as_404
def conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    mine = _membership_or_404(request.user, conversation_id)
    items = actions.messages_before(request.user, mine.conversation_id, None, PAGE_SIZE)
    context = {**_home_context(request.user, mine.conversation_id), **pane_context(request.user, mine, items)}
    return render(request, "home.html", context)


@login_required
@require_GET
@_chat_errors_as_404
def around(request: HttpRequest, conversation_id: int, seq: int) -> HttpResponse:
    """A page of messages around `seq`, the target highlighted and scrolled to (search results link here)."""
    mine = _membership_or_404(request.user, conversation_id)
    try:
        before = actions.messages_before(request.user, mine.conversation_id, seq + 1, AROUND + 1)
        after = actions.messages_after(request.user, mine.conversation_id, seq, AROUND)
    except ChatError:  # a seq no message can have
        raise Http404("There is no such message.") from None
    items = before + after
    context = {**_home_context(request.user, mine.conversation_id), **pane_context(request.user, mine, items)}
    context.update({"mode": "around", "highlight": seq})
    return render(request, "home.html", context)


@login_required
@require_GET
@_chat_errors_as_404
def history(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """An htmx page of history: `?before=<seq>` (scrolling up) or `?after=<seq>` (catching up downwards)."""
    mine = _membership_or_404(request.user, conversation_id)
    before, after = request.GET.get("before"), request.GET.get("after")
    try:
        if before is not None and after is None:
            items = actions.messages_before(request.user, mine.conversation_id, before, PAGE_SIZE)
            direction = "before"
        elif after is not None and before is None:
            items = actions.messages_after(request.user, mine.conversation_id, after, PAGE_SIZE)
            direction = "after"
        else:
            return HttpResponse("Give exactly one of before or after.", status=400, content_type="text/plain")
    except ChatError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    context = {
        **message_context(request.user, mine),
        "chat_messages": decorate(request.user, mine, items),
        "direction": direction,
        "has_older": bool(items) and items[0].seq > 1,
        "oldest_seq": items[0].seq if items else None,
        "newest_seq": items[-1].seq if items else None,
        "at_newest": not items or items[-1].seq >= mine.conversation.last_seq,
        "conversation": mine.conversation,
    }
    return render(request, "chat/_history.html", context)


@login_required
@require_GET
def new_chat(request: HttpRequest) -> HttpResponse:
    """Open the direct conversation with `?to=<jid>`, or a blank one whose first message creates it."""
    text = request.GET.get("to", "")
    try:
        jid = str(parse_bare_jid(text))
    except AccountError as exc:
        flash.error(request, str(exc))
        return redirect("home")
    if jid == request.user.jid:
        flash.error(request, "That is your own address; you cannot send messages to yourself.")
        return redirect("home")
    existing = (
        Participant.objects.filter(
            user=request.user, left_at__isnull=True, conversation__direct_key=actions.direct_key(request.user.jid, jid)
        )
        .values_list("conversation_id", flat=True)
        .first()
    )
    if existing is not None:
        return redirect("conversation", conversation_id=existing)
    context = {**_home_context(request.user), "new_to": jid, "max_chars": message_max_chars()}
    return render(request, "home.html", context)


# --- Changing things --------------------------------------------------------------------------------------


def _error(request: HttpRequest, text: str, target: str = "chat-feedback") -> HttpResponse:
    if not request.htmx:
        flash.error(request, text)
        return redirect(request.META.get("HTTP_REFERER") or "home")
    html = render_to_string("chat/_feedback.html", {"error": text, "feedback_id": target}, request)
    response = HttpResponse(html, status=ERROR_STATUS)
    # The error goes next to the form the user used, whatever the form's own target is.
    response["HX-Retarget"] = f"#{target}"
    response["HX-Reswap"] = "outerHTML"
    return response


def _message_answer(request: HttpRequest, mine: Participant, seq: int) -> HttpResponse:
    """After a change to one message: the message re-rendered (htmx swaps it in place)."""
    item = actions.messages_after(request.user, mine.conversation_id, seq - 1, 1)
    if not request.htmx:
        return redirect("conversation", conversation_id=mine.conversation_id)
    return HttpResponse(render_messages(request.user, mine, item))


def _message_view(change: Callable[[HttpRequest, int, int], object]) -> Callable[..., HttpResponse]:
    @login_required
    @require_POST
    @_chat_errors_as_404
    @wraps(change)
    def view(request: HttpRequest, conversation_id: int, seq: int) -> HttpResponse:
        mine = _membership_or_404(request.user, conversation_id)
        try:
            change(request, mine.conversation_id, seq)
        except ChatError as exc:
            return _error(request, str(exc), f"message-feedback-{mine.conversation_id}-{seq}")
        return _message_answer(request, mine, seq)

    return view


@_message_view
def edit_message(request: HttpRequest, conversation_id: int, seq: int) -> None:
    actions.edit_message(request.user, conversation_id, seq, request.POST.get("body", ""))


@_message_view
def delete_message(request: HttpRequest, conversation_id: int, seq: int) -> None:
    actions.delete_message(request.user, conversation_id, seq)


@_message_view
def react(request: HttpRequest, conversation_id: int, seq: int) -> None:
    """Toggle the user's reaction: add it, or take it off if they already reacted with it."""
    emoji = request.POST.get("emoji", "")
    if request.POST.get("remove") == "1":
        actions.unreact(request.user, conversation_id, seq, emoji)
    else:
        actions.react(request.user, conversation_id, seq, emoji)


def _conversation_view(
    change: Callable[[HttpRequest, int], str | None],
) -> Callable[..., HttpResponse]:
    """A POST about a whole conversation: call the action; reload the page (htmx) or redirect back."""

    @login_required
    @require_POST
    @_chat_errors_as_404
    @wraps(change)
    def view(request: HttpRequest, conversation_id: int) -> HttpResponse:
        mine = _membership_or_404(request.user, conversation_id)
        try:
            where = change(request, mine.conversation_id)
        except (ChatError, AccountError) as exc:
            return _error(request, str(exc), f"room-feedback-{mine.conversation_id}")
        target = where or reverse("conversation", args=[mine.conversation_id])
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return redirect(target)

    return view


@_conversation_view
def accept_request(request: HttpRequest, conversation_id: int) -> None:
    actions.accept_conversation_request(request.user, conversation_id)


@_conversation_view
def block_request(request: HttpRequest, conversation_id: int) -> str:
    """Block whoever started this request (the conversation then stays out of sight in Requests)."""
    peer = Participant.objects.filter(conversation_id=conversation_id).exclude(user=request.user).first()
    if peer is None or Conversation.objects.get(pk=conversation_id).kind != Conversation.Kind.DIRECT:
        raise ChatError("Only a conversation between two people can be blocked this way.")
    accounts.block_jid(request.user, peer.jid)
    flash.success(request, f"Blocked {peer.jid}. Nothing from them reaches you now.")
    return reverse("home")


@_conversation_view
def invite(request: HttpRequest, conversation_id: int) -> None:
    actions.invite(request.user, conversation_id, request.POST.get("jid", ""))


@_conversation_view
def remove_member(request: HttpRequest, conversation_id: int) -> None:
    actions.remove_member(request.user, conversation_id, request.POST.get("jid", ""))


@_conversation_view
def leave(request: HttpRequest, conversation_id: int) -> str:
    actions.leave(request.user, conversation_id)
    return reverse("home")


@_conversation_view
def rename(request: HttpRequest, conversation_id: int) -> None:
    actions.rename_room(request.user, conversation_id, request.POST.get("name", ""))


@_conversation_view
def set_topic(request: HttpRequest, conversation_id: int) -> None:
    actions.set_topic(request.user, conversation_id, request.POST.get("topic", ""))


def _room_candidates(user: User) -> list[RosterItem]:
    return list(RosterItem.objects.filter(owner=user, subscription=Subscription.BOTH).order_by("jid"))


@login_required
def create_room(request: HttpRequest) -> HttpResponse:
    """POST: create a room. GET: the contacts it can start with (the form re-reads them when it opens)."""
    if request.method != "POST":
        return render(request, "chat/_room_people.html", {"room_candidates": _room_candidates(request.user)})
    try:
        room = actions.create_room(
            request.user, request.POST.get("name", ""), request.POST.get("topic", ""), request.POST.getlist("members")
        )
    except (ChatError, AccountError) as exc:
        return _error(request, str(exc), "room-create-feedback")
    target = reverse("conversation", args=[room.pk])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target)
