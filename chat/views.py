"""The messenger's pages and fragments: the three-pane home, an open conversation, history pages, message
changes and room management. Each view reads through `chat.actions` (which authorise) or calls one action,
and answers htmx with the same partials the full page and the WebSocket pushes use.

Reading goes through `chat.queries` and rendering through `chat.fragments`, the same functions the delivery
step and the sockets use, so a message looks the same whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts import actions as accounts
from accounts.contacts_views import contacts_context, typed_address
from accounts.errors import AccountError, NoSuchUser
from accounts.jid import parse_bare_jid
from accounts.models import RosterItem, User
from chat import actions, files, fragments, queries
from chat.access import membership
from chat.actions.common import message_max_chars
from chat.actions.conversations import conversation_opened, set_marked_unread, set_muted, set_pinned
from chat.errors import ChatError, NotFound
from chat.models import Conversation, Message, Participant

# htmx swaps 422 (see the htmx-config meta in base.html): an error replaces the feedback next to the form.
ERROR_STATUS = 422
PAGE_SIZE = 50
AROUND = 25


# --- Reading for display ----------------------------------------------------------------------------------


def pane_context(user: User, mine: Participant, items: list[Message], *, mode: str = "newest") -> dict[str, object]:
    """Everything `chat/_pane.html` needs. `mode`: "newest" (the last page) or "around" (a jump target)."""
    return {
        **fragments.message_context(mine.conversation_id, plain=mine.is_request, viewer_jid=user.jid),
        **queries.head(user, mine),
        "chat_messages": queries.decorate(mine.conversation, items, viewer_jid=user.jid),
        "oldest_seq": items[0].seq if items else None,
        "newest_seq": items[-1].seq if items else 0,
        "has_older": bool(items) and items[0].seq > 1,
        "at_newest": not items or items[-1].seq >= mine.conversation.last_seq,
        "mode": mode,
        "max_chars": message_max_chars(),
        "file_limits": files.limits_for(user),
    }


def _home_context(user: User, open_id: int | None = None) -> dict[str, object]:
    return {
        **contacts_context(user),
        **queries.conversation_list(user),
        "open_id": open_id,
        "viewer_jid": user.jid,
        "room_candidates": queries.room_candidates(user),
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
    conversation_opened(mine)  # opening it takes a "mark as unread" off
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
        **fragments.message_context(mine.conversation_id, plain=mine.is_request, viewer_jid=request.user.jid),
        "chat_messages": queries.decorate(mine.conversation, items, viewer_jid=request.user.jid),
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
    """Open the direct conversation with `?to=<jid>` (anyone, here or on another server; a bare username means
    someone here), or a blank one whose first message creates it: it waits in their Requests if they have not
    added the user.

    Without `to`, the plain "New chat" page (the no-JavaScript door). A bad address answers that form again with
    the reason under the field; from htmx (the "New chat" panel) a good one answers with where to go."""
    if "to" not in request.GET and not request.htmx:
        return render(request, "chat/new_chat.html", {"to": ""})
    typed = request.GET.get("to", "").strip()
    text = typed
    if text and "@" not in text.lstrip("@"):
        text = f"{text.lstrip('@')}@{request.user.jid.rpartition('@')[2]}"
    try:
        parsed = parse_bare_jid(text)
    except AccountError as exc:
        reason = str(exc)
        if "@" not in typed:  # the message would name the address made of it, not what was typed
            reason = f"“{typed}” is nobody's name here. Pick a contact, or type an address like alice@example.org."
        return _new_chat_error(request, typed, reason)
    jid = str(parsed)
    if jid == request.user.jid:
        return _new_chat_error(request, typed, "That is your own address; you cannot send messages to yourself.")
    if accounts.is_blocked(request.user, jid):
        return _new_chat_error(request, typed, f"You have blocked {jid}. Unblock them to send them messages.")
    existing = (
        Participant.objects.filter(
            user=request.user, left_at__isnull=True, conversation__direct_key=actions.direct_key(request.user.jid, jid)
        )
        .values_list("conversation_id", flat=True)
        .first()
    )
    if existing is None and parsed.is_local:
        # Someone here must exist; one who blocks the user gets the same answer, as when a message is sent.
        peer = accounts.local_user_for(parsed)
        if peer is None or accounts.is_blocked(peer, request.user.jid):
            return _new_chat_error(request, typed, str(NoSuchUser(jid)))
    if request.htmx:
        target = reverse("conversation", args=[existing]) if existing is not None else None
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target or f"{reverse('chat_new')}?{urlencode({'to': jid})}"
        return response
    if existing is not None:
        return redirect("conversation", conversation_id=existing)
    context = {
        **_home_context(request.user),
        "new_to": jid,
        "max_chars": message_max_chars(),
        "file_limits": files.limits_for(request.user),
    }
    return render(request, "home.html", context)


def _new_chat_error(request: HttpRequest, typed: str, error: str) -> HttpResponse:
    """The "New chat" form again, what was typed kept and the reason under the field: the panel alone for htmx
    (it stays where it is), else the plain page."""
    context = {"to": typed, "error": error, "suggestions": []}
    template = "chat/_new_chat.html" if request.htmx else "chat/new_chat.html"
    return render(request, template, context, status=ERROR_STATUS)


NEW_CHAT_SUGGESTIONS = 8


def _new_chat_people(user: User, text: str) -> list[dict[str, object]]:
    """Whom "New chat" suggests for `text`: contacts whose address, nickname or name holds it, then people on this
    server who chose to be findable, then the address itself when it is a full one; in four queries at most."""
    needle = text.strip().lstrip("@").lower()
    if not needle:
        return []
    domain = user.jid.rpartition("@")[2]
    items = list(RosterItem.objects.filter(owner=user, listed=True).only("jid", "name"))
    usernames = [item.jid.removesuffix(f"@{domain}") for item in items if item.jid.endswith(f"@{domain}")]
    local = {person.jid: person for person in User.objects.filter(username__in=usernames, is_active=True)}
    found: list[dict[str, object]] = []
    for item in items:
        person = local.get(item.jid)
        name = item.name or (person.name if person else item.jid.partition("@")[0])
        if needle in item.jid.lower() or needle in name.lower():
            found.append({"jid": item.jid, "name": name, "person": person, "contact": True})
    found.sort(key=lambda suggestion: (not str(suggestion["name"]).lower().startswith(needle), suggestion["jid"]))
    found = found[:NEW_CHAT_SUGGESTIONS]
    listed = {suggestion["jid"] for suggestion in found}
    others = [person for person in accounts.search_directory(user, text) if person.jid not in listed]
    for person in others[: NEW_CHAT_SUGGESTIONS - len(found)]:
        found.append({"jid": person.jid, "name": person.name, "person": person, "contact": False})
    address = typed_address(user, text, [])
    if address and address not in {suggestion["jid"] for suggestion in found}:
        found.append({"jid": address, "name": address, "person": None, "contact": False, "address": True})
    return found


@login_required
@require_GET
def new_chat_people(request: HttpRequest) -> HttpResponse:
    """The "New chat" suggestions for what is typed in its field (`?to=`), each opening the chat with them; the
    field asks for them as the user types (htmx takes the list out of the panel)."""
    typed = request.GET.get("to", "").strip()
    return render(request, "chat/_new_chat.html", {"to": typed, "suggestions": _new_chat_people(request.user, typed)})


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
    return HttpResponse(fragments.messages_for(request.user, mine, item))


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
    """Add the user's reaction (the picker), take it off (`remove=1`), or toggle it (`toggle=1`: a reaction chip,
    which is rendered the same for everyone, so the server decides which way it goes)."""
    emoji = request.POST.get("emoji", "")
    remove = request.POST.get("remove") == "1"
    if request.POST.get("toggle") == "1":
        remove = actions.has_reacted(request.user, conversation_id, seq, emoji)
    if remove:
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
    """Block whoever started this request: it leaves Requests in every tab (`accounts.block_jid` hides it, and
    unblocking brings it back)."""
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


@login_required
def create_room(request: HttpRequest) -> HttpResponse:
    """POST: create a room. GET: the contacts it can start with (the form re-reads them when it opens)."""
    if request.method != "POST":
        return render(request, "chat/_room_people.html", {"room_candidates": queries.room_candidates(request.user)})
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


# --- One's own settings: mute, pin, mark as unread --------------------------------------------------------


def _open_in_tab(request: HttpRequest) -> int | None:
    """The conversation open in the tab that asked (htmx names the page it is on), else None."""
    try:
        match = resolve(urlsplit(request.headers.get("HX-Current-URL", "")).path)
    except Resolver404:
        return None
    if match.url_name in ("conversation", "conversation_around"):
        return int(match.kwargs["conversation_id"])
    return None


def _back(request: HttpRequest, conversation_id: int, *, not_its_page: bool) -> HttpResponse:
    """Without JavaScript: back to the page the form was on (a page of this site, else the home). `not_its_page`:
    never to the conversation's own page, where opening it would undo the change (mark as unread)."""
    referer = request.META.get("HTTP_REFERER", "")
    safe = url_has_allowed_host_and_scheme(referer, {request.get_host()}, require_https=request.is_secure())
    if not safe or (not_its_page and urlsplit(referer).path == reverse("conversation", args=[conversation_id])):
        return redirect("home")
    return redirect(referer)


def _setting_view(field: str, change: Callable[[User, int, bool], Participant]) -> Callable[..., HttpResponse]:
    """A POST that sets one of the user's own settings for a conversation: `field` "1" (or absent) turns it on,
    "0" off. htmx gets the list (and the open header, when it is this conversation) to swap; every other tab of
    the user hears it on its socket; a plain form goes back where it came from."""

    @login_required
    @require_POST
    @_chat_errors_as_404
    def view(request: HttpRequest, conversation_id: int) -> HttpResponse:
        mine = change(request.user, conversation_id, request.POST.get(field, "1") != "0")
        if not request.htmx:
            return _back(request, mine.conversation_id, not_its_page=field == "unread")
        open_id = _open_in_tab(request)
        html = fragments.conversation_list_for(request.user, open_id=open_id, oob=True)
        if open_id == mine.conversation_id:
            html += fragments.pane_head_for(request.user, mine)
        return HttpResponse(html)

    view.__name__ = view.__qualname__ = f"set_{field}"
    return view


mute = _setting_view("muted", set_muted)
pin = _setting_view("pinned", set_pinned)
mark_unread = _setting_view("unread", set_marked_unread)
