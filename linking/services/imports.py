"""Bulk family imports, before any Canvas write: saving a file as a run, and checking it for a preview.

Web side (and the command, and the drop folder): :func:`import_run_create` parses the file and saves
the run and one row per line in one transaction (the rows are the outbox), then queues the check.
Worker side: :func:`import_run_check` finds each row's student and parent with the fewest Canvas
calls (none for people the portal already knows), decides what the run would do with the row, and
saves the preview's counts. The run itself (the writes) is ``linking.services.import_runs``.

The preview's counts (``ImportRun.preview``):

- ``rows``: lines with data in the file (blank lines are not rows);
- ``new_parent_accounts``: distinct parent emails with no Canvas account yet: accounts the run creates;
- ``new_links``: rows the run links in Canvas (``linked`` + ``new_parent_linked``);
- ``already_linked``: rows whose parent and student the portal already links (nothing to do);
- ``skipped``: rows the school holds apart (a PairHold);
- ``errors``: rows not valid (bad or missing values, a repeated family, a student Canvas does not know);
- ``check_calls``: Canvas calls the check made; ``seen_before``: when this same file (by sha256) last
  ran to the end, ISO 8601, or None.

``rows == new_links + already_linked + skipped + errors``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
import uuid
from datetime import datetime
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from linking.audit.services import audit_event_record
from linking.canvas import (
    CanvasAmbiguousMatch,
    CanvasClient,
    CanvasError,
    CanvasThrottled,
    CanvasTransient,
    admin_client,
    record_canvas_calls,
)
from linking.imports.parsing import (
    ANY,
    EMAIL,
    LOGIN,
    SIS_ID,
    ImportFileError,
    families_csv_parse,
    student_key_label,
    student_key_split,
)
from linking.models import ImportRow, ImportRun, ObservationLink, Parent, Student
from linking.services.holds import pairs_held
from linking.services.links import RetryLater

logger = logging.getLogger(__name__)

__all__ = ["ImportFileError", "import_run_check", "import_run_create", "import_drop_folder_scan"]

HELD_APART = "The school holds this parent and student apart"
# With this many students and parents to find in Canvas, the check first reads the account's user list
# (100 users a request) instead of asking for each person, reading at most DIRECTORY_BUDGET requests per
# lookup it replaces; see _directory_read.
DIRECTORY_MIN_LOOKUPS = 100
DIRECTORY_BUDGET = 0.5
# Rows checked between saves: a retry after an outage starts after the last save, not from the top.
CHECK_BATCH = 100
# A file changed more recently than this may still be being written; the next scan takes it.
DROP_FOLDER_SETTLE_SECONDS = 60


# -- web side -------------------------------------------------------------------------------------
def import_run_create(
    *,
    content: bytes,
    filename: str,
    source: str,
    by: AbstractBaseUser | None,
    dry_run: bool = False,
    method: str = ImportRun.Method.API,
) -> ImportRun:
    """Save a run and one row per line of the file, and queue its check; nothing is sent to Canvas.

    Rows that are not valid on their face are saved ``invalid`` with the reason. Raises
    :class:`ImportFileError` (and saves nothing) when the file cannot be imported at all.
    """
    from linking.tasks import import_run_check_process

    parsed = families_csv_parse(content)
    if not parsed.rows:
        raise ImportFileError("The file has a header line but no families under it.")
    with transaction.atomic():
        run = ImportRun.objects.create(
            source=source,
            method=method,
            filename=Path(filename or "import.csv").name[:255],
            file_sha256=hashlib.sha256(content).hexdigest(),
            dry_run=dry_run,
            created_by=by,
            preview={"rows": len(parsed.rows), "checked": parsed.invalid, "check_calls": 0},
        )
        ImportRow.objects.bulk_create(
            [
                ImportRow(
                    run=run,
                    number=row.number,
                    student_key=row.student_key,
                    parent_email=row.parent_email,
                    parent_first_name=row.parent_first_name,
                    parent_last_name=row.parent_last_name,
                    language=row.language,
                    parent_sis_id=row.parent_sis_id,
                    state=ImportRow.State.INVALID if row.errors else ImportRow.State.PENDING,
                    error=row.error,
                )
                for row in parsed.rows
            ],
            batch_size=1000,
        )
        audit_event_record(
            action="import_run.created",
            actor=by,
            actor_label="staff" if by is not None else "system",
            subject={"import_run": str(run.pk)},
            data={
                "source": source,
                "method": method,
                "dry_run": dry_run,
                "rows": len(parsed.rows),
                "invalid": parsed.invalid,
                "file_sha256": run.file_sha256,
            },
            personal={"filename": run.filename},
        )
        import_run_check_process.delay_on_commit(str(run.pk))
    return run


def import_run_seen_before(run: ImportRun) -> datetime | None:
    """When the same file (same bytes) last ran to the end, not as a dry run; None if never."""
    earlier = (
        ImportRun.objects.filter(file_sha256=run.file_sha256, state=ImportRun.State.DONE, dry_run=False)
        .exclude(pk=run.pk)
        .order_by("-finished_at", "-created_at")
        .first()
    )
    return (earlier.finished_at or earlier.created_at) if earlier else None


def import_run_problem_rows(run: ImportRun):
    """The rows the preview lists: not valid, or skipped (held apart), in file order."""
    return run.rows.filter(state__in=(ImportRow.State.INVALID, ImportRow.State.SKIPPED)).order_by("number")


# -- worker side: the check -----------------------------------------------------------------------
class _Lookups:
    """Finds students and parents, each at most once per check pass, the portal before Canvas."""

    def __init__(self, run: ImportRun, canvas: CanvasClient | None):
        self._canvas = canvas
        self.students: dict[str, int | None] = {}
        self.parents: dict[str, int | None] = {}
        self.families: dict[tuple[int, str], int] = {}
        # A pass after a retry continues from rows already checked: learn what they found.
        checked = run.rows.exclude(expected="").exclude(canvas_student_id=None).order_by("number")
        for row in checked.only("number", "student_key", "parent_email", "expected", "canvas_student_id"):
            self.students[row.student_key.lower()] = row.canvas_student_id
            self.families.setdefault((row.canvas_student_id, row.parent_email), row.number)
            if row.expected in (ImportRow.Outcome.LINKED, ImportRow.Outcome.NEW_PARENT_LINKED):
                self.parents[row.parent_email] = row.canvas_observer_id
        self.learn_directory(run)

    def learn_directory(self, run: ImportRun) -> None:
        """Take what the account's user list found for the rows still to check (``_directory_read``)."""
        directory = run.preview.get("directory") or {}
        if not directory.get("read"):
            return
        unchecked = run.rows.filter(state=ImportRow.State.PENDING, expected="")
        for key, email, student_id, observer_id in unchecked.values_list(
            "student_key", "parent_email", "canvas_student_id", "canvas_observer_id"
        ):
            if student_id:
                self.students.setdefault(key.lower(), student_id)
            # The whole list was read, so a parent it lacks is new (one whose email is a second login of
            # theirs, not their first, is found when the run's create answers "taken").
            if observer_id or directory.get("complete"):
                self.parents.setdefault(email, observer_id)

    @property
    def canvas(self) -> CanvasClient:
        # Made on first use: a file of people the portal knows needs neither Canvas nor its token.
        if self._canvas is None:
            self._canvas = admin_client()
        return self._canvas

    def student(self, key: str) -> int | None:
        cache_key = key.lower()
        if cache_key not in self.students:
            self.students[cache_key] = self._find_student(*student_key_split(key))
        return self.students[cache_key]

    def _find_student(self, kind: str, value: str) -> int | None:
        if kind in (SIS_ID, ANY):
            known = Student.objects.filter(sis_user_id=value).values_list("canvas_user_id", flat=True).first()
            if known:
                return known
        if kind == SIS_ID:
            user = self.canvas.find_user_by_sis_id(value)
        elif kind == LOGIN:
            user = self.canvas.find_user_by_login(value)
        elif kind == EMAIL:
            # Student logins are rarely their email: one search matches either (exactly).
            user = self.canvas.find_user_by_email(value)
        else:
            user = self.canvas.find_user_by_sis_id(value) or self.canvas.find_user_by_login(value)
        return user["id"] if user else None

    def parent(self, email: str) -> int | None:
        if email not in self.parents:
            known = (
                Parent.objects.filter(user__email__iexact=email, canvas_user_id__isnull=False)
                .values_list("canvas_user_id", flat=True)
                .first()
            )
            if not known:
                # Parents sign in to Canvas with their email, so it is their login.
                user = self.canvas.find_user_by_login(email)
                known = user["id"] if user else None
            self.parents[email] = known
        return self.parents[email]


