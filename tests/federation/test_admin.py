"""The operators' federation page in the admin: each remote domain's state, policy edits through the actions,
"retry now" (list action and button), the read-only outbox, and staff only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from federation import outbox
from federation.models import OutboxItem, RemoteDomain

SERVER = "jabber:server"
pytestmark = pytest.mark.django_db


def chat(to: str, n: int) -> etree._Element:
    stanza = etree.Element(f"{{{SERVER}}}message", nsmap={None: SERVER}, to=to, id=f"n{n}")
    stanza.set("from", "bob@imweb.localhost")
    etree.SubElement(stanza, f"{{{SERVER}}}body").text = "hi"
    return stanza


@pytest.fixture
def staff(make_user) -> Client:
    client = Client()
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def slow() -> RemoteDomain:
    for n in range(3):
        outbox.enqueue(chat("alice@slow.localhost", n))
    OutboxItem.objects.filter(stanza_id="n2").update(state=OutboxItem.State.SENT)
    RemoteDomain.objects.filter(domain="slow.localhost").update(
        connected_in=True, tls=True, auth_method="dialback", failures=3,
        last_error="could not connect to slow.localhost (connection refused)",
        backoff_until=timezone.now() + timedelta(minutes=1),
    )  # fmt: skip
    return RemoteDomain.objects.get(domain="slow.localhost")


def test_federation_page_shows_each_domains_state(staff: Client, slow: RemoteDomain) -> None:
    response = staff.get(reverse("admin:federation_remotedomain_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    for heading in ("Connected in", "Connected out", "Tls", "Auth method", "Last success at", "Last error",
                    "Queue depth", "Backoff until"):  # fmt: skip
        assert heading in html
    assert "slow.localhost" in html
    assert "could not connect to slow.localhost (connection refused)" in html
    assert '<td class="field-queue_depth">2</td>' in html  # two queued, one already sent
    assert "dialback" in html
    assert 'name="form-0-policy"' in html  # the policy is editable from the list


def test_retry_now_action_clears_the_backoff(staff: Client, slow: RemoteDomain) -> None:
    response = staff.post(
        reverse("admin:federation_remotedomain_changelist"),
        {"action": "retry_now", "_selected_action": [slow.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Retrying now: slow.localhost." in response.content.decode()
    assert RemoteDomain.objects.get(pk=slow.pk).backoff_until is None


def test_retry_now_button_on_the_domains_page(staff: Client, slow: RemoteDomain) -> None:
    page = staff.get(reverse("admin:federation_remotedomain_change", args=[slow.pk]))
    retry_url = reverse("admin:federation_remotedomain_retry", args=[slow.pk])
    assert f'action="{retry_url}"' in page.content.decode()
    assert staff.get(retry_url).status_code == 405  # a change: POST only

    response = staff.post(retry_url, follow=True)
    assert "Retrying slow.localhost now." in response.content.decode()
    assert RemoteDomain.objects.get(pk=slow.pk).backoff_until is None


def test_denying_from_the_admin_goes_through_the_policy_action(staff: Client, slow: RemoteDomain) -> None:
    response = staff.post(
        reverse("admin:federation_remotedomain_change", args=[slow.pk]), {"policy": "deny"}, follow=True
    )
    assert response.status_code == 200
    assert RemoteDomain.objects.get(pk=slow.pk).policy == "deny"
    # The action's effect, not a bare field write: what waited for the domain failed with the reason.
    assert set(OutboxItem.objects.filter(stanza_id__in=["n0", "n1"]).values_list("state", "error")) == {
        ("failed", "federation with slow.localhost is disabled by this server's operator")
    }
    assert OutboxItem.objects.get(stanza_id="n2").state == "sent"


def test_operator_can_deny_a_domain_before_any_traffic_and_bad_names_are_refused(staff: Client) -> None:
    add = reverse("admin:federation_remotedomain_add")
    response = staff.post(add, {"domain": "Spam.Example.", "policy": "deny"})
    assert response.status_code == 302
    assert RemoteDomain.objects.get(domain="spam.example").policy == "deny"

    response = staff.post(add, {"domain": "not a domain", "policy": "deny"})
    assert response.status_code == 200
    assert "&#x27;not a domain&#x27; is not a domain name" in response.content.decode()
    assert RemoteDomain.objects.count() == 1


def test_outbox_is_listed_read_only_and_filterable(staff: Client, slow: RemoteDomain) -> None:
    outbox.enqueue(chat("carol@other.localhost", 9))
    url = reverse("admin:federation_outboxitem_changelist")
    html = staff.get(url, {"state": "queued", "domain__id__exact": slow.pk}).content.decode()
    assert html.count('class="field-recipient"') == 2
    assert "carol@other.localhost" not in html
    assert staff.get(reverse("admin:federation_outboxitem_add")).status_code == 403


def test_people_who_are_not_staff_cannot_see_it(make_user, slow: RemoteDomain) -> None:
    client = Client()
    client.force_login(make_user("someone"))
    response = client.get(reverse("admin:federation_remotedomain_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = client.post(reverse("admin:federation_remotedomain_retry", args=[slow.pk]))
    assert response.status_code == 302
    assert RemoteDomain.objects.get(pk=slow.pk).backoff_until is not None
