"""Staff console: reconciliation with Canvas.

The drift page shows the latest run and the links the portal and Canvas disagree about; each
resolution is its own POST URL that calls one service (``linking.services.reconcile``) and redirects
back with a message. No view talks to Canvas: runs and relinks happen in the worker.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from linking.models import Drift
from linking.services.reconcile import (
    DriftRefused,
    drift_adopt,
    drift_mark_removed,
    drift_page_get,
    drift_relink,
    reconciliation_request,
)
from linking.staff.access import staff_required


@require_GET
@staff_required
def drift_page(request: HttpRequest) -> HttpResponse:
    return render(request, "staff/reconciliation/drift.html", {"page": drift_page_get()})


@require_POST
@staff_required
def reconcile_now(request: HttpRequest) -> HttpResponse:
    _run, created = reconciliation_request(by=request.user)
    if created:
        messages.success(request, _("A reconciliation run is queued. Refresh this page to see its results."))
    else:
        messages.info(request, _("A reconciliation run is already under way."))
    return redirect("staff_drift")


def _resolve(request: HttpRequest, pk, service, done: str) -> HttpResponse:
    drift = get_object_or_404(Drift, pk=pk)
    try:
        service(drift=drift, by=request.user)
    except DriftRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, done)
    return redirect("staff_drift")


@require_POST
@staff_required
def adopt(request: HttpRequest, pk) -> HttpResponse:
    return _resolve(request, pk, drift_adopt, _("The link is now in the portal's records."))


@require_POST
@staff_required
def mark_removed(request: HttpRequest, pk) -> HttpResponse:
    return _resolve(request, pk, drift_mark_removed, _("The link is marked removed."))


@require_POST
@staff_required
def relink(request: HttpRequest, pk) -> HttpResponse:
    return _resolve(request, pk, drift_relink, _("The link will be made again in Canvas in a moment."))


urlpatterns = [
    path("", drift_page, name="staff_drift"),
    path("run/", reconcile_now, name="staff_reconcile_now"),
    path("drift/<uuid:pk>/adopt/", adopt, name="staff_drift_adopt"),
    path("drift/<uuid:pk>/mark-removed/", mark_removed, name="staff_drift_mark_removed"),
    path("drift/<uuid:pk>/relink/", relink, name="staff_drift_relink"),
]