class _Directory:
    """The account's users by SIS id, login and email, from one read of its user list."""

    def __init__(self, users: list[dict]) -> None:
        self.by_sis: dict[str, int] = {}
        self.by_login: dict[str, int] = {}
        self.by_email: dict[str, set[int]] = {}
        for user in users:
            if user.get("sis_user_id"):
                self.by_sis[str(user["sis_user_id"]).casefold()] = user["id"]
            if user.get("login_id"):
                self.by_login[str(user["login_id"]).casefold()] = user["id"]
            if user.get("email"):
                self.by_email.setdefault(str(user["email"]).casefold(), set()).add(user["id"])

    def student(self, key: str) -> int | None:
        kind, value = student_key_split(key)
        value = value.strip().casefold()
        if kind == SIS_ID:
            return self.by_sis.get(value)
        if kind == LOGIN:
            return self.by_login.get(value)
        if kind == EMAIL:
            emailed = self.by_email.get(value, set())
            # As find_user_by_email: the login wins; an email shared by several users is left to it.
            return self.by_login.get(value) or (next(iter(emailed)) if len(emailed) == 1 else None)
        return self.by_sis.get(value) or self.by_login.get(value)

    def parent(self, email: str) -> int | None:
        return self.by_login.get(email.strip().casefold())


