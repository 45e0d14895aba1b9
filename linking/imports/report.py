"""An import run's per-row outcome report as CSV: one line per line of the file, safe in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from linking.audit.export import csv_cell
from linking.models import ImportRun

COLUMNS = (
    "line",
    "student_key",
    "parent_email",
    "state",
    "outcome",
    "error",
    "canvas_calls",
    "canvas_student_id",
    "canvas_observer_id",
)
CHUNK = 500


class _Echo:
    def write(self, value: str) -> str:
        return value


def import_run_report_csv(run: ImportRun) -> Iterator[str]:
    """The header, then one CSV line per row in file order, a few hundred rows per query."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    rows = run.rows.order_by("number").values_list(*[("number" if c == "line" else c) for c in COLUMNS])
    last = 0
    while True:
        chunk = list(rows.filter(number__gt=last)[:CHUNK])
        for values in chunk:
            yield writer.writerow([csv_cell(value) for value in values])
        if len(chunk) < CHUNK:
            return
        last = chunk[-1][0]


def import_run_report_filename(run: ImportRun) -> str:
    return f"import-{run.created_at:%Y%m%d-%H%M}-{str(run.pk)[:8]}.csv"
