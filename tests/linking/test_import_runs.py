"""Import runs against the simulator with a real worker: the rows, the fewest calls, pause, cancel, a
dead worker, holds, Canvas's SIS import, and the report.

Runs are built here in the ``preview`` state, with the ids a check would have resolved (read from the
simulator when its users are made), so these tests do not depend on the check.
"""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from linking.audit.models import AuditEvent
from linking.imports.report import import_run_report_csv
from linking.models import ImportRow, ImportRun, ObservationLink, PairHold, Parent
from linking.services.import_runs import (
    ImportRunRefused,
    import_run_cancel,
    import_run_pause,
    import_run_progress,
    import_run_resume,
    import_run_start,
)
from linking.services.people import parent_register, student_upsert_from_canvas
from linking.tasks import import_runs_requeue
from tests.workers import wait_for

Row = ImportRow.State
Outcome = ImportRow.Outcome


# -- building runs --------------------------------------------------------------------------------
def preview_run(rows: list[dict], *, by=None, method: str = ImportRun.Method.API, state=ImportRun.State.PREVIEW):
    """A checked run, as the check leaves it: rows waiting, with what they should do and the Canvas ids."""
    run = ImportRun.objects.create(
        source=ImportRun.Source.UPLOAD,
        filename="families.csv",
        file_sha256="0" * 64,
        state=state,
        method=method,
        created_by=by,
    )
    ImportRow.objects.bulk_create(
        ImportRow(run=run, number=number, state=Row.PENDING, **row) for number, row in enumerate(rows, start=2)
    )
    return run


def family_row(student: dict, email: str, *, observer: dict | None = None, parent_sis_id: str = "", **extra) -> dict:
    row = {
        "student_key": f"sis_id:{student['sis_user_id']}",
        "canvas_student_id": student["id"],
        "parent_email": email,
        "parent_first_name": "Pat",
        "parent_last_name": "Parent",
        "parent_sis_id": parent_sis_id,
        "canvas_observer_id": observer["id"] if observer else None,
        "expected": Outcome.LINKED if observer else Outcome.NEW_PARENT_LINKED,
    }
    return {**row, **extra}


def make_students(family, count: int) -> list[dict]:
    def one(_):
        return family.sim.make_user(student=True, sis_user_id=family.sim.unique("S"), token=False)

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


def make_canvas_parents(family, emails: list[str]) -> dict[str, dict]:
    with ThreadPoolExecutor(16) as pool:
        users = pool.map(lambda email: family.sim.make_user(login=email, email=email, token=False), emails)
        return dict(zip(emails, users, strict=True))


def portal_parent(email: str) -> Parent:
    """A parent with a portal account (no password: these tests never sign in)."""
    user = get_user_model().objects.create_user(username=email, email=email)
    return parent_register(user=user, name="Portal Parent")


def counts(run: ImportRun, field: str = "outcome") -> dict:
    return {value: run.rows.filter(**{field: value}).count() for value in run.rows.values_list(field, flat=True)}


def wait_until_done(run: ImportRun, *, timeout: float = 60.0) -> ImportRun:
    wait_for(
        lambda: ImportRun.objects.get(pk=run.pk).state in (ImportRun.State.DONE, ImportRun.State.FAILED),
        timeout=timeout,
        message=f"import run {run.pk} to finish",
    )
    run.refresh_from_db()
    return run


def wait_until_settled(run: ImportRun) -> None:
    """No row is being worked (a pause or a cancel lets rows in flight finish)."""
    wait_for(lambda: not run.rows.filter(state=Row.CLAIMED).exists(), message="rows in flight to finish")


def new_user_id(family) -> int:
    """The id Canvas gives the next user: unchanged ids mean no account was created in between."""
    return family.sim.make_user(token=False)["id"]


@pytest.fixture
def staff(transactional_db):
    return get_user_model().objects.create_user(username="office", email="office@school.test")


