"""Staff console: running a checked import, following its progress, and its per-row report.

The run page shows the state, a progress bar (polled while the run is queued or running) and one
button per action; each action is its own POST URL calling one service in
``linking.services.import_runs``. No view talks to Canvas: the rows are worked by the worker.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from linking.imports.report import import_run_report_csv, import_run_report_filename
from linking.models import ImportRow, ImportRun
from linking.services.import_runs import (
    ImportRunRefused,
    import_run_cancel,
    import_run_pause,
    import_run_progress,
    import_run_report_record,
    import_run_resume,
    import_run_start,
    sis_import_possible,
)
from linking.staff.access import staff_required


def _run(pk) -> ImportRun:
    return get_object_or_404(ImportRun.objects.select_related("created_by"), pk=pk)


def _context(run: ImportRun) -> dict:
    outcomes = run.summary.get("outcomes", {})
    return {
        "run": run,
        "progress": import_run_progress(run),
        "pending": run.state in ImportRun.ACTIVE_STATES,
        "has_actions": run.state in (ImportRun.State.PREVIEW, *ImportRun.ACTIVE_STATES, ImportRun.State.PAUSED),
        "outcomes": [
            (ImportRow.Outcome(key).label if key in ImportRow.Outcome.values else key, n) for key, n in outcomes.items()
        ],
        "methods": ImportRun.Method.choices,
    }


@require_GET
@staff_required
def run_page(request: HttpRequest, pk) -> HttpResponse:
    run = _run(pk)
    context = _context(run)
    context["sis_possible"] = run.state == ImportRun.State.PREVIEW and sis_import_possible(run)
    return render(request, "staff/imports/runs/run.html", context)


@require_GET
@staff_required
def run_progress(request: HttpRequest, pk) -> HttpResponse:
    """The progress panel alone, for the page to poll; ``X-Pending: 0`` once the run stops."""
    context = _context(_run(pk))
    response = render(request, "staff/imports/runs/_progress.html", context)
    response["X-Pending"] = "1" if context["pending"] else "0"
    return response


def _act(request: HttpRequest, pk, service, done: str, **extra) -> HttpResponse:
    run = _run(pk)
    try:
        service(run=run, by=request.user, **extra)
    except ImportRunRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, done)
    return redirect("staff_import_run", pk=run.pk)


@require_POST
@staff_required
def run_start(request: HttpRequest, pk) -> HttpResponse:
    method = request.POST.get("method") or None
    return _act(request, pk, import_run_start, _("The import has started."), method=method)


@require_POST
@staff_required
def run_pause(request: HttpRequest, pk) -> HttpResponse:
    return _act(request, pk, import_run_pause, _("Paused. Rows already being linked will finish."))


@require_POST
@staff_required
def run_resume(request: HttpRequest, pk) -> HttpResponse:
    return _act(request, pk, import_run_resume, _("The import carries on where it stopped."))


@require_POST
@staff_required
def run_cancel(request: HttpRequest, pk) -> HttpResponse:
    return _act(request, pk, import_run_cancel, _("Cancelled. Rows not yet linked are skipped."))


@require_GET
@staff_required
def run_report(request: HttpRequest, pk) -> StreamingHttpResponse:
    run = _run(pk)
    import_run_report_record(run=run, by=request.user)
    response = StreamingHttpResponse(import_run_report_csv(run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{import_run_report_filename(run)}"'
    return response


urlpatterns = [
    path("<uuid:pk>/", run_page, name="staff_import_run"),
    path("<uuid:pk>/progress/", run_progress, name="staff_import_run_progress"),
    path("<uuid:pk>/start/", run_start, name="staff_import_run_start"),
    path("<uuid:pk>/pause/", run_pause, name="staff_import_run_pause"),
    path("<uuid:pk>/resume/", run_resume, name="staff_import_run_resume"),
    path("<uuid:pk>/cancel/", run_cancel, name="staff_import_run_cancel"),
    path("<uuid:pk>/report.csv", run_report, name="staff_import_report"),
]
