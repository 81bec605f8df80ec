from django.contrib import admin

from imweb.admin import ReadOnlyAdmin
from imweb.dashboard.models import AuditEntry, Report


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "target", "ip")
    list_filter = ("action",)
    search_fields = ("target", "details", "actor_name")


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "reason", "reported_jid", "state")
    list_filter = ("state", "kind", "reason")
