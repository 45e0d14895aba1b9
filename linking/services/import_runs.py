"""Import runs: starting, pausing, resuming and cancelling a checked run, and the worker's part, row by row.

Web side: ``import_run_start`` / ``_pause`` / ``_resume`` / ``_cancel`` move the run between states with a
conditional update, write the audit event in the same transaction and queue the run task on commit;
``import_run_progress`` reads the progress bar's numbers with one aggregate query.

Worker side: the run task fans the pending rows out in batches (``import_run_fan_out``); a batch task
claims its rows (``import_rows_claim``) and works them a few at a time (``import_rows_work``), each with
``import_row_process``; the last batch marks the run done with its summary (``import_run_finish_if_done``).
A run with ``method == sis_import`` goes to Canvas as one SIS import instead (``import_run_sis_process``).

The fewest Canvas calls per row, from the ids the check resolved:

* a held pair (re-checked now): skipped, no call;
* a pair the portal linked already (an active ObservationLink): no call;
* a parent whose Canvas id is known: the admin ``PUT`` link (1 call, idempotent, so safe to repeat);
* a new parent: create the account (Canvas emails them to set a password), then ``PUT`` (2 calls);
  the login taken meanwhile: look it up by login, then ``PUT`` (3 calls).

Creating an account is the one call that must not be repeated: the new Canvas id is saved on the row
before the link, and a row on its second attempt looks the parent up by login before creating.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
import time
import zipfile
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from linking.audit.services import audit_event_record
from linking.canvas import (
    CanvasClient,
    CanvasError,
    CanvasLoginTaken,
    CanvasThrottled,
    CanvasTransient,
    admin_client,
    record_canvas_calls,
)
from linking.models import ImportRow, ImportRun, ObservationLink, Parent, Student
from linking.services.holds import pair_is_held
from linking.services.links import RetryLater
from linking.services.people import student_upsert_from_canvas

logger = logging.getLogger(__name__)

BATCH_SIZE = 25
# Rows of one batch worked at once; the client's limiter keeps the Canvas calls of every batch of
# every worker under Canvas's throttle (CANVAS_MAX_IN_FLIGHT per token).
ROW_THREADS = 4
# A row that keeps failing for an unexpected reason (not Canvas being away) gives up after this many.
MAX_ROW_ATTEMPTS = 5
RATE_WINDOW = timedelta(minutes=5)
SIS_POLL_SECONDS = 480

Row = ImportRow.State
Outcome = ImportRow.Outcome
FINISHED = (Row.DONE, Row.SKIPPED, Row.FAILED)
LINKED_OUTCOMES = (Outcome.NEW_PARENT_LINKED, Outcome.LINKED, Outcome.ALREADY_LINKED)
STARTABLE_METHODS = tuple(ImportRun.Method.values)
SIS_KEY = "sis_id:"
SIS_DONE = {"imported", "imported_with_messages", "failed", "failed_with_messages"}


class ImportRunRefused(Exception):
    """The run cannot do that now (already started, a dry run, finished); ``str`` says why."""


# -- web side -------------------------------------------------------------------------------------
def sis_import_possible(run: ImportRun) -> bool:
    """Canvas's SIS import links by SIS ids: every row still to link needs its parent's and its
    student's (the file names the student by ``student_sis_id``)."""
    to_link = run.rows.filter(state__in=ImportRow.OPEN_STATES).exclude(expected=Outcome.ALREADY_LINKED)
    return to_link.exists() and not to_link.filter(Q(parent_sis_id="") | ~Q(student_key__startswith=SIS_KEY)).exists()


