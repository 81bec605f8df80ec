"""The dashboard's Federation page: every remote server's health (streams, TLS, last success and error, backoff,
what waits for it), its policy (default, allow, deny) and "Retry now".

Changes go through federation.policy, as the admin's do: denying a domain also fails what waits for it and closes
its streams, and a retry forgets the backoff and wakes the sender. Each change is written to the audit log.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from federation import policy
from federation.models import OutboxItem, RemoteDomain
from imweb.dashboard import audit
from imweb.dashboard.access import FEDERATION, staff_view

WAITING = [OutboxItem.State.QUEUED, OutboxItem.State.SENDING]
# The buttons of a row: each policy the domain does not have yet.
POLICY_BUTTONS = [
    (RemoteDomain.Policy.ALLOW, "Allow"),
    (RemoteDomain.Policy.DENY, "Deny"),
    (RemoteDomain.Policy.DEFAULT, "Default"),
]


def _rows() -> list[RemoteDomain]:
    remotes = list(RemoteDomain.objects.annotate(queued=Count("outbox", filter=Q(outbox__state__in=WAITING))))
    now = timezone.now()
    for remote in remotes:
        remote.refused = policy.refuses(remote)  # type: ignore[attr-defined]
        remote.backing_off = bool(remote.backoff_until and remote.backoff_until > now)  # type: ignore[attr-defined]
        remote.other_policies = [  # type: ignore[attr-defined]
            (value, label) for value, label in POLICY_BUTTONS if value != remote.policy
        ]
    return remotes


def _context(**extra: object) -> dict[str, object]:
    return {
        "section": "federation",
        "remotes": _rows(),
        "now": timezone.now(),
        "policies": RemoteDomain.Policy.choices,
        "allowlist_only": policy.allowlist_only(),
        **extra,
    }


@staff_view(FEDERATION)
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/federation.html", _context())


@staff_view(FEDERATION)
def table(request: HttpRequest) -> HttpResponse:
    """The per-server table alone: what the page polls every few seconds."""
    return render(request, "dashboard/_federation_table.html", _context())


def _refuse(request: HttpRequest, error: str, **form: str) -> HttpResponse:
    return render(request, "dashboard/federation.html", _context(error=error, form=form), status=422)


@staff_view(FEDERATION)
@require_POST
def set_policy(request: HttpRequest) -> HttpResponse:
    """Set a domain's policy (adding the domain if it is new); denying fails what waits for it."""
    raw, wanted = request.POST.get("domain", ""), request.POST.get("policy", "")
    try:
        domain = policy.clean_domain(raw)
        before = RemoteDomain.objects.filter(domain=domain).values_list("policy", flat=True).first()
        waiting = OutboxItem.objects.filter(domain__domain=domain, state__in=WAITING).count()
        remote = policy.set_policy(domain, wanted)
    except policy.PolicyError as err:
        return _refuse(request, str(err), domain=raw, policy=wanted)
    failed = waiting - OutboxItem.objects.filter(domain=remote, state__in=WAITING).count()
    said = f"{remote.domain}: policy {remote.policy}" + (f" (was {before})" if before else " (new domain)")
    if failed:
        said += f"; {failed} waiting stanza{'s' if failed != 1 else ''} failed"
    if policy.refuses(remote):
        said += "; its streams are closed"
    audit.record("federation.policy", target=remote.domain, details=said, request=request)
    messages.success(request, said + ".")
    return HttpResponseRedirect(reverse("dashboard:federation"))


@staff_view(FEDERATION)
@require_POST
def retry(request: HttpRequest) -> HttpResponse:
    """Forget a domain's backoff and wake the sender: what waits for it is tried at once."""
    raw = request.POST.get("domain", "")
    try:
        domain = policy.clean_domain(raw)
        before = RemoteDomain.objects.filter(domain=domain).values_list("backoff_until", flat=True).first()
        remote = policy.retry_now(domain)
    except policy.PolicyError as err:
        return _refuse(request, str(err))
    except RemoteDomain.DoesNotExist:
        return _refuse(request, f"{raw} is not a server this one knows; add it first")
    queued = OutboxItem.objects.filter(domain=remote, state__in=WAITING).count()
    said = f"{remote.domain}: retrying now ({queued} waiting"
    said += f"; backoff until {before:%Y-%m-%d %H:%M:%S} UTC cleared)" if before else "; no backoff was set)"
    audit.record("federation.retry", target=remote.domain, details=said, request=request)
    messages.success(request, said + ".")
    return HttpResponseRedirect(reverse("dashboard:federation"))


urlpatterns: list[URLPattern] = [
    path("federation/", index, name="federation"),
    path("federation/table/", table, name="federation_table"),
    path("federation/policy/", set_policy, name="federation_policy"),
    path("federation/retry/", retry, name="federation_retry"),
]
