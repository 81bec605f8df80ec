"""The audit log: every staff action and security event, newest first, searchable and filterable. Read only:
there is no view that changes or deletes an entry (and the model refuses both)."""

from __future__ import annotations

import ipaddress
from datetime import datetime, time

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone
from django.views.decorators.http import require_safe

from imweb.dashboard.access import AUDIT, staff_view
from imweb.dashboard.models import AuditEntry

PAGE_SIZE = 100


def _day(text: str, end: bool = False) -> datetime | None:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


@require_safe
@staff_view(AUDIT)
def audit(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    action = request.GET.get("action", "").strip()[:64]
    actor = request.GET.get("actor", "").strip()[:150]
    since, until = request.GET.get("since", ""), request.GET.get("until", "")
    entries = AuditEntry.objects.all()
    if query:
        matches = Q(target__icontains=query) | Q(details__icontains=query) | Q(action__icontains=query)
        if _looks_like_ip(query):
            matches |= Q(ip=query)
        entries = entries.filter(matches)
    if action:
        # "person" shows every person.* entry; "person.suspend" exactly those.
        entries = entries.filter(Q(action=action) | Q(action__startswith=action + "."))
    if actor:
        entries = entries.filter(actor_name__iexact=actor)
    if start := _day(since):
        entries = entries.filter(at__gte=start)
    if end := _day(until, end=True):
        entries = entries.filter(at__lte=end)
    kinds = sorted({name.split(".")[0] for name in AuditEntry.objects.values_list("action", flat=True).distinct()})
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    return render(
        request,
        "dashboard/audit.html",
        {
            "section": "audit",
            "page": page,
            "query": query,
            "action": action,
            "actor": actor,
            "since": since,
            "until": until,
            "kinds": kinds,
            "filters": filters.urlencode(),
        },
    )


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


urlpatterns: list[URLPattern] = [path("audit/", audit, name="audit")]
