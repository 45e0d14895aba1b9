"""The import run page: its progress, its controls and its report (linking/staff/import_runs.py).

No worker runs here: starting a run queues its task on commit, which the test's transaction never does.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from linking.audit.models import AuditEvent
from linking.models import ImportRow, ImportRun


@pytest.fixture
def run(db) -> ImportRun:
    run = ImportRun.objects.create(
        source=ImportRun.Source.UPLOAD, filename="families.csv", file_sha256="0" * 64, state=ImportRun.State.PREVIEW
    )
    ImportRow.objects.bulk_create(
        ImportRow(
            run=run,
            number=number,
            student_key=f"sis_id:S{number}",
            parent_email=f"parent{number}@example.test",
            canvas_student_id=number,
            expected=ImportRow.Outcome.NEW_PARENT_LINKED,
        )
        for number in range(2, 12)
    )
    return run


def running(run: ImportRun, done: int) -> ImportRun:
    started = timezone.now() - timedelta(minutes=2)
    ImportRun.objects.filter(pk=run.pk).update(state=ImportRun.State.RUNNING, started_at=started)
    finished = run.rows.order_by("number")[:done]
    ImportRow.objects.filter(pk__in=[r.pk for r in finished]).update(
        state=ImportRow.State.DONE,
        outcome=ImportRow.Outcome.NEW_PARENT_LINKED,
        canvas_calls=2,
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run


def test_it_shows_the_progress_bar_and_the_start_button(staff, run):
    page = staff.client.get(reverse("staff_import_run", args=[run.pk])).content.decode()
    assert '<progress id="run-progress" max="10" value="0">' in page
    assert reverse("staff_import_run_start", args=[run.pk]) in page
    assert reverse("staff_import_report", args=[run.pk]) in page


def test_the_progress_partial_shows_the_numbers_while_the_run_is_running(staff, run):
    running(run, done=4)
    response = staff.client.get(reverse("staff_import_run_progress", args=[run.pk]))
    text = response.content.decode()
    assert response["X-Pending"] == "1"
    assert '<progress id="run-progress" max="10" value="4">' in text
    assert "4 of 10 rows" in text and "2.0 rows/min" in text and "about 3 minutes left" in text
    assert "Canvas calls per row: 2.0" in text


def test_the_progress_partial_stops_the_polling_once_the_run_is_over(staff, run):
    ImportRun.objects.filter(pk=run.pk).update(state=ImportRun.State.DONE)
    assert staff.client.get(reverse("staff_import_run_progress", args=[run.pk]))["X-Pending"] == "0"


def test_start_queues_the_run(staff, run):
    response = staff.client.post(reverse("staff_import_run_start", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.state == ImportRun.State.QUEUED
    assert AuditEvent.objects.filter(action="import_run.started", actor_id=staff.user.pk).exists()


def test_start_refuses_a_dry_run_with_a_message(staff, run):
    ImportRun.objects.filter(pk=run.pk).update(dry_run=True)
    response = staff.client.post(reverse("staff_import_run_start", args=[run.pk]), follow=True)
    assert "dry run" in response.content.decode()
    assert ImportRun.objects.get(pk=run.pk).state == ImportRun.State.PREVIEW


def test_pause_resume_and_cancel_move_the_run(staff, run):
    running(run, done=3)
    staff.client.post(reverse("staff_import_run_pause", args=[run.pk]))
    assert ImportRun.objects.get(pk=run.pk).state == ImportRun.State.PAUSED
    staff.client.post(reverse("staff_import_run_resume", args=[run.pk]))
    assert ImportRun.objects.get(pk=run.pk).state == ImportRun.State.QUEUED
    staff.client.post(reverse("staff_import_run_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.state == ImportRun.State.CANCELLED
    assert run.rows.filter(state=ImportRow.State.SKIPPED, error="Cancelled").count() == 7


def test_the_report_downloads_one_line_per_row(staff, run):
    running(run, done=2)
    response = staff.client.get(reverse("staff_import_report", args=[run.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(lines) == 1 + 10
    assert lines[1][:5] == ["2", "sis_id:S2", "parent2@example.test", "done", "new_parent_linked"]
    assert AuditEvent.objects.filter(action="import_run.report_downloaded").count() == 1


@pytest.mark.parametrize(
    "name", ["staff_import_run", "staff_import_run_progress", "staff_import_report", "staff_import_run_start"]
)
def test_it_is_for_staff_only(parent_b, run, name):
    url = reverse(name, args=[run.pk])
    response = parent_b.client.post(url) if name.endswith("start") else parent_b.client.get(url)
    assert response.status_code == 403
    assert ImportRun.objects.get(pk=run.pk).state == ImportRun.State.PREVIEW
