from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "imweb.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from imweb.dashboard import signals  # noqa: F401  (connects the audit log's receivers)
