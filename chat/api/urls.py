"""URLs under /api/v1/: the endpoints, the OpenAPI document and docs, and a JSON 404 for everything else."""

from django.urls import path, re_path

from chat.api.endpoints import api, not_found_view

urlpatterns = [
    path("", api.urls),
    re_path(r"^(?P<rest>.*)$", not_found_view),
]
