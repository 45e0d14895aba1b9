"""The audit log as CSV, a few rows at a time, safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets (CSV injection); following OWASP's guidance, such a cell gets a
leading ``'`` so it is shown as text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC

from django.db.models import QuerySet

from .models import AuditEvent
from .services import canonical_json

COLUMNS = (
    "id",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "outcome",
    "subject",
    "canvas_calls",
    "data",
    "personal",
    "hash",
    "prev_hash",
)
JSON_COLUMNS = frozenset({"subject", "canvas_calls", "data", "personal"})
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


def csv_cell(value) -> str:
    """``value`` as CSV text that no spreadsheet will run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_TRIGGERS) else text


def _row(event: AuditEvent) -> list[str]:
    cells = []
    for column in COLUMNS:
        value = getattr(event, column)
        if column in JSON_COLUMNS:
            value = canonical_json(value)
        elif column == "created_at":
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        cells.append(csv_cell(value))
    return cells


class _Echo:
    """A file-like object that hands back what is written, for csv.writer in a streamed response."""

    def write(self, value: str) -> str:
        return value


def audit_events_csv(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """CSV lines for ``events`` in id order, header first, fetched ``CHUNK`` rows per query (keyset)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    ordered = events.order_by("id")
    chunk = list(ordered[:CHUNK])
    while chunk:
        for event in chunk:
            yield writer.writerow(_row(event))
        if len(chunk) < CHUNK:
            return
        chunk = list(ordered.filter(id__gt=chunk[-1].pk)[:CHUNK])
