"""Every dashboard URL and action refuses anonymous people, people who are not staff, and staff without the
permission the page needs; /metrics has its own gate (tests/dashboard/test_metrics_endpoint.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import URLPattern, reverse

from imweb.dashboard import urls as dashboard_urls
from imweb.dashboard.access import VIEW

pytestmark = pytest.mark.django_db

# A value for each kind of URL parameter; the gate must refuse before anything looks the value up.
SAMPLE_ARGS = {"username": "bob", "conversation_id": 1, "seq": 1, "pk": 1, "report_id": 1, "domain": "example.net"}


def every_url() -> list[tuple[str, str, str]]:
    """(name, path, the permission its view asks for) for every URL of the dashboard."""
    found = []
    for pattern in dashboard_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {name: SAMPLE_ARGS[name] for name in pattern.pattern.converters}
        permission = getattr(pattern.callback, "dashboard_permission", None)
        if permission is None:  # a decorator above staff_view (require_POST) keeps it on the wrapped view
            permission = getattr(getattr(pattern.callback, "__wrapped__", None), "dashboard_permission", None)
        assert permission is not None, f"{pattern.name} is not wrapped in access.staff_view"
        found.append((pattern.name, reverse(f"dashboard:{pattern.name}", kwargs=kwargs), permission))
    return found


URLS = every_url()


def test_the_dashboard_has_its_pages():
    names = {name for name, _, _ in URLS}
    assert {"index", "people", "person", "person_suspend", "audit", "federation", "reports"} <= names


@pytest.mark.parametrize(("name", "url", "permission"), URLS, ids=[name for name, _, _ in URLS])
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_people_are_sent_to_sign_in(name, url, permission, method):
    response = getattr(Client(), method)(url)
    if response.status_code == 405:  # a POST-only action refuses a GET before anything else
        return
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize(("name", "url", "permission"), URLS, ids=[name for name, _, _ in URLS])
@pytest.mark.parametrize("method", ["get", "post"])
def test_people_who_are_not_staff_are_refused_even_with_the_permission(make_user, name, url, permission, method):
    person = make_user("mallory")
    codename = permission.split(".")[1]
    person.user_permissions.add(*Permission.objects.filter(codename__in=[codename, VIEW.split(".")[1]]))
    client = Client()
    client.force_login(person)
    response = getattr(client, method)(url)
    assert response.status_code in (403, 405)
    assert b"Operator dashboard" not in response.content


@pytest.mark.parametrize(("name", "url", "permission"), URLS, ids=[name for name, _, _ in URLS])
def test_staff_without_the_pages_permission_are_refused(make_user, name, url, permission):
    staff = make_user("steve", is_staff=True)
    if permission != VIEW:  # may see the dashboard, but not this part of it
        staff.user_permissions.add(Permission.objects.get(codename=VIEW.split(".")[1]))
    client = Client()
    client.force_login(staff)
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        assert response.status_code in (403, 405), (method, response.status_code)
        assert b"Operator dashboard" not in response.content


def test_a_superuser_sees_every_page(make_user, bob):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    for name, url, _ in URLS:
        if name in {"index", "people", "person", "audit", "federation", "reports", "blocked"}:
            assert client.get(url).status_code == 200, name


def test_the_topbar_offers_the_dashboard_to_staff_only(make_user, alice):
    admin = make_user("root", is_staff=True, is_superuser=True)
    for person, shown in ((alice, False), (admin, True)):
        client = Client()
        client.force_login(person)
        page = client.get(reverse("profile")).content.decode()
        assert (f'href="{reverse("dashboard:index")}"' in page) is shown
