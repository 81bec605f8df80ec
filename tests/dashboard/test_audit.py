"""The audit log: an entry for each action (the moderation tests check theirs), security events as they
happen, search and filters on the dashboard, and no way to change or delete an entry."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tokens import issue_token, revoke_token
from imweb.dashboard.audit import record
from imweb.dashboard.models import AuditEntry, AuditEntryImmutable
from tests.people import PASSWORD

pytestmark = pytest.mark.django_db


def test_sign_ins_failures_past_the_limit_and_token_revocations_are_recorded(alice):
    Client().post(reverse("account_login"), {"login": "alice", "password": PASSWORD}, REMOTE_ADDR="198.51.100.4")
    signed_in = AuditEntry.objects.get(action="login.success")
    assert signed_in.actor == alice and signed_in.ip == "198.51.100.4"
    for _ in range(6):
        Client().post(reverse("account_login"), {"login": "alice", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    (locked,) = AuditEntry.objects.filter(action="login.locked_out")  # once, at the limit, not per attempt
    assert locked.target == "alice" and locked.ip == "203.0.113.9" and locked.actor is None
    token, _ = issue_token(alice, "ci bot")
    revoke_token(alice, token.pk)
    assert "ci bot" in AuditEntry.objects.get(action="token.revoke").details


def test_an_entry_can_be_neither_changed_nor_deleted(alice):
    entry = record("person.suspend", target=alice.jid, details="spam")
    entry.details = "nothing happened"
    with pytest.raises(AuditEntryImmutable):
        entry.save()
    with pytest.raises(AuditEntryImmutable):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).details == "spam"


def test_no_page_changes_an_entry(staff, alice):
    entry = record("person.suspend", target=alice.jid, details="spam")
    for method in ("post", "put", "patch", "delete"):
        assert getattr(staff, method)(reverse("dashboard:audit"), {"details": "x"}).status_code == 405
    # Django's admin shows entries to superusers, read only.
    change = reverse("admin:dashboard_auditentry_change", args=[entry.pk])
    staff.post(change, {"details": "rewritten", "action": "nothing"})
    staff.post(reverse("admin:dashboard_auditentry_delete", args=[entry.pk]), {"post": "yes"})
    staff.post(
        reverse("admin:dashboard_auditentry_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert AuditEntry.objects.get(pk=entry.pk).details == "spam"


def test_the_log_is_searchable_and_filterable(staff, alice, bob):
    record("person.suspend", target=alice.jid, details="spam links", ip="192.0.2.1")
    record("federation.deny", target="bad.example", details="Federation denied.")
    record("person.warn", target=bob.jid, details="be nice")
    page = staff.get(reverse("dashboard:audit"), {"q": "spam"}).content.decode()
    assert "spam links" in page and "bad.example" not in page
    page = staff.get(reverse("dashboard:audit"), {"action": "person"}).content.decode()
    assert alice.jid in page and bob.jid in page and "bad.example" not in page
    page = staff.get(reverse("dashboard:audit"), {"action": "person.warn"}).content.decode()
    assert "be nice" in page and "spam links" not in page
    page = staff.get(reverse("dashboard:audit"), {"q": "192.0.2.1"}).content.decode()
    assert "spam links" in page and "be nice" not in page
    page = staff.get(reverse("dashboard:audit"), {"since": "2999-01-01"}).content.decode()
    assert "No entries" in page and "spam links" not in page
