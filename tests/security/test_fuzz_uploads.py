"""The family import upload, fuzzed: files too large, empty, binary, in the wrong encoding, with NUL bytes,
enormous lines and columns, hostile file names; and bodies larger than Django reads at all.

Every upload is sent byte by byte (a multipart body built here), so file names reach Django exactly as a
browser or a script could send them. A refused upload answers 400 with the reason next to the file field
and saves nothing; an accepted one is whole: one run, and exactly one saved row per line its preview counts.
"""

from __future__ import annotations

import codecs
import functools

import pytest
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from linking.imports.parsing import MAX_BYTES, MAX_ROWS
from linking.models import ImportRow, ImportRun
from tests.security.fuzzing import (  # noqa: F401
    FUZZ_EXAMPLES,
    Submission,
    each,
    fuzz_report,
    fuzz_request,
    fuzz_settings,
    hostile_values,
)
from tests.staff.conftest import fast_accounts, staff  # noqa: F401

HEADER = b"student_sis_id,parent_email,parent_first_name,parent_last_name\n"
ROW = b"S1001,ana.diaz@example.com,Ana,Diaz\n"
BOUNDARY = "----FuzzUploadBoundary"
NO_FILE = "This field is required."
UNREADABLE = "The portal could not read what you sent."


def padded(size: int) -> bytes:
    """A valid CSV of exactly ``size`` bytes (valid rows, then a last cell long enough to fill it)."""
    rows = HEADER + ROW * 100
    start = b"S1002,pad@example.com,Pad,"
    return rows + start + b"x" * (size - len(rows) - len(start) - 1) + b"\n"


# name: (content, what the refusal says, or None when the file is accepted with some rows invalid)
FILES: dict[str, tuple[bytes, str | None]] = {
    "empty": (b"", "The submitted file is empty."),
    "a BOM alone": (codecs.BOM_UTF8, "The file is empty."),
    "blank lines": (b"\n\r\n \n", "The file is empty."),
    "a header alone": (HEADER, "a header line but no families"),
    "no student column": (b"parent_email,parent_first_name,parent_last_name\na@example.com,A,B\n", "no student column"),
    "binary junk": (bytes(range(256)) * 64, "not UTF-8 text"),
    "a PNG": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "not UTF-8 text"),
    "a ZIP (an .xlsx)": (b"PK\x03\x04\x14\x00\x06\x00" + bytes(300), "not a CSV text file"),
    "UTF-16 with its BOM": ((HEADER + ROW).decode().encode("utf-16"), "not UTF-8 text"),
    "Latin-1": (HEADER + "S1,a@example.com,José,Díaz\n".encode("latin-1"), "not UTF-8 text"),
    "Shift JIS": (HEADER + "S1,a@example.com,山田,太郎\n".encode("shift_jis"), "not UTF-8 text"),
    "an overlong UTF-8 slash": (HEADER + b"S1,a@example.com,\xc0\xaf,B\n", "not UTF-8 text"),
    "a UTF-8 surrogate": (HEADER + b"S1,a@example.com,\xed\xa0\x80,B\n", "not UTF-8 text"),
    "NUL in a cell": (HEADER + b"S1,a@example.com,A\x00na,B\n", "not a CSV text file"),
    "NUL in the header": (b"student_sis_id\x00,parent_email\n", "not a CSV text file"),
    "a cell over the CSV field limit": (
        HEADER + b"S1,a@example.com,Ana," + b"x" * 200_000 + b"\n",
        "could not be read",
    ),
    # Accepted: the quote runs to the end of the file, and the row it makes is invalid.
    "an unclosed quote": (HEADER + b'S1,"a@example.com,Ana,B\n' + ROW * 3, None),
    "more rows than allowed": (HEADER + ROW * (MAX_ROWS + 1), f"more than {MAX_ROWS:,} rows"),
    "one byte over the limit": (padded(MAX_BYTES + 1), "larger than 5 MB"),
    "three times the limit": (padded(3 * MAX_BYTES), "larger than 5 MB"),
    # Accepted: the run is saved, and the preview shows these rows as errors.
    "a cell of 100,000 characters": (HEADER + b"S1,a@example.com,Ana," + b"x" * 100_000 + b"\n", None),
    "10,000 columns": (HEADER.rstrip() + b"," + b",".join(b"c%d" % n for n in range(10_000)) + b"\n" + ROW, None),
    "control characters": (HEADER + "S1,a@example.com,\x1b[2J\x07,\x7f\x85\n".encode(), None),
    "bidi overrides and emoji": (HEADER + "S1,a@example.com,\u202eAna\u202c,👨\u200d👩\u200d👧\n".encode(), None),
    "carriage returns only": ((HEADER + ROW * 3).replace(b"\n", b"\r"), None),
    "semicolons": ((HEADER + ROW).replace(b",", b";"), None),
    "formula cells": (HEADER + b'S1,a@example.com,=cmd|"/c calc"!A1,+1+1\n', None),
}

