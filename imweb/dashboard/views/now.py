"""The dashboard's front page: the service now (figures refreshed every few seconds) and its trends (charts of
the last hour, day and 30 days)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path

from imweb.dashboard import charts, metrics
from imweb.dashboard.access import staff_view

DEFAULT_RANGE = "hour"


def _range(request: HttpRequest) -> str:
    wanted = request.GET.get("range", DEFAULT_RANGE)
    return wanted if wanted in charts.RANGES else DEFAULT_RANGE


def _trends_context(request: HttpRequest) -> dict[str, object]:
    chosen = _range(request)
    return {
        "range": chosen,
        "range_label": charts.RANGES[chosen][2],
        "ranges": [(name, label) for name, (_, _, label) in charts.RANGES.items()],
        "charts": charts.trends(chosen),
    }


@staff_view()
def index(request: HttpRequest) -> HttpResponse:
    """The figures of the moment, then the trends; both parts poll their own partial below."""
    context = {"section": "now", "now": metrics.read_now(), **_trends_context(request)}
    return render(request, "dashboard/now.html", context)


@staff_view()
def figures(request: HttpRequest) -> HttpResponse:
    """The figures of the moment alone: what the Now page polls every few seconds."""
    return render(request, "dashboard/_now_figures.html", {"now": metrics.read_now()})


@staff_view()
def trends(request: HttpRequest) -> HttpResponse:
    """The charts of one range (?range=hour|day|month): the partial the Now page polls, or a page of its own."""
    context = {"section": "now", **_trends_context(request)}
    if request.htmx:
        return render(request, "dashboard/_trends.html", context)
    return render(request, "dashboard/trends.html", context)


urlpatterns: list[URLPattern] = [
    path("", index, name="index"),
    path("now/", figures, name="now_figures"),
    path("trends/", trends, name="trends"),
]
