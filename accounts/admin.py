"""Operators manage users in the Django admin: searchable by username, name and email."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiToken, BlockedJid, PresenceSession, RosterItem, User
from accounts.tokens import revoke_token
from imweb.admin import ReadOnlyAdmin


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "email", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "date_joined")
    search_fields = ("username", "display_name", "email", "first_name", "last_name")
    ordering = ("-date_joined",)
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Profile", {"fields": ("display_name", "status_message", "avatar")}),
    )


@admin.register(RosterItem)
class RosterItemAdmin(ReadOnlyAdmin):
    list_display = ("owner", "jid", "subscription", "listed", "ask_out", "pending_in", "requested_at")
    list_filter = ("subscription", "listed", "pending_in")
    search_fields = ("owner__username", "jid")
    list_select_related = ("owner",)


@admin.register(BlockedJid)
class BlockedJidAdmin(ReadOnlyAdmin):
    list_display = ("owner", "jid", "created_at")
    search_fields = ("owner__username", "jid")
    list_select_related = ("owner",)


@admin.register(PresenceSession)
class PresenceSessionAdmin(ReadOnlyAdmin):
    """Who is connected right now, one row per open tab or device."""

    list_display = ("user", "resource", "idle", "connected_at", "heartbeat_at")
    search_fields = ("user__username",)
    list_select_related = ("user",)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """API tokens: operators see who holds which (never the token, which is not stored) and may revoke one."""

    list_display = ("user", "name", "prefix", "created_at", "last_used_at")
    search_fields = ("user__username", "name", "prefix")
    list_select_related = ("user",)
    exclude = ("key_hash",)
    actions = ["delete_selected"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Revoking is deleting the row: the holder's next request, and their open streams, are refused.
        return bool(request.user.is_superuser)

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        revoke_token(obj.user, obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for row in queryset.select_related("user"):
            revoke_token(row.user, row.pk)
