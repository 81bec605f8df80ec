"""/report/: the page where a person reports a message they received, a contact request or a contact.

A plain page (no script needed): GET shows what is reported and the form, POST files the report
(imweb.dashboard.reports checks everything again) and goes back where the person came from. Whatever they try
to report that they did not receive gets the same 404 page, whatever the ids look like.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_http_methods

from chat.access import membership
from chat.errors import NotFound
from imweb.dashboard.models import Report
from imweb.dashboard.reports import NOTE_MAX, ReportError, Target, file_report, target_of

app_name = "report"

ERROR_STATUS = 422
THANKS = "Thanks: the operators will look at it."


def _back(request: HttpRequest, target: Target) -> str:
    """Where the person goes after reporting (or cancelling): the conversation while they are still in it."""
    if target.conversation_id is not None:
        try:
            membership(request.user, target.conversation_id)
        except NotFound:
            return reverse("home")
        return reverse("conversation", args=[target.conversation_id])
    return reverse("home")


def _page(request: HttpRequest, kind: str, **where: object) -> HttpResponse:
    try:
        target = target_of(request.user, kind, **where)
    except ReportError as err:
        return render(request, "report/form.html", {"error": str(err), "target": None}, status=404)
    context: dict[str, object] = {
        "target": target,
        "kind_label": Report.Kind(target.kind).label.lower(),
        "reasons": Report.Reason.choices,
        "note_max": NOTE_MAX,
        "back": _back(request, target),
        "chosen": request.POST.get("reason", ""),
        "note": request.POST.get("note", ""),
        "also_block": request.POST.get("also_block") == "1",
    }
    if request.method == "POST":
        try:
            file_report(
                request.user,
                kind=kind,
                reason=request.POST.get("reason", ""),
                note=request.POST.get("note", ""),
                also_block=request.POST.get("also_block") == "1",
                request=request,
                **where,
            )
        except ReportError as err:
            return render(request, "report/form.html", {**context, "error": str(err)}, status=ERROR_STATUS)
        messages.success(request, THANKS)
        return redirect(_back(request, target))
    return render(request, "report/form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def message(request: HttpRequest, conversation_id: str, seq: str) -> HttpResponse:
    """Report message `seq` of a conversation (both taken as text: the checks refuse every malformed shape)."""
    return _page(request, Report.Kind.MESSAGE, conversation_id=conversation_id, seq=seq)


@login_required
@require_http_methods(["GET", "POST"])
def contact_request(request: HttpRequest) -> HttpResponse:
    """Report the contact request (or the first message) waiting from `?jid=`."""
    return _page(request, Report.Kind.REQUEST, jid=request.POST.get("jid") or request.GET.get("jid", ""))


@login_required
@require_http_methods(["GET", "POST"])
def contact(request: HttpRequest) -> HttpResponse:
    """Report the contact `?jid=`."""
    return _page(request, Report.Kind.CONTACT, jid=request.POST.get("jid") or request.GET.get("jid", ""))


urlpatterns: list[URLPattern] = [
    path("message/<str:conversation_id>/<str:seq>", message, name="message"),
    path("request", contact_request, name="request"),
    path("contact", contact, name="contact"),
]
