"""People: search everyone on this server, a person's page, and what an operator can do to them; plus the
service-wide blocks of remote addresses, and removing a message by its place (conversation and seq)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from accounts import export_views
from accounts.models import PresenceSession, RosterItem, User
from chat.models import Message, Participant
from federation.models import BlockedAddress
from imweb.dashboard import moderation
from imweb.dashboard.access import MODERATE, staff_view
from imweb.dashboard.models import AuditEntry, Report

PAGE_SIZE = 50
RECENT_SIGN_INS = 10


@staff_view(MODERATE)
def people(request: HttpRequest) -> HttpResponse:
    """Everyone, newest first, or those whose username, name or email contains the query; a filter for the
    suspended."""
    query = request.GET.get("q", "").strip()[:150]
    people = User.objects.order_by("-date_joined")
    if query:
        people = people.filter(
            Q(username__icontains=query) | Q(display_name__icontains=query) | Q(email__icontains=query)
        )
    if request.GET.get("suspended"):
        people = people.filter(is_active=False)
    online = set(PresenceSession.objects.values_list("user_id", flat=True).distinct())
    page = Paginator(people, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboard/people.html",
        {
            "section": "people",
            "page": page,
            "query": query,
            "online": online,
            "suspended": request.GET.get("suspended"),
        },
    )


@staff_view(MODERATE)
def person(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(User, username=username.lower())
    contacts = RosterItem.objects.filter(owner=person, listed=True).order_by("jid")
    rooms = (
        Participant.objects.filter(user=person, left_at__isnull=True, conversation__kind="room")
        .select_related("conversation")
        .annotate(members=Count("conversation__participants", filter=Q(conversation__participants__left_at=None)))
        .order_by("conversation__name")
    )
    context = {
        "section": "people",
        "person": person,
        "online": PresenceSession.objects.filter(user=person).count(),
        "contacts": contacts,
        "rooms": rooms,
        "sent": Message.objects.filter(sender=person).count(),
        "reports": Report.objects.filter(reported_jid=person.jid).select_related("reporter")[:50],
        "sign_ins": AuditEntry.objects.filter(action="login.success", actor=person)[:RECENT_SIGN_INS],
        "history": AuditEntry.objects.filter(target=person.jid)[:50],
        "tokens": person.api_tokens.count(),
        "data_export": export_views.operator_context(person),
    }
    return render(request, "dashboard/person.html", context)


def _act(request: HttpRequest, username: str, act: Callable[[User], object], done: str) -> HttpResponse:
    """Do `act` to the person, then back to their page with `done` (or the reason it could not be done)."""
    person = get_object_or_404(User, username=username.lower())
    try:
        act(person)
    except moderation.ModerationError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, done.format(jid=person.jid))
    return HttpResponseRedirect(reverse("dashboard:person", args=[person.username]))


@require_POST
@staff_view(MODERATE)
def suspend(request: HttpRequest, username: str) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _act(
        request,
        username,
        lambda person: moderation.suspend(person, reason=reason, request=request),
        "Suspended {jid}: their tabs and API streams are closed and they cannot sign in.",
    )


@require_POST
@staff_view(MODERATE)
def unsuspend(request: HttpRequest, username: str) -> HttpResponse:
    return _act(
        request, username, lambda person: moderation.unsuspend(person, request=request), "{jid} can sign in again."
    )


@require_POST
@staff_view(MODERATE)
def password_reset(request: HttpRequest, username: str) -> HttpResponse:
    return _act(
        request,
        username,
        lambda person: moderation.force_password_reset(person, request=request),
        "{jid} is signed out everywhere and was sent a link to choose a new password.",
    )


@require_POST
@staff_view(MODERATE)
def warn(request: HttpRequest, username: str) -> HttpResponse:
    text = request.POST.get("text", "")
    return _act(
        request, username, lambda person: moderation.warn(person, text=text, request=request), "Warning sent to {jid}."
    )


@require_POST
@staff_view(MODERATE)
def delete(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(User, username=username.lower())
    if request.POST.get("confirm", "").strip().lower() != person.username:
        messages.error(request, f"Type the username {person.username} to confirm the deletion.")
        return HttpResponseRedirect(reverse("dashboard:person", args=[person.username]))
    try:
        moderation.delete_account(person, request=request)
    except moderation.ModerationError as err:
        messages.error(request, str(err))
        return HttpResponseRedirect(reverse("dashboard:person", args=[person.username]))
    messages.success(request, f"Deleted {person.jid} and its data.")
    return HttpResponseRedirect(reverse("dashboard:people"))


@require_POST
@staff_view(MODERATE)
def remove_message(request: HttpRequest, conversation_id: int, seq: int) -> HttpResponse:
    message = get_object_or_404(Message, conversation_id=conversation_id, seq=seq)
    moderation.remove_message(message, request=request, note=request.POST.get("note", "")[:500])
    messages.success(request, "The message is removed for everyone.")
    back = request.POST.get("next", "")
    if back.startswith("/dashboard/"):
        return HttpResponseRedirect(back)
    return HttpResponseRedirect(reverse("dashboard:people"))


@staff_view(MODERATE)
def blocked(request: HttpRequest) -> HttpResponse:
    """The remote addresses blocked for everyone here, and a form to block another."""
    if request.method == "POST":
        try:
            if request.POST.get("unblock"):
                moderation.unblock_address(request.POST["unblock"], request=request)
                messages.success(request, f"Unblocked {request.POST['unblock']}.")
            else:
                jid = request.POST.get("jid", "")
                moderation.block_address(jid, reason=request.POST.get("reason", ""), request=request)
                messages.success(request, f"Blocked {jid.strip()} for everyone on this server.")
            return HttpResponseRedirect(reverse("dashboard:blocked"))
        except moderation.ModerationError as err:
            messages.error(request, str(err))
    addresses = BlockedAddress.objects.order_by("jid")
    return render(request, "dashboard/blocked.html", {"section": "people", "addresses": addresses})


urlpatterns: list[URLPattern] = [
    path("people/", people, name="people"),
    path("people/<str:username>/", person, name="person"),
    path("people/<str:username>/suspend", suspend, name="person_suspend"),
    path("people/<str:username>/unsuspend", unsuspend, name="person_unsuspend"),
    path("people/<str:username>/password-reset", password_reset, name="person_password_reset"),
    path("people/<str:username>/warn", warn, name="person_warn"),
    path("people/<str:username>/delete", delete, name="person_delete"),
    path("people/<str:username>/export", export_views.operator_export, name="person_export"),
    path("people/<str:username>/export/status", export_views.operator_export_status, name="person_export_status"),
    path("people/<str:username>/export/download", export_views.operator_export_download, name="person_export_download"),
    path("messages/<int:conversation_id>/<int:seq>/remove", remove_message, name="message_remove"),
    path("blocked/", blocked, name="blocked"),
]