@transaction.atomic
def import_run_start(*, run: ImportRun, by: AbstractBaseUser | None, method: str | None = None) -> ImportRun:
    """Start a checked run (preview → queued) and queue it; ``method`` picks the API or a SIS import."""
    from linking.tasks import import_run_process

    method = method or run.method
    if run.dry_run:
        raise ImportRunRefused(_("This was a dry run: it only checks the file. Upload the file again to import it."))
    if method not in STARTABLE_METHODS:
        raise ImportRunRefused(_("Unknown import method."))
    if method == ImportRun.Method.SIS_IMPORT and not sis_import_possible(run):
        raise ImportRunRefused(_("A Canvas SIS import needs a parent SIS id on every row."))
    if not _move(run, (ImportRun.State.PREVIEW,), ImportRun.State.QUEUED, method=method):
        raise ImportRunRefused(_("This import has already been started."))
    _audit_run(run, "started", by, data={"method": method})
    import_run_process.delay_on_commit(str(run.pk))
    return run


@transaction.atomic
def import_run_pause(*, run: ImportRun, by: AbstractBaseUser | None) -> ImportRun:
    """Stop claiming rows (queued/running → paused); rows already being worked finish."""
    if not _move(run, ImportRun.ACTIVE_STATES, ImportRun.State.PAUSED):
        raise ImportRunRefused(_("Only a queued or running import can be paused."))
    _audit_run(run, "paused", by)
    return run


@transaction.atomic
def import_run_resume(*, run: ImportRun, by: AbstractBaseUser | None) -> ImportRun:
    """Carry on where a paused run stopped (paused → queued) and queue it."""
    from linking.tasks import import_run_process

    if not _move(run, (ImportRun.State.PAUSED,), ImportRun.State.QUEUED):
        raise ImportRunRefused(_("Only a paused import can be resumed."))
    _audit_run(run, "resumed", by)
    import_run_process.delay_on_commit(str(run.pk))
    return run


@transaction.atomic
def import_run_cancel(*, run: ImportRun, by: AbstractBaseUser | None) -> ImportRun:
    """Stop the run for good: rows still waiting are skipped ("Cancelled"); rows being worked finish."""
    states = (ImportRun.State.PREVIEW, ImportRun.State.PAUSED, *ImportRun.ACTIVE_STATES)
    now = timezone.now()
    if not _move(run, states, ImportRun.State.CANCELLED, finished_at=now):
        raise ImportRunRefused(_("This import has already finished."))
    skipped = run.rows.filter(state=Row.PENDING).update(state=Row.SKIPPED, error=_("Cancelled"), finished_at=now)
    run.summary = import_run_summary(run)
    run.save(update_fields=["summary", "updated_at"])
    _audit_run(run, "cancelled", by, data={"rows_skipped": skipped})
    return run


@transaction.atomic
def import_run_report_record(*, run: ImportRun, by: AbstractBaseUser) -> None:
    """Note that staff downloaded the report: it holds parents' emails."""
    _audit_run(run, "report_downloaded", by)


def _move(run: ImportRun, from_states, to_state: str, **fields) -> bool:
    changed = ImportRun.objects.filter(pk=run.pk, state__in=from_states).update(
        state=to_state, updated_at=timezone.now(), **fields
    )
    if changed:
        run.refresh_from_db()
    return bool(changed)


