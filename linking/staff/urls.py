"""Every staff URL lives under /staff/; each POST action has its own URL. One module per area."""

from django.urls import include, path

urlpatterns = [
    path("", include("linking.staff.accounts")),
    path("", include("linking.staff.review")),  # requests/, links/, holds/, students/
    path("reconciliation/", include("linking.staff.reconciliation")),
    path("lockouts/", include("linking.staff.lockouts")),
    path("audit/", include("linking.staff.audit")),
    path("letters/", include("linking.staff.letters")),
    path("imports/", include("linking.staff.imports")),
    path("imports/runs/", include("linking.staff.import_runs")),
]