FILENAMES = [
    "",
    ".",
    "..",
    "\x00.csv",
    "fam\x00ilies.csv",
    "families.csv\x00.exe",
    "../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "\u202evsc.exe",
    "👨\u200d👩\u200d👧.csv",
    "x" * 1000 + ".csv",
    "\r\nContent-Type: text/html\r\n.csv",
    '"quoted".csv',
    "CON",
    "&lt;script&gt;.csv",
]


def multipart(fields: dict[str, str], files: list[tuple[str, str | bytes, bytes]]) -> bytes:
    """A multipart body, file names written byte for byte (``files``: field name, file name, content)."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for field_name, filename, content in files:
        raw_name = filename if isinstance(filename, bytes) else filename.encode("utf-8", "surrogatepass")
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field_name}"; filename="'.encode()
            + raw_name.replace(b'"', b"%22")
            + b'"\r\nContent-Type: text/csv\r\n\r\n'
            + content
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def upload(content: bytes, filename: str | bytes = "families.csv", **fields) -> Submission:
    fields = {"method": "api", **fields}
    body = multipart(fields, [("file", filename, content)])
    return Submission(fields, "body", body=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")


def whole_run(response) -> None:
    """An accepted upload saved one run and every row its preview counts, nothing less."""
    run = ImportRun.objects.get()
    assert response["Location"] == reverse("staff_import_preview", args=[run.pk])
    assert ImportRow.objects.filter(run=run).count() == run.preview["rows"] > 0
    assert run.filename and "\x00" not in run.filename and "/" not in run.filename and len(run.filename) <= 255


def send(staff, submission: Submission, kind: str):
    return fuzz_request(staff.client, "POST", reverse("staff_import_new"), submission, kind=kind, accepted=whole_run)


def test_an_upload_is_refused_with_its_reason_or_saved_whole(staff):
    each({name: functools.partial(check_file, staff, name) for name in FILES})


def check_file(staff, name: str) -> None:
    content, reason = FILES[name]
    outcome = send(staff, upload(content), "upload")
    if reason is None:
        assert outcome.status == 302, f"{name}: {outcome.status}"
    else:
        assert outcome.status == 400, f"{name}: {outcome.status}"
        assert reason in outcome.body.decode(), f"{name}: the page does not say {reason!r}"


def test_no_file_name_breaks_the_upload(staff):
    each({repr(filename)[:40]: functools.partial(check_filename, staff, filename) for filename in FILENAMES})


def check_filename(staff, filename: str) -> None:
    outcome = send(staff, upload(HEADER + ROW, filename), "upload")
    # Django drops names that are no name ("", ".", "..") and refuses a part whose headers pass 1 KB.
    assert outcome.status in (302, 400)
    if outcome.status == 400:
        assert any(reason in outcome.body.decode() for reason in (NO_FILE, UNREADABLE))


def test_file_names_that_are_not_utf8_or_encoded_by_rfc_2231_are_read(staff):
    for filename in (b"\xff\xfefam.csv", b"fam\xc0\xafilies.csv", b"\xe9t\xe9.csv"):
        send(staff, upload(HEADER + ROW, filename), "upload")
    body = multipart({"method": "api"}, []).replace(
        f"--{BOUNDARY}--".encode(),
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E2%80%AE%00x.csv"
        f"\r\n\r\n".encode()
        + HEADER
        + ROW
        + f"\r\n--{BOUNDARY}--".encode(),
    )
    send(staff, Submission({}, "body", body=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"), "upload")


def test_two_files_or_none_or_text_in_the_file_field_are_refused_or_read(staff):
    url = reverse("staff_import_new")
    one, two = ("first.csv", HEADER + ROW), ("second.csv", b"\x00")
    body = multipart({"method": "api"}, [("file", *one), ("file", *two)])
    send(staff, Submission({}, "body", body=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"), "upload")
    for fields in ({"method": "api"}, {"method": "api", "file": "student_sis_id,parent_email"}):
        outcome = fuzz_request(staff.client, "POST", url, Submission(fields, "multipart"), kind="upload")
        assert outcome.status == 400 and NO_FILE in outcome.body.decode()
    many = [("file", f"f{n}.csv", b"") for n in range(101)]  # more than DATA_UPLOAD_MAX_NUMBER_FILES
    body = multipart({"method": "api"}, many)
    outcome = send(
        staff, Submission({}, "body", body=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"), "upload"
    )
    assert outcome.status == 400 and "more fields or files than any form" in outcome.body.decode()


def test_the_upload_form_states_its_limits(staff):
    page = staff.client.get(reverse("staff_imports")).content.decode()
    assert f"At most {MAX_BYTES // (1024 * 1024)} MB and {MAX_ROWS} rows" in page


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("staff_import_new", {"method": "x" * 3_000_000}),
        ("add_child", {"codes": "AbC123 " * 400_000}),
        ("staff_request_reject", {"reason": "é" * 1_500_000}),
    ],
)
def test_a_form_larger_than_django_reads_is_refused_with_a_message(request, staff, name, data):
    from tests.security.fuzz_targets import TARGETS, World

    target = TARGETS[name][-1]
    world = World(request)
    client = world.client(target.persona)
    url = reverse(name, kwargs=target.kwargs(world) if target.kwargs else None)
    outcome = fuzz_request(client, "POST", url, Submission(data, "urlencoded"), kind="upload")
    assert outcome.status == 400
    assert "larger than the portal accepts" in outcome.body.decode()


csv_cells = st.one_of(hostile_values, st.sampled_from(["S1001", "ana@example.com", "Ana", "es", "EN", ""]))
csv_text = st.lists(st.lists(csv_cells, min_size=1, max_size=8), min_size=1, max_size=6).map(
    lambda rows: HEADER + "\n".join(",".join(row) for row in rows).encode("utf-8", "surrogatepass")
)


# Uploads are cheap to try and the file is the richest input of the portal: four times the examples.
@settings(fuzz_settings, max_examples=4 * FUZZ_EXAMPLES)
@given(
    content=st.one_of(csv_text, st.binary(max_size=4000), csv_text.map(lambda text: text.replace(b",", b";"))),
    filename=st.one_of(st.sampled_from(FILENAMES), hostile_values.map(lambda name: name[:2000])),
    dry_run=st.one_of(st.none(), hostile_values),
    method=st.one_of(st.sampled_from(["api", "sis_import"]), hostile_values),
)
def test_hypothesis_finds_no_upload_that_breaks_it(staff, content, filename, dry_run, method):
    fields = {"method": method} if dry_run is None else {"method": method, "dry_run": dry_run}
    fields = {name: value for name, value in fields.items() if "\r" not in value and "\n" not in value}
    body = multipart(fields, [("file", filename, content)])
    submission = Submission(fields, "body", body=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    send(staff, submission, "upload-hypothesis")