def _audit_run(run: ImportRun, what: str, by, *, data=None, calls=(), outcome: str = "ok") -> None:
    audit_event_record(
        action=f"import_run.{what}",
        actor=by,
        actor_label="staff" if by is not None else "system",
        subject={"import_run": str(run.pk)},
        canvas_calls=calls,
        outcome=outcome,
        data=data or {},
    )


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    rate_per_minute: float | None
    seconds_left: int | None
    calls_per_row: float | None

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100

    @property
    def minutes_left(self) -> int | None:
        return None if self.seconds_left is None else -(-self.seconds_left // 60)


def import_run_progress(run: ImportRun) -> Progress:
    """Rows finished of rows to do (invalid rows excluded), the recent rate and the time left: one query.

    The rate counts rows finished in the last five minutes, so a pause shows as a rate of zero rather
    than dragging a whole-run average down.
    """
    now = timezone.now()
    since = max(now - RATE_WINDOW, run.started_at or now)
    numbers = run.rows.exclude(state=Row.INVALID).aggregate(
        total=Count("pk"),
        done=Count("pk", filter=Q(state__in=FINISHED)),
        recent=Count("pk", filter=Q(state__in=FINISHED, finished_at__gte=since)),
        calls=Coalesce(Sum("canvas_calls"), 0),
    )
    done, total = numbers["done"], numbers["total"]
    window = (now - since).total_seconds()
    rate = numbers["recent"] * 60 / window if window >= 1 and run.state == ImportRun.State.RUNNING else None
    left = round((total - done) * 60 / rate) if rate else None
    calls = numbers["calls"] + run.summary.get("run_canvas_calls", 0)
    return Progress(
        done=done,
        total=total,
        rate_per_minute=round(rate, 1) if rate is not None else None,
        seconds_left=left,
        calls_per_row=round(calls / done, 2) if done else None,
    )


def import_run_summary(run: ImportRun) -> dict:
    """Outcome counts and Canvas calls (in all, per row, and the most any row of each outcome took)."""
    rows = run.rows.all()
    numbers = rows.aggregate(
        rows=Count("pk"),
        finished=Count("pk", filter=Q(state__in=FINISHED)),
        row_calls=Coalesce(Sum("canvas_calls"), 0),
        max_calls_new_parent=Coalesce(Max("canvas_calls", filter=Q(outcome=Outcome.NEW_PARENT_LINKED)), 0),
        max_calls_linked=Coalesce(Max("canvas_calls", filter=Q(outcome=Outcome.LINKED)), 0),
        max_calls_already_linked=Coalesce(Max("canvas_calls", filter=Q(outcome=Outcome.ALREADY_LINKED)), 0),
    )
    numbers["canvas_calls"] = numbers.pop("row_calls") + run.summary.get("run_canvas_calls", 0)
    outcomes = dict(rows.exclude(outcome="").values_list("outcome").annotate(n=Count("pk")).order_by())
    states = dict(rows.values_list("state").annotate(n=Count("pk")).order_by())
    finished = numbers["finished"]
    return {
        **{key: value for key, value in run.summary.items() if key == "run_canvas_calls"},
        **numbers,
        "outcomes": outcomes,
        "states": states,
        # A string: audit data refuses floats, and the page only shows it.
        "calls_per_row": f"{numbers['canvas_calls'] / finished:.2f}" if finished else "",
    }


# -- worker side: the run -------------------------------------------------------------------------
def import_run_fan_out(*, run: ImportRun, stale_before=None, waiting: bool = True) -> int:
    """Queue batch tasks for the run's waiting rows and, with ``stale_before``, the rows a dead worker
    has held since before then; returns the number of batches."""
    from linking.tasks import import_rows_process

    wanted = Q(state=Row.PENDING) if waiting else Q(pk__in=[])
    if stale_before is not None:
        wanted |= Q(state=Row.CLAIMED, claimed_at__lte=stale_before)
    rows = run.rows.filter(wanted)
    ids = list(rows.order_by("number").values_list("pk", flat=True))
    batches = [ids[start : start + BATCH_SIZE] for start in range(0, len(ids), BATCH_SIZE)]
    for batch in batches:
        import_rows_process.delay(str(run.pk), batch)
    if not batches:
        import_run_finish_if_done(run_id=run.pk)
    return len(batches)


def import_run_finish_if_done(*, run_id) -> bool:
    """Mark a running run done once no row is waiting or being worked; refresh a cancelled run's summary."""
    if ImportRow.objects.filter(run_id=run_id, state__in=ImportRow.OPEN_STATES).exists():
        return False
    with transaction.atomic():
        run = ImportRun.objects.select_for_update(of=("self",)).select_related("created_by").filter(pk=run_id).first()
        if run is None or run.state not in (ImportRun.State.RUNNING, ImportRun.State.CANCELLED):
            return False
        summary = import_run_summary(run)
        if run.state == ImportRun.State.CANCELLED:
            ImportRun.objects.filter(pk=run.pk).update(summary=summary, updated_at=timezone.now())
            return False
        now = timezone.now()
        ImportRun.objects.filter(pk=run.pk).update(
            state=ImportRun.State.DONE, summary=summary, finished_at=now, claimed_at=None, updated_at=now
        )
        _audit_run(
            run,
            "done",
            None,
            data={key: value for key, value in summary.items() if key != "calls_per_row"},
        )
    return True


# -- worker side: rows ----------------------------------------------------------------------------
def import_rows_claim(*, run_id, row_ids: list[int], task_id: str) -> list[ImportRow]:
    """Claim the batch's rows that are waiting, or held by this task before (a redelivery or a retry) or
    by a worker that died; none while the run is not running."""
    from linking.tasks import STALE_CLAIM

    if not ImportRun.objects.filter(pk=run_id, state=ImportRun.State.RUNNING).exists():
        return []
    now = timezone.now()
    claimable = Q(state=Row.PENDING) | Q(
        Q(state=Row.CLAIMED) & (Q(claimed_by=task_id) | Q(claimed_at__lte=now - STALE_CLAIM))
    )
    ImportRow.objects.filter(run_id=run_id, pk__in=row_ids).filter(claimable).update(
        state=Row.CLAIMED, claimed_at=now, claimed_by=task_id, attempts=F("attempts") + 1
    )
    return list(
        ImportRow.objects.filter(run_id=run_id, pk__in=row_ids, state=Row.CLAIMED, claimed_by=task_id)
        .select_related("run__created_by")
        .order_by("number")
    )


def import_rows_work(*, rows: list[ImportRow], canvas: CanvasClient | None = None) -> list[int]:
    """Work claimed rows a few at a time; returns the rows handed back to wait (Canvas away, run paused).

    Before each row the run's state is read again, so a pause or a cancel stops the batch between rows.
    """
    canvas = canvas or admin_client()
    queue = list(rows)
    lock = threading.Lock()
    waiting: list[int] = []

    def next_row() -> ImportRow | None:
        with lock:
            return queue.pop(0) if queue else None

    def worker() -> None:
        try:
            while (row := next_row()) is not None:
                if not _import_row_work_one(row, canvas):
                    with lock:
                        waiting.append(row.pk)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(ROW_THREADS, len(rows)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return waiting


def _import_row_work_one(row: ImportRow, canvas: CanvasClient) -> bool:
    """True when the row finished; False when it was handed back to wait."""
    state = ImportRun.objects.filter(pk=row.run_id).values_list("state", flat=True).first()
    if state == ImportRun.State.CANCELLED:
        _row_finish(row, state=Row.SKIPPED, error=_("Cancelled"), calls=[])
        return True
    if state != ImportRun.State.RUNNING:
        _row_release(row, [])
        return False
    try:
        import_row_process(row=row, canvas=canvas)
    except RetryLater as exc:
        logger.info("import row %s: Canvas unavailable (%s); will retry", row.pk, exc)
        return False
    except Exception as exc:
        logger.exception("import row %s failed unexpectedly", row.pk)
        if row.attempts >= MAX_ROW_ATTEMPTS:
            _row_finish(row, state=Row.FAILED, outcome=Outcome.ERROR, error=f"Unexpected error: {exc}", calls=[])
            return True
        _row_release(row, [], uncertain=True)
        return False
    return True


def import_row_process(*, row: ImportRow, canvas: CanvasClient) -> None:
    """Link one claimed row's parent and student in Canvas with the fewest calls; record the outcome.

    Raises :class:`RetryLater` (after handing the row back to wait) for outages and throttling, so no
    row fails because Canvas asked us to slow down.
    """
    if row.canvas_student_id is None:
        _row_finish(row, state=Row.FAILED, outcome=Outcome.ERROR, error=_("The student was not found."), calls=[])
        return
    settled, parent = _settle_without_canvas(row)
    if settled:
        return
    with record_canvas_calls() as calls:
        try:
            outcome, canvas_student = _link_in_canvas(row, parent, canvas)
        except (CanvasTransient, CanvasThrottled) as exc:
            _row_release(row, calls)
            raise RetryLater(str(exc)) from exc
        except CanvasError as exc:
            error = "; ".join(exc.messages) or type(exc).__name__
            _row_finish(row, state=Row.FAILED, outcome=Outcome.ERROR, error=f"Canvas refused: {error}", calls=calls)
            return
        _row_finish(row, state=Row.DONE, outcome=outcome, calls=calls, parent=parent, canvas_student=canvas_student)


def _link_in_canvas(row: ImportRow, parent: Parent | None, canvas: CanvasClient) -> tuple[str, dict]:
    """The outcome, and the student as Canvas returned it from the link."""
    outcome = Outcome.LINKED
    observer_id = row.canvas_observer_id or (parent.canvas_user_id if parent else None)
    if observer_id is None and row.attempts > 1:
        # An earlier attempt may have created the account and died before saving its id.
        found = canvas.find_user_by_login(row.parent_email)
        observer_id = found["id"] if found else None
        if found and row.expected == Outcome.NEW_PARENT_LINKED:
            outcome = Outcome.NEW_PARENT_LINKED
    if observer_id is None:
        try:
            observer = canvas.create_observer(
                name=" ".join(filter(None, (row.parent_first_name, row.parent_last_name))) or row.parent_email,
                email=row.parent_email,
                force_self_registration=True,
                locale=row.language or None,
                sis_user_id=row.parent_sis_id or None,
            )
            outcome = Outcome.NEW_PARENT_LINKED
        except CanvasLoginTaken:
            # Made since the check looked (by the parent, or another import): use that account.
            observer = canvas.find_user_by_login(row.parent_email)
            if observer is None:
                raise
        observer_id = observer["id"]
    if row.canvas_observer_id != observer_id:
        # Saved on its own, before the link: the account must not be created twice after a crash.
        ImportRow.objects.filter(pk=row.pk).update(canvas_observer_id=observer_id)
        row.canvas_observer_id = observer_id
    return outcome, canvas.link(observer_id, row.canvas_student_id)


def _settle_without_canvas(row: ImportRow) -> tuple[bool, Parent | None]:
    """Finish a held pair (checked again now: a hold may be newer than the check) or a pair the portal
    already links, with no Canvas call; also returns the parent's portal account, if any."""
    parent = _portal_parent(row)
    student = Student.objects.filter(canvas_user_id=row.canvas_student_id).first()
    if student is not None and pair_is_held(student=student, parent_email=row.parent_email):
        _row_finish(row, state=Row.SKIPPED, outcome=Outcome.HELD_PAIR, error=_("Held apart by the school."), calls=[])
        return True, parent
    if parent is not None and student is not None and _portal_linked(parent, student):
        _row_finish(row, state=Row.DONE, outcome=Outcome.ALREADY_LINKED, calls=[], parent=parent)
        return True, parent
    return False, parent


def _portal_parent(row: ImportRow) -> Parent | None:
    parents = Parent.objects.select_related("user")
    if row.canvas_observer_id:
        parent = parents.filter(canvas_user_id=row.canvas_observer_id).first()
        if parent is not None:
            return parent
    return parents.filter(user__email__iexact=row.parent_email.strip()).order_by("pk").first()


def _portal_linked(parent: Parent, student: Student) -> bool:
    return ObservationLink.objects.filter(parent=parent, student=student, state=ObservationLink.State.ACTIVE).exists()


def _processed(calls: list[dict]) -> int:
    # A throttled request was refused before Canvas did anything: it is not a call the row cost.
    return sum(1 for call in calls if call.get("outcome") != "throttled")


def _row_release(row: ImportRow, calls: list[dict], *, uncertain: bool = False) -> None:
    """Hand a claimed row back to wait. ``attempts`` counts only attempts that may have created an
    account (a POST went out, or we cannot tell), so a row released by a pause is not looked up later."""
    posted = uncertain or any(call["method"] == "POST" for call in calls)
    ImportRow.objects.filter(pk=row.pk, state=Row.CLAIMED, claimed_by=row.claimed_by).update(
        state=Row.PENDING,
        claimed_at=None,
        claimed_by="",
        canvas_calls=F("canvas_calls") + _processed(calls),
        attempts=F("attempts") if posted else F("attempts") - 1,
    )


@transaction.atomic
def _row_finish(
    row: ImportRow,
    *,
    state: str,
    calls: list[dict],
    outcome: str = "",
    error: str = "",
    parent: Parent | None = None,
    canvas_student: dict | None = None,
) -> bool:
    """Record a row's end with its audit event; False when the claim was lost to another worker."""
    now = timezone.now()
    changed = ImportRow.objects.filter(pk=row.pk, state=Row.CLAIMED, claimed_by=row.claimed_by).update(
        state=state,
        outcome=outcome,
        error=error,
        canvas_calls=F("canvas_calls") + _processed(calls),
        canvas_observer_id=row.canvas_observer_id,
        claimed_at=None,
        finished_at=now,
    )
    if not changed:
        return False
    run = row.run
    student = None
    if parent is not None and canvas_student is not None:
        student = _record_portal_link(run, parent, canvas_student, row.canvas_observer_id)
    subject = {
        "import_run": str(run.pk),
        "import_row": row.number,
        "canvas_observer": row.canvas_observer_id,
        "canvas_student": row.canvas_student_id,
        "parent": parent.pk if parent else None,
        "student": student.pk if student else None,
    }
    audit_event_record(
        action=f"import_row.{outcome or state}",
        actor=run.created_by,
        actor_label="staff" if run.created_by_id else "system",
        subject={key: value for key, value in subject.items() if value is not None},
        canvas_calls=calls,
        outcome=outcome or state,
        data={"expected": row.expected, "method": run.method} if row.expected else {"method": run.method},
        personal={"parent_email": row.parent_email, "error": error} if error else {"parent_email": row.parent_email},
    )
    return True


def _record_portal_link(run: ImportRun, parent: Parent, canvas_student: dict, observer_id: int | None) -> Student:
    """The portal's own record of a link it made for a parent with a portal account."""
    student = student_upsert_from_canvas(canvas_user_id=canvas_student["id"], name=canvas_student.get("name") or "")
    for root_account_id in canvas_student.get("observation_link_root_account_ids") or []:
        ObservationLink.objects.get_or_create(
            parent=parent,
            student=student,
            root_account_id=root_account_id,
            state__in=ObservationLink.CURRENT_STATES,
            defaults={
                "method": ObservationLink.Method.SIS_IMPORT,
                "created_by": run.created_by,
                "state": ObservationLink.State.ACTIVE,
            },
        )
    if observer_id and parent.canvas_user_id is None and not Parent.objects.filter(canvas_user_id=observer_id).exists():
        Parent.objects.filter(pk=parent.pk, canvas_user_id__isnull=True).update(canvas_user_id=observer_id)
    return student


# -- worker side: Canvas SIS import ---------------------------------------------------------------
SIS_LINE = re.compile(r"Row (\d+):")


def import_run_sis_process(*, run: ImportRun, canvas: CanvasClient | None = None) -> None:
    """Link a claimed run's rows with one Canvas SIS import (``users.csv`` + ``user_observers.csv``).

    Held and already-linked rows are settled first without Canvas. The import's id is saved before
    polling, so a crash while Canvas works resumes the polling instead of submitting again (submitting
    again would do no harm: a SIS import updates users and restores links in place). Row errors come
    back by line and are mapped to their rows. Raises :class:`RetryLater` when Canvas is away.
    """
    canvas = canvas or admin_client()
    state = dict(run.summary.get("sis_import") or {})
    with record_canvas_calls() as calls:
        try:
            if "id" not in state:
                state = _sis_submit(run, canvas)
                _sis_save(run, state, calls)
            batch = _sis_poll(canvas, state["id"])
        except (CanvasTransient, CanvasThrottled) as exc:
            _sis_save(run, state, calls)
            raise RetryLater(str(exc)) from exc
        _sis_record(run, state, batch, calls)


def _sis_save(run: ImportRun, state: dict, calls: list[dict]) -> None:
    total = run.summary.get("run_canvas_calls", 0) + _processed(calls)
    run.summary = {**run.summary, "sis_import": state, "run_canvas_calls": total}
    calls.clear()
    ImportRun.objects.filter(pk=run.pk).update(summary=run.summary, updated_at=timezone.now())


def _sis_submit(run: ImportRun, canvas: CanvasClient) -> dict:
    rows = list(run.rows.filter(state__in=ImportRow.OPEN_STATES).select_related("run__created_by").order_by("number"))
    ImportRow.objects.filter(pk__in=[row.pk for row in rows]).update(
        state=Row.CLAIMED, claimed_at=timezone.now(), claimed_by=run.claimed_by, attempts=F("attempts") + 1
    )
    users, observers = io.StringIO(), io.StringIO()
    users_csv, observers_csv = csv.writer(users), csv.writer(observers)
    users_csv.writerow(["user_id", "login_id", "first_name", "last_name", "email", "status"])
    observers_csv.writerow(["observer_id", "student_id", "status"])
    user_lines: dict[str, int] = {}
    state = {"user_lines": {}, "observer_lines": {}}
    for row in rows:
        row.claimed_by = run.claimed_by
        if _settle_without_canvas(row)[0]:
            continue
        if row.parent_sis_id not in user_lines:
            names = [row.parent_first_name, row.parent_last_name]
            users_csv.writerow([row.parent_sis_id, row.parent_email, *names, row.parent_email, "active"])
            user_lines[row.parent_sis_id] = len(user_lines) + 2
        state["user_lines"].setdefault(str(user_lines[row.parent_sis_id]), []).append(row.pk)
        observers_csv.writerow([row.parent_sis_id, row.student_key.removeprefix(SIS_KEY), "active"])
        state["observer_lines"][str(len(state["observer_lines"]) + 2)] = row.pk
    if not state["observer_lines"]:
        return {**state, "id": None}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("users.csv", users.getvalue())
        zipped.writestr("user_observers.csv", observers.getvalue())
    batch = canvas.upload_sis_import(archive.getvalue())
    state["id"] = batch["id"]
    return state


def _sis_poll(canvas: CanvasClient, import_id: int | None) -> dict:
    if import_id is None:
        return {"workflow_state": "imported", "processing_errors": []}
    deadline, pause = time.monotonic() + SIS_POLL_SECONDS, 0.5
    while True:
        batch = canvas.get_sis_import(import_id)
        if batch.get("workflow_state") in SIS_DONE:
            return batch
        if time.monotonic() > deadline:
            raise CanvasTransient(may_have_happened=True, messages=["the SIS import is still running"])
        time.sleep(pause)
        pause = min(pause * 1.5, 5.0)


def _sis_record(run: ImportRun, state: dict, batch: dict, calls: list[dict]) -> None:
    errors: dict[int, list[str]] = {}
    whole_file: list[str] = []
    for entry in batch.get("processing_errors") or []:
        name, message = (list(entry) + ["", ""])[:2]
        line = SIS_LINE.match(message or "")
        lines = state["observer_lines"] if "observer" in name else state["user_lines"]
        targets = lines.get(line.group(1)) if line else None
        if targets is None:
            whole_file.append(f"{name}: {message}")
            continue
        for row_id in targets if isinstance(targets, list) else [targets]:
            errors.setdefault(row_id, []).append(message)
    failed_import = batch.get("workflow_state", "").startswith("failed")
    row_ids = list(state["observer_lines"].values())
    for row in ImportRow.objects.filter(pk__in=row_ids, state=Row.CLAIMED).select_related("run__created_by"):
        problems = errors.get(row.pk) or (whole_file if failed_import else [])
        if problems:
            _row_finish(row, state=Row.FAILED, outcome=Outcome.ERROR, error="; ".join(problems), calls=[])
        else:
            outcome = row.expected if row.expected == Outcome.NEW_PARENT_LINKED else Outcome.LINKED
            _row_finish(row, state=Row.DONE, outcome=outcome, calls=[])
    _sis_save(run, {**state, "workflow_state": batch.get("workflow_state", "")}, calls)
    import_run_finish_if_done(run_id=run.pk)