def _directory_read(run: ImportRun, lookups: _Lookups) -> None:
    """For a long file, find its people in one read of the account's user list, not one call each.

    Reads 100 users a request, and gives up after half as many requests as the lookups it replaces, so
    a large account costs at most half again what looking everyone up would. What it finds is saved on
    the rows (a later pass of the check starts from there); a student it does not find is still looked
    up alone, and so is every parent when it did not read the whole list.
    """
    pending = run.rows.filter(state=ImportRow.State.PENDING, expected="")
    keys = {student_key_split(key) for key in pending.values_list("student_key", flat=True)}
    by_sis = {value for kind, value in keys if kind in (SIS_ID, ANY)}  # the kinds the portal's records serve
    known = set(Student.objects.filter(sis_user_id__in=by_sis).values_list("sis_user_id", flat=True))
    emails = {email.lower() for email in pending.values_list("parent_email", flat=True)}
    known_parents = Parent.objects.filter(canvas_user_id__isnull=False, user__email__in=emails)
    lookups_needed = (
        len({(kind, value.lower()) for kind, value in keys if not (kind in (SIS_ID, ANY) and value in known)})
        + len(emails)
        - known_parents.count()
    )
    if lookups_needed < DIRECTORY_MIN_LOOKUPS:
        run.preview = {**run.preview, "directory": {"read": False}}
        return
    users, complete = lookups.canvas.list_account_users(max_pages=max(1, int(lookups_needed * DIRECTORY_BUDGET)))
    directory = _Directory(users)
    rows = list(pending.only("pk", "student_key", "parent_email"))
    for row in rows:
        row.canvas_student_id = directory.student(row.student_key)
        row.canvas_observer_id = directory.parent(row.parent_email)
    ImportRow.objects.bulk_update(rows, ["canvas_student_id", "canvas_observer_id"], batch_size=1000)
    run.preview = {**run.preview, "directory": {"read": True, "complete": complete, "users": len(users)}}
    lookups.learn_directory(run)


class _Facts:
    """What the portal knows of a batch's students, in three queries for the batch rather than per row:
    the students it has, the pairs held apart, and the pairs it links already."""

    def __init__(self, student_ids: set[int], parent_emails: list[str]) -> None:
        self.students = {s.canvas_user_id: s for s in Student.objects.filter(canvas_user_id__in=student_ids)}
        pks = [student.pk for student in self.students.values()]
        self.held = pairs_held(student_ids=pks, parent_emails=parent_emails) if pks else set()
        self.linked: dict[tuple[int, str], ObservationLink] = {}
        links = ObservationLink.objects.filter(state=ObservationLink.State.ACTIVE, student_id__in=pks)
        for link in links.select_related("parent__user").order_by("pk"):
            self.linked.setdefault((link.student_id, link.parent.user.email.strip().lower()), link)


AMBIGUOUS = object()


def _rows_check(rows: list[ImportRow], lookups: _Lookups) -> None:
    """Decide what the run would do with each pending row of a batch (sets state, error, expected, Canvas ids).

    Students are found first (the portal, then Canvas), so that what the portal knows of all of them
    comes in one go (:class:`_Facts`).
    """
    found: dict[int, object] = {}
    for row in rows:
        try:
            found[row.pk] = lookups.student(row.student_key)
        except CanvasAmbiguousMatch:
            found[row.pk] = AMBIGUOUS
    facts = _Facts({id_ for id_ in found.values() if isinstance(id_, int)}, [row.parent_email for row in rows])
    for row in rows:
        _row_check(row, found[row.pk], lookups, facts)


