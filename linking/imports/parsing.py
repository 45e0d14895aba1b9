"""Reading a family import file: a CSV of students and their parents, checked line by line.

No database and no Canvas here: :func:`families_csv_parse` turns the bytes into rows, each with the
plain-words reason it is not valid (or none). A file that cannot be read at all raises
:class:`ImportFileError`, whose message is meant for the person who uploaded it.

The student is named by one of ``student_sis_id``, ``student_login`` or ``student_email`` (or a single
``student`` column holding any of them); the row keeps it as ``<kind>:<value>`` (see
:func:`student_key_split`), so the check knows which one Canvas call finds it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000

# Student key kinds, in the order a row's columns are preferred.
SIS_ID, LOGIN, EMAIL, ANY = "sis_id", "login", "email", "any"
KEY_KINDS = (SIS_ID, LOGIN, EMAIL, ANY)

# Canonical column -> header names accepted for it (compared after normalising: lower case, runs of
# spaces, dashes and dots as one underscore).
ALIASES: dict[str, tuple[str, ...]] = {
    "student_sis_id": ("student_sis_id", "student_sis", "sis_id", "sis_user_id", "student_id", "student_number"),
    "student_login": ("student_login", "student_login_id", "login_id", "student_username", "username"),
    "student_email": ("student_email", "student_email_address"),
    "student": ("student",),
    "parent_email": (
        "parent_email",
        "parent_email_address",
        "email",
        "guardian_email",
        "observer_email",
    ),
    "parent_first_name": (
        "parent_first_name",
        "parent_first",
        "first_name",
        "guardian_first_name",
        "parent_given_name",
    ),
    "parent_last_name": (
        "parent_last_name",
        "parent_last",
        "last_name",
        "guardian_last_name",
        "parent_surname",
        "parent_family_name",
    ),
    "language": ("language", "lang", "locale", "parent_language", "preferred_language"),
    "parent_sis_id": ("parent_sis_id", "guardian_sis_id", "observer_sis_id"),
}
STUDENT_COLUMNS = (("student_sis_id", SIS_ID), ("student_login", LOGIN), ("student_email", EMAIL), ("student", ANY))
REQUIRED = ("parent_email", "parent_first_name", "parent_last_name")
LANGUAGES = {"en": "en", "english": "en", "inglés": "en", "es": "es", "spanish": "es", "español": "es"}
MAX_TEXT = 255


class ImportFileError(Exception):
    """The whole file is refused (nothing is saved); ``str`` says why in plain words."""


@dataclass
class ParsedRow:
    number: int  # the line in the file; the header is line 1
    student_key: str = ""
    parent_email: str = ""
    parent_first_name: str = ""
    parent_last_name: str = ""
    language: str = ""
    parent_sis_id: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def error(self) -> str:
        return "; ".join(self.errors)


@dataclass
class ParsedFile:
    columns: list[str]
    rows: list[ParsedRow]

    @property
    def invalid(self) -> int:
        return sum(1 for row in self.rows if row.errors)


def student_key_make(kind: str, value: str) -> str:
    return f"{kind}:{value}"


def student_key_split(key: str) -> tuple[str, str]:
    """``("sis_id", "S1001")`` for ``"sis_id:S1001"``; a key without a known kind is ``("any", key)``."""
    kind, colon, value = key.partition(":")
    if colon and kind in KEY_KINDS:
        return kind, value
    return ANY, key


def student_key_label(key: str) -> str:
    """The key in words: ``SIS id S1001``, ``login s1001``, ``email a@b.org``."""
    kind, value = student_key_split(key)
    return {SIS_ID: "SIS id", LOGIN: "login", EMAIL: "email", ANY: "id"}[kind] + f" {value}"


def _normalise(header: str) -> str:
    return re.sub(r"[\s\-.]+", "_", header.replace("\ufeff", "").strip().lower()).strip("_")


def _decode(content: bytes) -> str:
    if len(content) > MAX_BYTES:
        raise ImportFileError(
            f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB. Split it into smaller files and import each."
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"The file is not UTF-8 text (line {line} has characters that cannot be read). "
            "Save it as “CSV UTF-8” in your spreadsheet program and try again."
        ) from None
    if "\x00" in text:
        raise ImportFileError("The file is not a CSV text file. Save it as “CSV UTF-8” and try again.")
    if not text.strip():
        raise ImportFileError("The file is empty.")
    return text


def _delimiter(header_line: str) -> str:
    # Spreadsheets in some languages save "CSV" with semicolons; tabs come from copy and paste.
    if "," in header_line:
        return ","
    return max(";\t", key=header_line.count) if any(d in header_line for d in ";\t") else ","


def _columns(headers: list[str]) -> dict[str, int]:
    """Canonical column -> index in the row; the first header matching a column wins."""
    lookup = {alias: column for column, aliases in ALIASES.items() for alias in aliases}
    found: dict[str, int] = {}
    for index, header in enumerate(headers):
        column = lookup.get(_normalise(header))
        if column and column not in found:
            found[column] = index
    return found


def _refuse_missing(found: dict[str, int], headers: list[str]) -> None:
    listed = ", ".join(h.strip() for h in headers if h.strip()) or "none"
    if not any(column in found for column, _kind in STUDENT_COLUMNS):
        raise ImportFileError(
            "The file has no student column: add one named student_sis_id, student_login or student_email. "
            f"Columns found: {listed}."
        )
    for column in REQUIRED:
        if column not in found:
            raise ImportFileError(f"The file has no {column} column. Columns found: {listed}.")


def families_csv_parse(content: bytes) -> ParsedFile:
    """Read an import file; raises :class:`ImportFileError` when it cannot be imported at all.

    UTF-8 (a BOM is fine); header names are matched case-insensitively with common aliases; blank
    lines are ignored; at most :data:`MAX_BYTES` and :data:`MAX_ROWS` rows. Every row is checked on
    its own (student id, parent email, names, language) and against earlier lines (the same student
    and parent twice).
    """
    text = _decode(content)
    first_line = text.lstrip("\r\n").splitlines()[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    try:
        headers = next((cells for cells in reader if any(cell.strip() for cell in cells)), None)
        if headers is None:
            raise ImportFileError("The file is empty.")
        found = _columns(headers)
        _refuse_missing(found, headers)
        rows: list[ParsedRow] = []
        seen: dict[tuple[str, str], int] = {}
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportFileError(
                    f"The file has more than {MAX_ROWS:,} rows. Split it into smaller files and import each."
                )
            row = _row(start, cells, found)
            _check_duplicate(row, seen)
            rows.append(row)
    except csv.Error as exc:
        raise ImportFileError(f"The file could not be read as CSV (line {reader.line_num}: {exc}).") from None
    return ParsedFile(columns=[h.strip() for h in headers], rows=rows)


def _cell(cells: list[str], found: dict[str, int], column: str) -> str:
    index = found.get(column)
    if index is None or index >= len(cells):
        return ""
    return " ".join(cells[index].split())


def _row(number: int, cells: list[str], found: dict[str, int]) -> ParsedRow:
    row = ParsedRow(number=number)
    for column, kind in STUDENT_COLUMNS:
        if value := _cell(cells, found, column):
            if kind == ANY and "@" in value:
                kind = EMAIL
            row.student_key = student_key_make(kind, value)
            break
    else:
        row.errors.append("No student SIS id, login or email")
    if len(row.student_key) > MAX_TEXT:
        row.errors.append(f"The student id is longer than {MAX_TEXT - 10} characters")
        row.student_key = row.student_key[:MAX_TEXT]

    email = _cell(cells, found, "parent_email").replace(" ", "").lower()
    row.parent_email = email[:320]
    if not email:
        row.errors.append("No parent email")
    else:
        try:
            validate_email(email)
        except ValidationError:
            row.errors.append(f"“{row.parent_email}” is not an email address")

    for column, words in (("parent_first_name", "first name"), ("parent_last_name", "last name")):
        value = _cell(cells, found, column)
        if not value:
            row.errors.append(f"No parent {words}")
        elif len(value) > MAX_TEXT:
            row.errors.append(f"The parent {words} is longer than {MAX_TEXT} characters")
        setattr(row, column, value[:MAX_TEXT])

    language = _cell(cells, found, "language")
    if language:
        row.language = LANGUAGES.get(language.lower(), "")
        if not row.language:
            row.errors.append("language must be en or es")
    row.parent_sis_id = _cell(cells, found, "parent_sis_id")[:MAX_TEXT]
    return row


def _check_duplicate(row: ParsedRow, seen: dict[tuple[str, str], int]) -> None:
    if row.errors:
        return  # a later, valid line for the same family is the one to keep
    pair = (row.student_key.lower(), row.parent_email)
    if pair in seen:
        row.errors.append(f"Same family as line {seen[pair]}")
    else:
        seen[pair] = row.number
