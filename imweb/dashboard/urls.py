"""/dashboard/: each area's module brings its URLs; every view there is wrapped in access.staff_view."""

from imweb.dashboard.views import audit, federation, now, people, reports

app_name = "dashboard"

urlpatterns = [*now.urlpatterns, *federation.urlpatterns, *people.urlpatterns, *reports.urlpatterns, *audit.urlpatterns]