# -- a thousand rows ------------------------------------------------------------------------------
def test_it_links_a_thousand_families_with_few_calls_and_a_rerun_makes_nothing_new(family, staff):
    students = make_students(family, 200)
    emails = [f"{family.sim.unique('p')}@example.test" for _ in range(1000)]
    in_canvas = make_canvas_parents(family, [e for i, e in enumerate(emails) if i % 10 == 0 or i % 50 == 1])
    for i, email in enumerate(emails):
        if i % 25 == 2:
            portal_parent(email)
    rows = [
        # i % 50 == 1: an account made in Canvas after the check looked (create → taken → look up → link)
        family_row(students[i % 200], email, observer=in_canvas[email] if i % 10 == 0 else None)
        for i, email in enumerate(emails)
    ]
    run = preview_run(rows, by=staff)
    family.sim.configure(latency_ms=50)

    started = time.monotonic()
    import_run_start(run=run, by=staff)
    wait_for(lambda: ImportRun.objects.get(pk=run.pk).state == ImportRun.State.RUNNING, message="the run to start")
    midway = wait_for(
        lambda: (p := import_run_progress(ImportRun.objects.get(pk=run.pk))).done >= 100 and p,
        timeout=60,
        message="a hundred rows",
    )
    run = wait_until_done(run, timeout=120)
    first_seconds = time.monotonic() - started

    assert midway.total == 1000 and midway.rate_per_minute and midway.seconds_left is not None
    assert counts(run, "state") == {Row.DONE: 1000}
    assert counts(run) == {Outcome.NEW_PARENT_LINKED: 880, Outcome.LINKED: 120}
    summary = run.summary
    assert summary["max_calls_new_parent"] <= 2
    assert summary["max_calls_linked"] <= 3
    assert run.rows.filter(canvas_calls=1, outcome=Outcome.LINKED).count() == 100
    assert run.rows.filter(canvas_calls=3).count() == 20
    assert summary["canvas_calls"] == 880 * 2 + 100 + 20 * 3
    assert AuditEvent.objects.filter(action__startswith="import_row.", subject__import_run=str(run.pk)).count() == 1000
    assert ObservationLink.objects.filter(method=ObservationLink.Method.SIS_IMPORT).count() == 40

    family.sim.configure(latency_ms=0)
    admin = family.admin()
    observers = {s["id"]: {o["id"] for o in admin.list_observers(s["id"])} for s in students}
    for row in run.rows.all():
        assert row.canvas_observer_id in observers[row.canvas_student_id], row

    # The same file again: the check finds every parent in Canvas now.
    before = new_user_id(family)
    again = preview_run(
        [
            {**r, "canvas_observer_id": done.canvas_observer_id, "expected": Outcome.LINKED}
            for r, done in zip(rows, run.rows.order_by("number"), strict=True)
        ],
        by=staff,
    )
    family.sim.configure(latency_ms=50)
    started = time.monotonic()
    import_run_start(run=again, by=staff)
    again = wait_until_done(again, timeout=90)
    rerun_seconds = time.monotonic() - started

    assert new_user_id(family) == before + 1, "the rerun created Canvas accounts"
    assert counts(again) == {Outcome.ALREADY_LINKED: 40, Outcome.LINKED: 960}
    assert again.summary["max_calls_already_linked"] == 0
    assert again.summary["max_calls_linked"] == 1
    assert ObservationLink.objects.filter(method=ObservationLink.Method.SIS_IMPORT).count() == 40
    print(
        f"\n1,000 rows: {first_seconds:.1f} s, {run.summary['calls_per_row']} calls/row; "
        f"rerun {rerun_seconds:.1f} s, {again.summary['calls_per_row']} calls/row"
    )


# -- pause, resume, cancel ------------------------------------------------------------------------
def slow_run(family, staff, count: int = 40) -> ImportRun:
    students = make_students(family, 4)
    run = preview_run(
        [family_row(students[i % 4], f"{family.sim.unique('p')}@example.test") for i in range(count)], by=staff
    )
    family.sim.configure(latency_ms=150)
    return run


def finished(run: ImportRun) -> int:
    return run.rows.exclude(state__in=ImportRow.OPEN_STATES).count()


def test_pause_stops_claiming_rows_and_resume_finishes_the_run(family, staff):
    run = slow_run(family, staff)
    import_run_start(run=run, by=staff)
    wait_for(lambda: finished(run) >= 4, message="a few rows")

    import_run_pause(run=run, by=staff)
    wait_until_settled(run)
    stopped_at = finished(run)
    time.sleep(1.5)

    assert finished(run) == stopped_at < 40
    assert ImportRun.objects.get(pk=run.pk).state == ImportRun.State.PAUSED
    assert run.rows.filter(state=Row.PENDING).count() == 40 - stopped_at

    import_run_resume(run=run, by=staff)
    run = wait_until_done(run)
    assert counts(run) == {Outcome.NEW_PARENT_LINKED: 40}
    assert run.rows.filter(canvas_calls=2).count() == 40


