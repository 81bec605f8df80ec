"""The URL root: each app brings its own URLs."""

from django.contrib import admin
from django.urls import include, path

from chat import files_public
from imweb import views
from imweb.dashboard import prometheus

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("metrics", prometheus.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("dashboard/", include("imweb.dashboard.urls")),
    path("report/", include("imweb.dashboard.views.report_form")),
    path("accounts/", include("allauth.urls")),
    path("accounts/", include("accounts.urls")),
    path("contacts/", include("accounts.contacts_urls")),
    path("api/v1/", include("chat.api.urls")),
    path("search", include("chat.search_urls")),
    path("files/s/<str:signed>/<path:name>", files_public.shared_file, name="shared-file"),
    path("files/", include("chat.files_urls")),
    path("", include("chat.urls")),
]

handler404 = "imweb.views.not_found"