def _row_check(row: ImportRow, student_id, lookups: _Lookups, facts: _Facts) -> None:
    if student_id is AMBIGUOUS:
        return _row_invalid(row, f"More than one Canvas user has the {student_key_label(row.student_key)}")
    if student_id is None:
        return _row_invalid(row, f"No student with {student_key_label(row.student_key)} in Canvas")
    row.canvas_student_id = student_id
    family = (student_id, row.parent_email)
    if family in lookups.families and lookups.families[family] != row.number:
        return _row_invalid(row, f"Same family as line {lookups.families[family]}")
    lookups.families[family] = row.number

    student = facts.students.get(student_id)
    email = row.parent_email.strip().lower()
    if student is not None and (student.pk, email) in facts.held:
        row.state, row.error, row.expected = ImportRow.State.SKIPPED, HELD_APART, ImportRow.Outcome.HELD_PAIR
        return None
    link = facts.linked.get((student.pk, email)) if student is not None else None
    if link is not None:
        row.expected, row.canvas_observer_id = ImportRow.Outcome.ALREADY_LINKED, link.parent.canvas_user_id
        return None
    observer_id = lookups.parent(row.parent_email)
    if observer_id is not None and observer_id == student_id:
        return _row_invalid(row, "The parent email is the student's own Canvas login")
    row.canvas_observer_id = observer_id
    row.expected = ImportRow.Outcome.LINKED if observer_id else ImportRow.Outcome.NEW_PARENT_LINKED
    return None


def _row_invalid(row: ImportRow, reason: str) -> None:
    row.state, row.error = ImportRow.State.INVALID, reason


def import_run_check(*, run: ImportRun, canvas: CanvasClient | None = None, seconds: float | None = None) -> bool:
    """Check a claimed run's pending rows and, when every row is checked, save the preview.

    Saves every :data:`CHECK_BATCH` rows, so a retry continues where this stopped. With ``seconds``
    it stops after about that long and returns False (the task queues the rest); True when the run
    left ``checking`` (``preview``, or ``failed`` when Canvas refused the portal). Raises
    :class:`RetryLater` for outages and throttling, after saving the rows already checked.
    """
    deadline = time.monotonic() + seconds if seconds is not None else None
    lookups = _Lookups(run, canvas)
    to_check = run.rows.filter(state=ImportRow.State.PENDING, expected="").order_by("number")
    with record_canvas_calls() as calls:
        try:
            if "directory" not in run.preview:
                _directory_read(run, lookups)
                _progress_save(run, calls)
            while batch := list(to_check[:CHECK_BATCH]):
                try:
                    _rows_check(batch, lookups)
                finally:
                    _rows_save(run, [row for row in batch if row.expected or row.state != ImportRow.State.PENDING])
                    _progress_save(run, calls)
                if deadline is not None and time.monotonic() > deadline:
                    return False
        except (CanvasTransient, CanvasThrottled) as exc:
            raise RetryLater(str(exc)) from exc
        except CanvasError as exc:
            _check_failed(run, f"Canvas refused the check: {exc}")
            return True
    _check_finished(run)
    return True


def _rows_save(run: ImportRun, rows: list[ImportRow]) -> None:
    ImportRow.objects.bulk_update(rows, ["state", "error", "expected", "canvas_student_id", "canvas_observer_id"])


def _progress_save(run: ImportRun, calls: list[dict]) -> None:
    counted = getattr(run, "_calls_counted", 0)
    run.preview = {
        **run.preview,
        "checked": run.rows.exclude(state=ImportRow.State.PENDING, expected="").count(),
        "check_calls": run.preview.get("check_calls", 0) + len(calls) - counted,
    }
    run._calls_counted = len(calls)
    ImportRun.objects.filter(pk=run.pk).update(preview=run.preview, updated_at=timezone.now())


def import_run_counts(run: ImportRun) -> dict:
    """The preview's counts from the run's rows (see the module docstring)."""
    Outcome = ImportRow.Outcome
    totals = run.rows.aggregate(
        rows=Count("pk"),
        new_links=Count("pk", filter=Q(expected__in=(Outcome.LINKED, Outcome.NEW_PARENT_LINKED))),
        already_linked=Count("pk", filter=Q(expected=Outcome.ALREADY_LINKED)),
        skipped=Count("pk", filter=Q(state=ImportRow.State.SKIPPED)),
        errors=Count("pk", filter=Q(state=ImportRow.State.INVALID)),
    )
    new_parents = (
        run.rows.filter(expected=Outcome.NEW_PARENT_LINKED, state=ImportRow.State.PENDING)
        .values("parent_email")
        .distinct()
        .count()
    )
    return {
        "rows": totals["rows"],
        "new_parent_accounts": new_parents,
        "new_links": totals["new_links"],
        "already_linked": totals["already_linked"],
        "skipped": totals["skipped"],
        "errors": totals["errors"],
    }


