"""The Federation page: each remote server's health as the operator reads it, policy changes that take effect
(federation.policy's semantics: deny fails what waits and closes streams) and "Retry now", all audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from lxml import html

from federation import outbox, policy
from federation.models import OutboxItem, RemoteDomain
from imweb.dashboard.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch) -> list[dict[str, str]]:
    """Events sent to the federation process (recorded where they leave; the layer itself is real)."""
    seen: list[dict[str, str]] = []
    real = outbox.publish

    def record(event: dict[str, str]) -> None:
        seen.append(event)
        real(event)

    monkeypatch.setattr(policy, "publish", record)
    return seen


def row(client: Client, domain: str) -> dict[str, str]:
    doc = html.fromstring(client.get(reverse("dashboard:federation")).content)
    [tr] = doc.xpath(f'.//tr[@data-domain="{domain}"]')
    return {td.get("data-cell"): " ".join(td.text_content().split()) for td in tr.xpath("./td[@data-cell]")}


def queue(domain: RemoteDomain, n: int) -> list[OutboxItem]:
    return [
        OutboxItem.objects.create(domain=domain, stanza="<message/>", kind=OutboxItem.Kind.MESSAGE) for _ in range(n)
    ]


def test_each_server_shows_its_streams_tls_health_backoff_and_queue(staff):
    now = timezone.now()
    sick = RemoteDomain.objects.create(
        domain="sick.example", connected_out=False, connected_in=True, tls=True,
        last_success_at=now - timedelta(hours=2), last_error="could not connect to sick.example: connection refused",
        last_error_at=now - timedelta(minutes=5), failures=4, backoff_until=now + timedelta(minutes=10),
    )  # fmt: skip
    queue(sick, 3)
    OutboxItem.objects.create(domain=sick, stanza="<message/>", state=OutboxItem.State.DELIVERED)
    RemoteDomain.objects.create(domain="fine.example", connected_in=True, connected_out=True, tls=True)

    cells = row(staff, "sick.example")

    assert cells["policy"] == "default"
    assert cells["streams"] == "in · no out"
    assert cells["tls"] == "yes"
    assert cells["last-success"] == "2 hours ago"
    assert cells["last-error"] == "could not connect to sick.example: connection refused (5 minutes ago)"
    assert cells["backoff"].startswith("until ") and cells["backoff"].endswith("(in 9 minutes)")
    assert cells["failures"] == "4"
    assert cells["queued"] == "3"
    fine = row(staff, "fine.example")
    assert (fine["streams"], fine["last-success"], fine["last-error"], fine["backoff"]) == (
        "in · out",
        "never",
        "none",
        "none",
    )


def test_denying_a_server_fails_what_waits_closes_its_streams_and_is_audited(
    staff, operator, published, django_capture_on_commit_callbacks
):
    remote = RemoteDomain.objects.create(domain="spam.example", connected_in=True)
    waiting = queue(remote, 2)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(reverse("dashboard:federation_policy"), {"domain": "Spam.Example.", "policy": "deny"})

    assert response.status_code == 302
    assert policy.is_denied("spam.example")
    assert {item.state for item in OutboxItem.objects.filter(pk__in=[i.pk for i in waiting])} == {"failed"}
    assert {"type": "federation.policy", "domain": "spam.example", "policy": "deny"} in published
    [entry] = AuditEntry.objects.filter(action="federation.policy")
    assert (entry.actor, entry.actor_name, entry.target, entry.ip) == (
        operator,
        "root",
        "spam.example",
        "127.0.0.1",
    )
    assert entry.details == "spam.example: policy deny (was default); 2 waiting stanzas failed; its streams are closed"
    page = staff.get(response["Location"])
    assert entry.details + "." in page.content.decode()  # said to the operator too
    assert row(staff, "spam.example")["policy"] == "deny refused"


def test_adding_a_server_and_allowing_it_again(staff, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(reverse("dashboard:federation_policy"), {"domain": "new.example", "policy": "deny"})
        staff.post(reverse("dashboard:federation_policy"), {"domain": "new.example", "policy": "allow"})

    assert RemoteDomain.objects.get(domain="new.example").policy == "allow"
    assert not policy.is_denied("new.example")
    assert [e.details for e in AuditEntry.objects.filter(action="federation.policy").order_by("id")] == [
        "new.example: policy deny (new domain); its streams are closed",
        "new.example: policy allow (was deny)",
    ]
    assert row(staff, "new.example")["policy"] == "allow"


def test_a_bad_domain_or_policy_is_refused_in_the_page_and_changes_nothing(staff):
    response = staff.post(reverse("dashboard:federation_policy"), {"domain": "bob@evil.example", "policy": "deny"})

    assert response.status_code == 422
    doc = html.fromstring(response.content)
    [error] = doc.xpath('.//*[@id="federation-error"]')
    assert error.text_content().strip() == "'bob@evil.example' is not a domain name"
    assert doc.xpath('.//input[@id="add-domain"]')[0].get("value") == "bob@evil.example"  # kept to correct

    response = staff.post(reverse("dashboard:federation_policy"), {"domain": "ok.example", "policy": "maybe"})
    assert response.status_code == 422
    [error] = html.fromstring(response.content).xpath('.//*[@id="federation-error"]')
    assert error.text_content().strip() == "the policy must be one of default, allow, deny, not 'maybe'"
    assert not RemoteDomain.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="federation.").exists()


def test_retry_now_forgets_the_backoff_wakes_the_sender_and_is_audited(
    staff, published, django_capture_on_commit_callbacks
):
    until = timezone.now() + timedelta(minutes=30)
    remote = RemoteDomain.objects.create(domain="slow.example", failures=5, backoff_until=until)
    queue(remote, 2)
    assert row(staff, "slow.example")["backoff"].startswith("until ")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(reverse("dashboard:federation_retry"), {"domain": "slow.example"})

    assert response.status_code == 302
    assert RemoteDomain.objects.get(pk=remote.pk).backoff_until is None
    assert {"type": "federation.retry", "domain": "slow.example"} in published
    assert row(staff, "slow.example")["backoff"] == "none"
    [entry] = AuditEntry.objects.filter(action="federation.retry")
    assert entry.target == "slow.example"
    assert (
        entry.details == f"slow.example: retrying now (2 waiting; backoff until {until:%Y-%m-%d %H:%M:%S} UTC cleared)"
    )


def test_retrying_an_unknown_server_says_so(staff):
    response = staff.post(reverse("dashboard:federation_retry"), {"domain": "ghost.example"})
    assert response.status_code == 422
    assert "ghost.example is not a server this one knows; add it first" in response.content.decode()
    assert not AuditEntry.objects.filter(action="federation.retry").exists()


def test_only_staff_with_the_federation_permission_may_change_policy(make_user):
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    RemoteDomain.objects.create(domain="kept.example")
    client = Client()
    client.force_login(viewer)

    assert client.get(reverse("dashboard:federation")).status_code == 403
    assert (
        client.post(reverse("dashboard:federation_policy"), {"domain": "kept.example", "policy": "deny"}).status_code
        == 403
    )
    assert client.post(reverse("dashboard:federation_retry"), {"domain": "kept.example"}).status_code == 403
    assert RemoteDomain.objects.get(domain="kept.example").policy == "default"
    assert not AuditEntry.objects.filter(action__startswith="federation.").exists()


def test_changes_need_the_csrf_token(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(reverse("dashboard:federation_policy"), {"domain": "x.example", "policy": "deny"})
    assert response.status_code == 403
    assert not RemoteDomain.objects.exists()
    doc = html.fromstring(client.get(reverse("dashboard:federation")).content)
    [form] = doc.xpath(f'.//form[@action="{reverse("dashboard:federation_policy")}"]')
    assert form.get("method") == "post" and form.xpath('.//input[@name="csrfmiddlewaretoken"]')


def test_the_table_refreshes_itself(staff):
    RemoteDomain.objects.create(domain="live.example")
    doc = html.fromstring(staff.get(reverse("dashboard:federation")).content)
    [table] = doc.xpath('.//*[@id="federation-table"]')
    assert table.get("hx-get") == reverse("dashboard:federation_table")
    assert table.get("hx-trigger") == "every 5s"
    RemoteDomain.objects.filter(domain="live.example").update(connected_out=True)
    partial = html.fromstring(staff.get(reverse("dashboard:federation_table")).content.decode())
    assert partial.get("id") == "federation-table"
    [cell] = partial.xpath('.//tr[@data-domain="live.example"]/td[@data-cell="streams"]')
    assert " ".join(cell.text_content().split()) == "no in · out"
