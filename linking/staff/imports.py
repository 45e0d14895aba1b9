"""Staff console: family imports, from the upload to the preview.

An upload is saved as a run (``linking.services.imports.import_run_create``) and checked by the worker;
its preview page polls while the check runs, then shows the counts and the rows that will not be
imported. Starting, pausing and following a run are ``linking.staff.import_runs``.
"""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from linking.imports.parsing import MAX_BYTES, MAX_ROWS, student_key_label
from linking.models import ImportRun
from linking.services.imports import ImportFileError, import_run_create, import_run_problem_rows
from linking.staff.access import staff_required

RECENT_RUNS = 20
PROBLEMS_PER_PAGE = 50


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "UTF-8. Columns: student_sis_id (or student_login, student_email), parent_email, "
            "parent_first_name, parent_last_name, and optionally language (en or es) and parent_sis_id."
        ),
    )
    dry_run = forms.BooleanField(label=_("Dry run only: check and count, change nothing in Canvas"), required=False)
    method = forms.ChoiceField(
        label=_("How to link"), choices=ImportRun.Method.choices, initial=ImportRun.Method.API, widget=forms.RadioSelect
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)d MB. Split it into smaller files and import each.")
                % {"mb": MAX_BYTES // (1024 * 1024)}
            )
        return upload


def _home(request: HttpRequest, form: ImportUploadForm, *, status: int = 200) -> HttpResponse:
    runs = ImportRun.objects.select_related("created_by").order_by("-created_at")[:RECENT_RUNS]
    return render(
        request,
        "staff/imports/home.html",
        {"form": form, "runs": runs, "max_rows": MAX_ROWS, "max_mb": MAX_BYTES // (1024 * 1024)},
        status=status,
    )


@require_GET
@staff_required
def imports_home(request: HttpRequest) -> HttpResponse:
    return _home(request, ImportUploadForm())


@require_POST
@staff_required
def import_new(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _home(request, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        run = import_run_create(
            content=upload.read(),
            filename=upload.name,
            source=ImportRun.Source.UPLOAD,
            by=request.user,
            dry_run=form.cleaned_data["dry_run"],
            method=form.cleaned_data["method"],
        )
    except ImportFileError as refusal:
        form.add_error("file", str(refusal))
        return _home(request, form, status=400)
    return redirect("staff_import_preview", pk=run.pk)


def _preview_context(request: HttpRequest, run: ImportRun) -> dict:
    seen_before = run.preview.get("seen_before")
    problems = Paginator(import_run_problem_rows(run), PROBLEMS_PER_PAGE).get_page(request.GET.get("page"))
    problems.object_list = list(problems.object_list)
    for row in problems.object_list:
        row.student_label = student_key_label(row.student_key) if row.student_key else ""
    return {
        "run": run,
        "checking": run.state == ImportRun.State.CHECKING,
        "seen_before": parse_datetime(seen_before) if seen_before else None,
        "problems": problems,
    }


@require_GET
@staff_required
def import_preview(request: HttpRequest, pk) -> HttpResponse:
    run = get_object_or_404(ImportRun.objects.select_related("created_by"), pk=pk)
    return render(request, "staff/imports/preview.html", _preview_context(request, run))


@require_GET
@staff_required
def import_status(request: HttpRequest, pk) -> HttpResponse:
    """The preview panel alone, for the page to poll; ``X-Pending: 0`` once the check is over."""
    run = get_object_or_404(ImportRun.objects.select_related("created_by"), pk=pk)
    context = _preview_context(request, run)
    response = render(request, "staff/imports/_preview.html", context)
    response["X-Pending"] = "1" if context["checking"] else "0"
    return response


urlpatterns = [
    path("", imports_home, name="staff_imports"),
    path("new/", import_new, name="staff_import_new"),
    path("<uuid:pk>/", import_preview, name="staff_import_preview"),
    path("<uuid:pk>/status/", import_status, name="staff_import_status"),
]
