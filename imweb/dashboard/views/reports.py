"""The dashboard's Reports queue: what people reported, open ones first, and what an operator does about each
(imweb.dashboard.reports.act_on calls the moderation actions, resolves the report and audits it)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from accounts.models import User
from imweb.dashboard import moderation
from imweb.dashboard.access import MODERATE, staff_view
from imweb.dashboard.models import Report
from imweb.dashboard.reports import ACTION_LABELS, act_on, available_actions, is_local_jid

PAGE_SIZE = 50
FILTERS = {
    "open": "Open",
    "dismissed": "Dismissed",
    "actioned": "Acted on",
    "all": "All",
}
# What each action's text field asks for: (label, placeholder, required). No field: the action needs no words.
ACTION_TEXT = {
    "warn": ("The warning the person receives by email", "Warning", True),
    "suspend": ("Why (the person is shown it when they try to sign in)", "Reason", True),
    "block_address": ("Why (kept in the audit log)", "Reason (optional)", False),
    "dismiss": ("Why (kept with the report)", "Note (optional)", False),
}


def _queue_url(state: str) -> str:
    return reverse("dashboard:reports") + ("" if state == "open" else f"?state={state}")


@staff_view(MODERATE)
def index(request: HttpRequest) -> HttpResponse:
    """The queue: open reports first (or those of one state), each with the actions that apply to it."""
    state = request.GET.get("state", "open")
    if state not in FILTERS:
        state = "open"
    reports = Report.objects.select_related("reporter", "message", "resolved_by")
    if state != "all":
        reports = reports.filter(state=state)
    # Open reports first, then newest first.
    reports = reports.annotate(
        waiting=Case(When(state=Report.State.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField())
    ).order_by("waiting", "-created_at", "-id")
    page = Paginator(reports, PAGE_SIZE).get_page(request.GET.get("page"))
    local = {r.reported_jid.rpartition("@")[0] for r in page if is_local_jid(r.reported_jid)}
    people = {p.username: p for p in User.objects.filter(username__in=local)}
    rows = []
    for report in page:
        person = people.get(report.reported_jid.rpartition("@")[0]) if is_local_jid(report.reported_jid) else None
        actions = []
        for name in available_actions(report, person):
            label, placeholder, required = ACTION_TEXT.get(name, ("", "", False))
            actions.append(
                {
                    "name": name,
                    "label": ACTION_LABELS[name],
                    "text": label,
                    "placeholder": placeholder,
                    "required": required,
                }
            )
        rows.append(
            {
                "report": report,
                "person": person,
                "is_local": is_local_jid(report.reported_jid),
                "domain": report.reported_jid.rpartition("@")[2],
                "actions": actions,
            }
        )
    counts = {s: Report.objects.filter(state=s).count() for s in Report.State.values}
    newest = Report.objects.order_by("-id").values_list("id", flat=True).first() or 0
    context = {
        "newest": newest,
        "section": "reports",
        "state": state,
        "filters": FILTERS,
        "counts": counts,
        "page": page,
        "rows": rows,
    }
    return render(request, "dashboard/reports.html", context)


@require_POST
@staff_view(MODERATE)
def act(request: HttpRequest, pk: int) -> HttpResponse:
    """One action on one report (the `action` field: its button), then back to the queue with what was done (or
    why it could not be)."""
    report = get_object_or_404(Report, pk=pk)
    action = request.POST.get("action", "")
    state = request.POST.get("state", "open")
    try:
        act_on(report, action, text=request.POST.get("text", ""), request=request)
    except moderation.ModerationError as err:
        messages.error(request, f"Report {report.pk}: {err}")
    else:
        messages.success(request, f"Report {report.pk}: {ACTION_LABELS.get(action, action)}: done.")
    return HttpResponseRedirect(_queue_url(state if state in FILTERS else "open"))


@staff_view(MODERATE)
def waiting(request: HttpRequest) -> HttpResponse:
    """What the open queue page polls: how many reports came in since it was drawn (no forms are redrawn, so
    nothing an operator is typing is lost)."""
    try:
        since = int(request.GET.get("since", "0"))
    except ValueError:
        since = 0
    new = Report.objects.filter(pk__gt=since, state=Report.State.OPEN).count()
    return render(request, "dashboard/_reports_waiting.html", {"new": new})


urlpatterns: list[URLPattern] = [
    path("reports/", index, name="reports"),
    path("reports/waiting", waiting, name="reports_waiting"),
    path("reports/<int:pk>/act", act, name="report_action"),
]