def test_cancel_skips_the_rows_not_yet_linked(family, staff):
    run = slow_run(family, staff)
    import_run_start(run=run, by=staff)
    wait_for(lambda: finished(run) >= 4, message="a few rows")

    import_run_cancel(run=run, by=staff)
    wait_until_settled(run)

    run.refresh_from_db()
    assert run.state == ImportRun.State.CANCELLED
    linked, skipped = run.rows.filter(state=Row.DONE), run.rows.filter(state=Row.SKIPPED)
    assert linked.count() + skipped.count() == 40 and skipped.count() > 0
    assert set(skipped.values_list("error", flat=True)) == {"Cancelled"}
    wait_for(
        lambda: ImportRun.objects.get(pk=run.pk).summary["states"] == counts(run, "state"),
        message="the summary to count the rows that finished after the cancel",
    )
    family.sim.configure(latency_ms=0)
    admin = family.admin()
    for row in skipped[:5]:
        assert admin.find_user_by_login(row.parent_email) is None
    with pytest.raises(ImportRunRefused):
        import_run_resume(run=run, by=staff)


def test_a_dry_run_cannot_be_started(family, staff):
    run = preview_run([], by=staff)
    ImportRun.objects.filter(pk=run.pk).update(dry_run=True)
    run.refresh_from_db()
    with pytest.raises(ImportRunRefused):
        import_run_start(run=run, by=staff)


# -- a worker killed mid-run ----------------------------------------------------------------------
def test_a_run_whose_worker_died_is_finished_without_a_second_account(family, staff):
    students = make_students(family, 3)
    emails = [f"{family.sim.unique('p')}@example.test" for _ in range(12)]
    run = preview_run([family_row(students[i % 3], email) for i, email in enumerate(emails)], by=staff)
    long_ago = timezone.now() - timedelta(hours=1)
    ImportRun.objects.filter(pk=run.pk).update(
        state=ImportRun.State.RUNNING, started_at=long_ago, claimed_at=long_ago, claimed_by="dead-run-task"
    )
    # The dead worker had claimed the first batch and created four parents' accounts before it died;
    # the message for the rest of the run was lost with it.
    dead_batch = run.rows.order_by("number")[:6]
    ImportRow.objects.filter(pk__in=[r.pk for r in dead_batch]).update(
        state=Row.CLAIMED, claimed_by="dead-task", claimed_at=long_ago, attempts=1
    )
    admin = family.admin()
    for row in dead_batch[:4]:
        admin.create_observer(name="Pat Parent", email=row.parent_email)

    assert import_runs_requeue()["import_batches"] >= 1
    run = wait_until_done(run)

    assert counts(run, "state") == {Row.DONE: 12}
    assert counts(run) == {Outcome.NEW_PARENT_LINKED: 12}
    for row in run.rows.all():
        accounts = [u for u in admin.search_users(row.parent_email) if u.get("login_id") == row.parent_email]
        assert len(accounts) == 1, row.parent_email
        assert admin.show_observee(accounts[0]["id"], row.canvas_student_id) is not None
    # A second attempt looks the parent up before creating: found (4 rows) → link, 2 calls; not found
    # (2 rows) → create, link, 3 calls. Rows the dead worker never claimed: create, link.
    assert sorted(run.rows.values_list("canvas_calls", flat=True)) == [2] * 10 + [3] * 2


def test_the_requeue_leaves_a_run_that_is_moving_alone(family, staff):
    students = make_students(family, 1)
    run = preview_run([family_row(students[0], f"{family.sim.unique('p')}@example.test")], by=staff)
    ImportRun.objects.filter(pk=run.pk).update(state=ImportRun.State.RUNNING, started_at=timezone.now())
    assert import_runs_requeue() == {"import_runs": 0, "import_batches": 0}


# -- holds ----------------------------------------------------------------------------------------
def test_a_hold_placed_after_the_check_is_honoured(family, staff):
    students = make_students(family, 2)
    held_email, other_email = (f"{family.sim.unique('p')}@example.test" for _ in range(2))
    run = preview_run([family_row(students[0], held_email), family_row(students[1], other_email)], by=staff)
    held_student = student_upsert_from_canvas(canvas_user_id=students[0]["id"], name="Held Student")
    PairHold.objects.create(student=held_student, parent_email=held_email.upper(), reason="Court order on file")

    import_run_start(run=run, by=staff)
    run = wait_until_done(run)

    held = run.rows.get(parent_email=held_email)
    assert (held.state, held.outcome, held.canvas_calls) == (Row.SKIPPED, Outcome.HELD_PAIR, 0)
    assert run.rows.get(parent_email=other_email).outcome == Outcome.NEW_PARENT_LINKED
    admin = family.admin()
    assert admin.find_user_by_login(held_email) is None
    assert admin.list_observers(students[0]["id"]) == []
    assert AuditEvent.objects.filter(action="import_row.held_pair", outcome="held_pair").count() == 1


