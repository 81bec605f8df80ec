"""The operator's "Export this account" on a person's dashboard page: prepared in the background like a person's
own export, downloaded from the dashboard by staff only, and both the request and each download are in the audit
log. The person's own page never offers the operator's export."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import export
from accounts.models import DataExport
from imweb.dashboard.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(monkeypatch) -> list[int]:
    pks: list[int] = []
    monkeypatch.setattr(export, "_start", pks.append)
    return pks


def test_an_operator_exports_an_account_and_downloads_it(
    staff, operator, alice, bob, started, django_capture_on_commit_callbacks
):
    page = reverse("dashboard:person", args=["alice"])
    assert "Export this account" in staff.get(page).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(reverse("dashboard:person_export", args=["alice"]))
    assert response.status_code == 302
    (asked,) = AuditEntry.objects.filter(action="person.export")
    assert asked.actor == operator and asked.target == alice.jid
    assert "Preparing the export" in staff.get(page).content.decode()
    # Asking again while it is being prepared starts nothing more (and operators are not limited per hour).
    staff.post(reverse("dashboard:person_export", args=["alice"]))
    assert DataExport.objects.filter(user=alice, by_operator=True).count() == 1

    export.build(started[0])
    assert "Download the export" in staff.get(page).content.decode()
    (email,) = mail.outbox
    assert email.to == [operator.email] and alice.jid in email.subject

    download = staff.get(reverse("dashboard:person_export_download", args=["alice"]))
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert json.loads(archive.read("profile.json"))["jid"] == alice.jid
    assert AuditEntry.objects.filter(action="person.export_download", target=alice.jid, actor=operator).exists()

    # Not the person's own export: their page does not offer it, and its token does not serve it to them.
    ready = DataExport.objects.get(user=alice, by_operator=True)
    person = Client()
    person.force_login(alice)
    assert "You have not asked for an archive yet" in person.get("/accounts/data/").content.decode()
    assert person.get(f"/accounts/data/{ready.token}/download/").status_code == 404


def test_people_who_are_not_staff_cannot_export_or_download(make_user, alice, started):
    mallory = make_user("mallory")
    client = Client()
    client.force_login(mallory)
    assert client.post(reverse("dashboard:person_export", args=["alice"])).status_code == 403
    assert client.get(reverse("dashboard:person_export_download", args=["alice"])).status_code == 403
    assert not DataExport.objects.exists() and started == []


def test_no_download_before_the_export_is_ready(staff, alice, started):
    answer = staff.post(reverse("dashboard:person_export", args=["alice"]), headers={"HX-Request": "true"})
    assert answer.status_code == 200 and "Preparing the export" in answer.content.decode()  # the block, in place
    assert 'hx-trigger="every 2s"' in answer.content.decode()
    assert staff.get(reverse("dashboard:person_export_download", args=["alice"])).status_code == 404
