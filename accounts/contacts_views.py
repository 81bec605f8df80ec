"""Contact-list and presence endpoints. Each parses a form, calls one action, and answers htmx with fragments
(the same partials the full page and the WebSocket pushes use) or, without htmx, redirects back home."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from accounts import actions
from accounts.errors import AccountError
from accounts.jid import parse_bare_jid
from accounts.models import CHOOSABLE_SHOWS, BlockedJid, RosterItem, User
from accounts.roster import roster_view

# htmx swaps 422 (see the htmx-config meta in base.html): errors replace the feedback region in place.
ERROR_STATUS = 422


def contacts_context(user: User, *, oob: bool = False) -> dict[str, object]:
    """What `accounts/_contacts.html` needs; the home page, htmx answers and WebSocket pushes all use it."""
    return {"roster": roster_view(user), "oob": oob, "user": user, "show_choices": CHOOSABLE_SHOWS}


def render_contacts(request: HttpRequest | None, user: User, *, oob: bool) -> str:
    """The contact list, the Requests area and the user's own presence, as one HTML string.

    With `oob`, each part carries hx-swap-oob so htmx (over HTTP or the WebSocket) swaps it by id.
    """
    return render_to_string("accounts/_contacts.html", contacts_context(user, oob=oob), request)


def _answer(request: HttpRequest, *, ok: str | None = None, error: str | None = None, extra: str = "") -> HttpResponse:
    """Feedback for a contact action: for htmx, the feedback region plus refreshed lists; else a redirect."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        elif ok:
            messages.success(request, ok)
        return redirect(request.POST.get("next") or "home")
    feedback = render_to_string("accounts/_feedback.html", {"ok": ok, "error": error}, request)
    body = feedback + extra + render_contacts(request, request.user, oob=True)
    return HttpResponse(body, status=ERROR_STATUS if error else 200)


def _contact_view(action: Callable[..., object], ok: str, *fields: str) -> Callable[[HttpRequest], HttpResponse]:
    """A POST endpoint that calls `action(user, jid, *fields)` and answers with `ok` (formatted with the jid)."""

    @login_required
    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        jid = request.POST.get("jid", "").strip()
        try:
            action(request.user, jid, *(request.POST.get(name, "") for name in fields))
        except AccountError as exc:
            return _answer(request, error=str(exc))
        return _answer(request, ok=ok.format(jid=jid))

    return view


def _split_groups(user: User, jid: str, groups: str) -> object:
    return actions.set_contact_groups(user, jid, groups.split(","))


accept_request = _contact_view(actions.accept_subscription, "{jid} is now in your contacts.")
decline_request = _contact_view(actions.decline_subscription, "Declined the request from {jid}.")
remove_contact = _contact_view(actions.remove_contact, "Removed {jid} from your contacts.")
rename_contact = _contact_view(actions.rename_contact, "Nickname saved.", "name")
set_groups = _contact_view(_split_groups, "Groups saved.", "groups")
block = _contact_view(actions.block_jid, "Blocked {jid}. Nothing from them reaches you now.")


@login_required
@require_POST
def add_contact(request: HttpRequest) -> HttpResponse:
    jid = request.POST.get("jid", "")
    try:
        item = actions.request_subscription(request.user, jid, message=request.POST.get("message", ""))
    except AccountError as exc:
        return _answer(request, error=str(exc))
    # The search that led here is done: clear its results.
    cleared = render_to_string("accounts/_search_results.html", {"oob": True}, request)
    if item.sees_presence:
        return _answer(request, ok=f"{item.jid} is now in your contacts.", extra=cleared)
    return _answer(request, ok=f"Request sent to {item.jid}. You can message them while you wait.", extra=cleared)


@login_required
@require_POST
def unblock(request: HttpRequest) -> HttpResponse:
    jid = request.POST.get("jid", "")
    try:
        actions.unblock_jid(request.user, jid)
    except AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Unblocked {jid}.")
    return redirect("blocklist")


@login_required
def blocklist(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            blocked = actions.block_jid(request.user, request.POST.get("jid", ""))
        except AccountError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Blocked {blocked.jid}.")
        return redirect("blocklist")
    blocked = BlockedJid.objects.filter(owner=request.user)
    return render(request, "accounts/blocklist.html", {"blocked": blocked})


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q") or request.GET.get("jid", "")
    people = actions.search_directory(request.user, query)
    known = set(
        RosterItem.objects.filter(owner=request.user, listed=True, jid__in=[p.jid for p in people]).values_list(
            "jid", flat=True
        )
    )
    context = {
        "people": people,
        "known": known,
        "query": query.strip(),
        "address": typed_address(request.user, query, people),
    }
    return render(request, "accounts/_search_results.html", context)


def typed_address(user: User, query: str, people: list[User]) -> str | None:
    """The full address typed in the finder (anyone, here or on another server), to offer a chat with it;
    None when the text is no complete address, is the user's own, or is one of the people found."""
    if "@" not in query.strip().lstrip("@"):
        return None
    try:
        jid = str(parse_bare_jid(query))
    except AccountError:
        return None
    if jid == user.jid or any(person.jid == jid for person in people):
        return None
    return jid


@login_required
@require_GET
def contacts_fragment(request: HttpRequest) -> HttpResponse:
    """The lists alone: what a page asks for when it wants to re-sync without a socket."""
    return HttpResponse(render_contacts(request, request.user, oob=False))


@login_required
@require_POST
def set_presence(request: HttpRequest) -> HttpResponse:
    try:
        actions.set_presence(request.user, show=request.POST.get("show", ""), status=request.POST.get("status"))
    except AccountError as exc:
        return _answer(request, error=str(exc))
    request.user.refresh_from_db()
    if not request.htmx:
        return redirect("home")
    response = HttpResponse(render_contacts(request, request.user, oob=True))
    response["HX-Trigger"] = "profile-changed"
    return response