# -- Canvas's SIS import --------------------------------------------------------------------------
def test_a_sis_import_links_every_family_and_maps_canvas_errors_to_their_rows(family, staff):
    students = make_students(family, 5)
    rows = [
        family_row(student, f"{family.sim.unique('p')}@example.test", parent_sis_id=family.sim.unique("P"))
        for student in students
    ]
    # This parent's login already belongs to a Canvas user with no SIS id: Canvas refuses the row.
    taken = make_canvas_parents(family, [rows[2]["parent_email"]])
    run = preview_run(rows, by=staff)

    import_run_start(run=run, by=staff, method=ImportRun.Method.SIS_IMPORT)
    run = wait_until_done(run)

    assert run.method == ImportRun.Method.SIS_IMPORT
    refused = run.rows.get(number=4)
    assert (refused.state, refused.outcome) == (Row.FAILED, Outcome.ERROR)
    assert "already exists" in refused.error
    assert counts(run) == {Outcome.NEW_PARENT_LINKED: 4, Outcome.ERROR: 1}
    admin = family.admin()
    for row in run.rows.filter(state=Row.DONE):
        assert admin.show_observee(f"sis_user_id:{row.parent_sis_id}", row.canvas_student_id) is not None
    assert admin.list_observers(students[2]["id"]) == []
    assert taken[rows[2]["parent_email"]]["id"]
    assert 2 <= run.summary["canvas_calls"] <= 30  # one upload, then polls
    assert run.summary["outcomes"] == {Outcome.NEW_PARENT_LINKED: 4, Outcome.ERROR: 1}


def test_a_sis_import_needs_every_parent_sis_id(family, staff):
    students = make_students(family, 1)
    run = preview_run([family_row(students[0], "no.sis@example.test")], by=staff)
    with pytest.raises(ImportRunRefused):
        import_run_start(run=run, by=staff, method=ImportRun.Method.SIS_IMPORT)


# -- the report and the progress ------------------------------------------------------------------
@pytest.mark.django_db
def test_the_report_has_one_line_per_row_and_no_formulas():
    run = preview_run(
        [
            {"student_key": '=HYPERLINK("http://x")', "parent_email": "a@example.test", "canvas_student_id": 7},
            {"student_key": "sis_id:S2", "parent_email": "+b@example.test", "canvas_student_id": 8},
        ]
    )
    ImportRow.objects.filter(run=run, number=2).update(
        state=Row.DONE, outcome=Outcome.LINKED, canvas_calls=1, canvas_observer_id=70
    )
    lines = list(csv.reader(io.StringIO("".join(import_run_report_csv(run)))))
    assert lines[0][:3] == ["line", "student_key", "parent_email"]
    assert len(lines) == 3
    assert lines[1] == ["2", '\'=HYPERLINK("http://x")', "a@example.test", "done", "linked", "", "1", "7", "70"]
    assert lines[2][2] == "'+b@example.test"


@pytest.mark.django_db
def test_progress_counts_rows_finished_and_the_recent_rate():
    run = preview_run([{"parent_email": f"p{i}@example.test", "canvas_student_id": i} for i in range(10)])
    now = timezone.now()
    ImportRun.objects.filter(pk=run.pk).update(state=ImportRun.State.RUNNING, started_at=now - timedelta(minutes=2))
    run.refresh_from_db()
    done = run.rows.order_by("number")[:4]
    ImportRow.objects.filter(pk__in=[r.pk for r in done]).update(state=Row.DONE, canvas_calls=2, finished_at=now)
    ImportRow.objects.filter(run=run, number=11).update(state=Row.INVALID)

    progress = import_run_progress(run)

    assert (progress.done, progress.total) == (4, 9)
    assert 1.9 <= progress.rate_per_minute <= 2.1
    assert 140 <= progress.seconds_left <= 160
    assert progress.calls_per_row == 2.0
