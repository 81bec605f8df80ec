"""What every page's template may need from the dashboard: the count of open reports, on dashboard pages only."""

from __future__ import annotations

from django.http import HttpRequest

from imweb.dashboard.access import MODERATE, allowed


def dashboard(request: HttpRequest) -> dict[str, object]:
    match = getattr(request, "resolver_match", None)
    if match is None or match.app_name != "dashboard" or not allowed(request.user, MODERATE):
        return {}
    from imweb.dashboard.models import Report

    return {"open_reports": Report.objects.filter(state=Report.State.OPEN).count()}