def _check_finished(run: ImportRun) -> None:
    seen_before = import_run_seen_before(run)
    preview = {
        **import_run_counts(run),
        "check_calls": run.preview.get("check_calls", 0),
        "seen_before": seen_before.isoformat() if seen_before else None,
    }
    with transaction.atomic():
        moved = ImportRun.objects.filter(pk=run.pk, state=ImportRun.State.CHECKING).update(
            state=ImportRun.State.PREVIEW, preview=preview, claimed_at=None, claimed_by="", updated_at=timezone.now()
        )
        if not moved:
            return
        run.state, run.preview = ImportRun.State.PREVIEW, preview
        audit_event_record(
            action="import_run.checked",
            actor_label="worker",
            subject={"import_run": str(run.pk)},
            data={**preview, "dry_run": run.dry_run},
        )


def _check_failed(run: ImportRun, failure: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        moved = ImportRun.objects.filter(pk=run.pk, state=ImportRun.State.CHECKING).update(
            state=ImportRun.State.FAILED,
            failure=failure,
            finished_at=now,
            claimed_at=None,
            claimed_by="",
            updated_at=now,
        )
        if not moved:
            return
        run.state, run.failure = ImportRun.State.FAILED, failure
        audit_event_record(
            action="import_run.check_failed",
            actor_label="worker",
            subject={"import_run": str(run.pk)},
            outcome="failed",
            data={"failure": failure},
        )


def import_run_start_if_unattended(run: ImportRun) -> bool:
    """Start a checked run that nobody will press Start for: the drop folder's, and the command's (whoever
    typed ``import_families FILE`` asked for the import). False when it is not started.

    A dry run, or an upload in the console (whose preview a person reads first), is not started.
    """
    from linking.services.import_runs import import_run_start

    unattended = run.source in (ImportRun.Source.DROP_FOLDER, ImportRun.Source.COMMAND)
    if not unattended or run.dry_run or run.state != ImportRun.State.PREVIEW:
        return False
    import_run_start(run=run, by=None)
    return True


# -- the drop folder ------------------------------------------------------------------------------
def import_drop_folder_scan(*, folder: Path, settle_seconds: float = DROP_FOLDER_SETTLE_SECONDS) -> list[ImportRun]:
    """Import every settled ``*.csv`` in ``folder``, moving each to ``processed/`` or ``failed/``.

    A file changed in the last ``settle_seconds`` may still be being written and waits for the next
    scan (writers that can should write ``x.csv.part`` and rename it to ``x.csv``, which is atomic).
    Each file is claimed by renaming it into ``processed/<timestamp>-<name>`` first, so two scans
    never import it twice; a file that cannot be imported then moves to ``failed/`` with
    ``<name>.error.txt`` beside it saying why.
    """
    runs: list[ImportRun] = []
    now = time.time()
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    candidates = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and not p.name.startswith("."))
    for path in candidates:
        try:
            if not path.is_file() or now - path.stat().st_mtime < settle_seconds:
                continue
            processed = folder / "processed" / f"{stamp}-{path.name}"
            processed.parent.mkdir(exist_ok=True)
            if processed.exists():  # the same name twice in one second: rename() would overwrite it
                processed = processed.with_name(f"{stamp}-{uuid.uuid4().hex[:6]}-{path.name}")
            path.rename(processed)
        except FileNotFoundError:
            continue  # another scan took it
        try:
            runs.append(
                import_run_create(
                    content=processed.read_bytes(),
                    filename=path.name,
                    source=ImportRun.Source.DROP_FOLDER,
                    by=None,
                )
            )
        except ImportFileError as exc:
            _drop_folder_failed(folder, processed, str(exc))
        except Exception as exc:
            logger.exception("drop folder: %s could not be imported", path.name)
            _drop_folder_failed(folder, processed, f"The portal could not import this file ({type(exc).__name__}).")
    return runs


def _drop_folder_failed(folder: Path, processed: Path, reason: str) -> None:
    failed = folder / "failed" / processed.name
    failed.parent.mkdir(exist_ok=True)
    shutil.move(processed, failed)
    failed.with_name(failed.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
    logger.warning("drop folder: %s refused: %s", processed.name, reason)
