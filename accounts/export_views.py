"""Pages of the data export: a person's "Download your data" (ask, watch it being prepared, download), and the
operator's "Export this account" on the dashboard's person page (ask, download; both in the audit log).

A download is served only to its owner (a person's own export) or to staff with the moderation permission (an
operator's export), from storage, as an attachment; everyone else gets the same 404 as for a token that does not
exist."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import export as exports
from accounts.models import DataExport, User
from imweb.dashboard import audit
from imweb.dashboard.access import MODERATE, staff_view

ACTIVE_POLL = "every 2s"  # while an export is being prepared: the progress bar moves
IDLE_POLL = "every 5s"  # otherwise: another tab's request (or the end of one) still shows here


def _verified_email(user: User) -> str | None:
    return exports.email_recipient(DataExport(user=user, by_operator=False))


def _status_context(user: User, *, error: str = "") -> dict[str, object]:
    export = exports.latest_export(user)
    return {
        "export": export,
        "poll": ACTIVE_POLL if export is not None and export.is_active else IDLE_POLL,
        "error": error,
        "email": _verified_email(user),
        "days": exports.export_days(),
        "interval": exports.interval_seconds(),
    }


@login_required
@require_http_methods(["GET", "POST"])
def data_export(request: HttpRequest) -> HttpResponse:
    """GET: the page. POST: ask for an export (htmx gets the status block back; without JavaScript, the page)."""
    if request.method == "POST":
        try:
            exports.request_export(request.user)
        except exports.ExportRefused as refused:
            if request.htmx:
                context = {**_status_context(request.user, error=str(refused)), "answer": True}
                return render(request, "accounts/_export_status.html", context, status=422)
            messages.error(request, str(refused))
        if request.htmx:
            return render(request, "accounts/_export_status.html", {**_status_context(request.user), "answer": True})
        return HttpResponseRedirect(reverse("data_export"))
    return render(request, "accounts/export.html", _status_context(request.user))


@login_required
@require_GET
def data_export_status(request: HttpRequest) -> HttpResponse:
    """The status block alone, for the page's polling while an export is being prepared."""
    return render(request, "accounts/_export_status.html", _status_context(request.user))


def _zip_response(export: DataExport) -> FileResponse:
    response = FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=exports.download_name(export),
        content_type="application/zip",
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _downloadable(export: DataExport | None) -> DataExport:
    if export is None or not export.is_ready or export.expires_at is None or export.expires_at <= timezone.now():
        raise Http404
    return export


@login_required
@require_GET
def data_export_download(request: HttpRequest, token: str) -> FileResponse:
    """The person's own archive, to them only."""
    export = DataExport.objects.filter(token=token, user=request.user, by_operator=False).first()
    return _zip_response(_downloadable(export))


# --- The operator's export (dashboard) ------------------------------------------------------------------


def operator_context(person: User) -> dict[str, object]:
    """What the dashboard's person page shows about the operator's export of this person."""
    export = exports.latest_export(person, by_operator=True)
    return {"export": export, "poll": ACTIVE_POLL if export is not None and export.is_active else ""}


@require_POST
@staff_view(MODERATE)
def operator_export(request: HttpRequest, username: str) -> HttpResponse:
    """Export this account: prepared in the background like a person's own, noted in the audit log."""
    person = get_object_or_404(User, username=username.lower())
    exports.request_export(person, operator=request.user, request=request)
    if request.htmx:
        return render(request, "accounts/_export_operator.html", {"person": person, **operator_context(person)})
    messages.success(request, f"Preparing an export of {person.jid}; its download appears here when it is ready.")
    return HttpResponseRedirect(reverse("dashboard:person", args=[person.username]))


@require_GET
@staff_view(MODERATE)
def operator_export_status(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(User, username=username.lower())
    return render(request, "accounts/_export_operator.html", {"person": person, **operator_context(person)})


@require_GET
@staff_view(MODERATE)
def operator_export_download(request: HttpRequest, username: str) -> FileResponse:
    """The newest operator's export of this person, to staff who may moderate; each download is audit-logged."""
    person = get_object_or_404(User, username=username.lower())
    export = _downloadable(exports.latest_export(person, by_operator=True))
    audit.record(
        "person.export_download",
        target=person.jid,
        details=f"Downloaded the export of their data ({export.size} bytes).",
        request=request,
    )
    return _zip_response(export)
