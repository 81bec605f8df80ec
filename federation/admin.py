"""The operators' federation page: every remote server's health and policy, the outbox, remote presence.

Policy changes and "retry now" go through `federation.policy` (the actions), never raw writes from the admin:
denying a domain must also fail what waits for it and close its streams.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from federation import policy
from federation.models import OutboxItem, RemoteDomain, RemotePresence
from imweb.admin import ReadOnlyAdmin


class RemoteDomainForm(forms.ModelForm):
    class Meta:
        model = RemoteDomain
        fields = ("domain", "policy")

    def clean_domain(self) -> str:
        try:
            return policy.clean_domain(self.cleaned_data["domain"])
        except policy.PolicyError as err:
            raise forms.ValidationError(str(err)) from None


@admin.register(RemoteDomain)
class RemoteDomainAdmin(admin.ModelAdmin):
    form = RemoteDomainForm
    list_display = (
        "domain", "policy", "connected_in", "connected_out", "tls", "auth_method", "last_success_at",
        "last_error", "queue_depth", "failures", "backoff_until",
    )  # fmt: skip
    list_editable = ("policy",)
    list_filter = ("policy", "connected_in", "connected_out")
    search_fields = ("domain",)
    actions = ("retry_now",)
    readonly_fields = (
        "connected_in", "connected_out", "tls", "auth_method", "last_success_at", "last_error", "last_error_at",
        "failures", "backoff_until", "updated_at", "queue_depth",
    )  # fmt: skip
    change_form_template = "admin/federation/remotedomain/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[RemoteDomain]:
        return (
            super()
            .get_queryset(request)
            .annotate(queued=Count("outbox", filter=Q(outbox__state=OutboxItem.State.QUEUED)))
        )

    @admin.display(description="queue depth", ordering="queued")
    def queue_depth(self, obj: RemoteDomain) -> int:
        return getattr(obj, "queued", None) or obj.outbox.filter(state=OutboxItem.State.QUEUED).count()

    def get_readonly_fields(self, request: HttpRequest, obj: RemoteDomain | None = None) -> tuple[str, ...]:
        # The domain names the row: set once when an operator adds one (e.g. to deny it before any traffic).
        return ("domain", *self.readonly_fields) if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: RemoteDomain, form: forms.Form, change: bool) -> None:
        """Through the action: denying fails the domain's waiting stanzas and closes its streams."""
        saved = policy.set_policy(obj.domain, obj.policy)
        obj.pk, obj.domain = saved.pk, saved.domain

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the row holds the domain's outbox and history; set a policy instead

    @admin.action(description="Retry now (forget the backoff)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[RemoteDomain]) -> None:
        domains = [remote.domain for remote in queryset]
        for domain in domains:
            policy.retry_now(domain)
        self.message_user(request, f"Retrying now: {', '.join(domains)}.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        retry = path(
            "<int:object_id>/retry/",
            self.admin_site.admin_view(require_POST(self.retry_view)),
            name="federation_remotedomain_retry",
        )
        return [retry, *super().get_urls()]

    def retry_view(self, request: HttpRequest, object_id: int) -> HttpResponseRedirect:
        if not self.has_change_permission(request):
            raise PermissionDenied
        remote = get_object_or_404(RemoteDomain, pk=object_id)
        policy.retry_now(remote.domain)
        self.message_user(request, f"Retrying {remote.domain} now.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:federation_remotedomain_change", args=[remote.pk]))


@admin.register(OutboxItem)
class OutboxItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "domain", "kind", "recipient", "state", "attempts", "created_at", "sent_at", "error")
    list_filter = ("state", "kind", "domain")
    search_fields = ("recipient", "stanza_id", "domain__domain")
    list_select_related = ("domain",)


@admin.register(RemotePresence)
class RemotePresenceAdmin(ReadOnlyAdmin):
    list_display = ("jid", "available", "show", "status", "updated_at")
    list_filter = ("available",)
    search_fields = ("jid",)
