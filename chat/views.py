"""The app shell: the landing page for visitors, the signed-in home, and the top bar fragment."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.contacts_views import contacts_context


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "landing.html")
    return render(request, "home.html", contacts_context(request.user))


@login_required
def topbar(request: HttpRequest) -> HttpResponse:
    """The signed-in top bar alone, for htmx to refresh after the profile changes."""
    return render(request, "_topbar.html")
