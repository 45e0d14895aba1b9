"""Family import files: reading them, saving them as runs, and the worker's check before the preview.

The check runs on the real worker against the simulator (its demo school has students S1001..S1030).
"""

from __future__ import annotations

import time

import pytest

from linking.audit.models import AuditEvent
from linking.imports.parsing import MAX_ROWS, ImportFileError, families_csv_parse
from linking.models import ImportRow, ImportRun, ObservationLink, PairHold
from linking.services.imports import import_run_create
from linking.services.people import student_upsert_from_canvas
from tests.workers import wait_for

HEADER = "student_sis_id,parent_email,parent_first_name,parent_last_name,language\n"


def csv_bytes(*lines: str, header: str = HEADER) -> bytes:
    return (header + "".join(f"{line}\n" for line in lines)).encode()


# -- reading the file -----------------------------------------------------------------------------
def test_it_reads_a_file_with_a_bom_and_aliased_headers():
    content = "\ufeffSIS ID,Email,First Name,Last Name,Lang\r\nS1001,Ana@Example.org,Ana,Ruiz,ES\r\n".encode()
    parsed = families_csv_parse(content)
    [row] = parsed.rows
    assert (row.number, row.student_key, row.parent_email, row.language) == (2, "sis_id:S1001", "ana@example.org", "es")
    assert (row.parent_first_name, row.parent_last_name, row.errors) == ("Ana", "Ruiz", [])


def test_it_accepts_a_single_student_column_holding_a_login_or_an_email():
    parsed = families_csv_parse(
        csv_bytes(
            "s1001,a@example.org,A,B",
            "kid@school.test,a@example.org,A,B",
            header="Student,Email,Parent First Name,Parent Last Name\n",
        )
    )
    assert [row.student_key for row in parsed.rows] == ["any:s1001", "email:kid@school.test"]


def test_it_refuses_a_file_without_a_required_column_and_lists_the_columns_found():
    with pytest.raises(ImportFileError) as refusal:
        families_csv_parse(b"student_sis_id,parent_email,parent_first_name\nS1001,a@example.org,A\n")
    assert str(refusal.value) == (
        "The file has no parent_last_name column. Columns found: student_sis_id, parent_email, parent_first_name."
    )


def test_it_refuses_a_file_without_a_student_column():
    with pytest.raises(ImportFileError, match="no student column"):
        families_csv_parse(b"parent_email,parent_first_name,parent_last_name\na@example.org,A,B\n")


def test_it_refuses_a_file_that_is_not_utf8_in_plain_words():
    with pytest.raises(ImportFileError, match=r"not UTF-8 text \(line 2"):
        families_csv_parse(HEADER.encode() + "S1001,a@example.org,José,B\n".encode("latin-1"))


def test_it_refuses_a_file_over_the_row_limit():
    lines = [f"S{n},p{n}@example.org,A,B" for n in range(MAX_ROWS + 1)]
    with pytest.raises(ImportFileError, match="more than 20,000 rows"):
        families_csv_parse(csv_bytes(*lines))


def test_it_refuses_a_file_over_the_size_limit():
    with pytest.raises(ImportFileError, match="larger than 5 MB"):
        families_csv_parse(HEADER.encode() + b"x" * (5 * 1024 * 1024))


def test_it_ignores_blank_lines_and_numbers_rows_by_their_line_in_the_file():
    parsed = families_csv_parse(csv_bytes("", "S1001,a@example.org,A,B", " , , ,", "S1002,b@example.org,C,D"))
    assert [row.number for row in parsed.rows] == [3, 5]


def test_it_says_what_is_wrong_with_each_row_in_plain_words():
    parsed = families_csv_parse(
        csv_bytes(
            ",a@example.org,A,B",
            "S1001,not-an-email,A,B",
            "S1002,,A,B",
            "S1003,c@example.org,,",
            "S1004,d@example.org,A,B,fr",
            "S1005,e@example.org,A,B,en",
            "s1005,E@example.org,A,B",
        )
    )
    assert [row.error for row in parsed.rows] == [
        "No student SIS id, login or email",
        "“not-an-email” is not an email address",
        "No parent email",
        "No parent first name; No parent last name",
        "language must be en or es",
        "",
        "Same family as line 7",
    ]


# -- saving the run -------------------------------------------------------------------------------
def test_it_saves_the_run_and_every_row_before_any_work_and_audits_it(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        run = import_run_create(
            content=csv_bytes("S1001,a@example.org,A,B", "S1002,bad,A,B"),
            filename="night.csv",
            source="command",
            by=None,
        )
    assert run.state == ImportRun.State.CHECKING and len(callbacks) == 1  # the check, queued on commit
    assert list(run.rows.values_list("number", "state")) == [(2, "pending"), (3, "invalid")]
    event = AuditEvent.objects.get(action="import_run.created")
    assert event.subject == {"import_run": str(run.pk)}
    assert event.data["rows"] == 2 and event.data["invalid"] == 1
    assert event.personal["filename"] == "night.csv"


def test_a_refused_file_saves_nothing(db):
    with pytest.raises(ImportFileError):
        import_run_create(content=b"name\nx\n", filename="x.csv", source="upload", by=None)
    assert not ImportRun.objects.exists()


# -- the check, on the worker ---------------------------------------------------------------------
def checked(run: ImportRun) -> ImportRun:
    wait_for(
        lambda: ImportRun.objects.filter(pk=run.pk).exclude(state=ImportRun.State.CHECKING).exists(),
        message="the import check",
    )
    run.refresh_from_db()
    return run


def portal_student(family, sis_id: str):
    canvas_user = family.admin().find_user_by_sis_id(sis_id)
    return student_upsert_from_canvas(canvas_user_id=canvas_user["id"], name=canvas_user["name"], sis_user_id=sis_id)


def test_it_counts_a_mixed_file_exactly(family):
    new_parent = f"{family.sim.unique('new')}@example.test"
    canvas_parent = f"{family.sim.unique('canvas')}@example.test"
    family.sim.make_user(login=canvas_parent, email=canvas_parent)
    linked = family.parent()
    s1003 = portal_student(family, "S1003")
    ObservationLink.objects.create(
        parent=linked, student=s1003, root_account_id=1, method=ObservationLink.Method.PAIRING_CODE
    )
    held_email = f"{family.sim.unique('held')}@example.test"
    PairHold.objects.create(student=portal_student(family, "S1004"), parent_email=held_email, reason="court order")

    run = import_run_create(
        content=csv_bytes(
            f"S1001,{new_parent},New,Parent",  # 2: a new parent account, linked
            f"S1002,{canvas_parent},Has,Canvas",  # 3: a parent Canvas knows, linked
            f"S1003,{linked.email},Al,Ready",  # 4: already linked in the portal
            f"S9999,{new_parent},New,Parent",  # 5: no such student
            f"S1004,{held_email},Held,Apart",  # 6: held apart
            "S1005,not-an-email,Bad,Email",  # 7: not valid on its face
            f"S1001,{new_parent},New,Parent",  # 8: line 2 again
            f"S1005,{new_parent},New,Parent",  # 9: the same new parent, a second child
        ),
        filename="mixed.csv",
        source="upload",
        by=None,
    )
    run = checked(run)

    assert run.state == ImportRun.State.PREVIEW
    assert run.preview == {
        "rows": 8,
        "new_parent_accounts": 1,
        "new_links": 3,
        "already_linked": 1,
        "skipped": 1,
        "errors": 3,
        # S1001 + the new parent, S1002 + the Canvas parent, S9999, S1005 (its parent known by then)
        "check_calls": 6,
        "seen_before": None,
    }
    rows = {row.number: row for row in run.rows.all()}
    assert rows[2].expected == "new_parent_linked" and rows[2].canvas_observer_id is None
    assert rows[3].expected == "linked" and rows[3].canvas_observer_id is not None
    assert rows[4].expected == "already_linked" and rows[4].canvas_student_id == s1003.canvas_user_id
    assert (rows[5].state, rows[5].error) == ("invalid", "No student with SIS id S9999 in Canvas")
    assert (rows[6].state, rows[6].expected, rows[6].error) == (
        "skipped",
        "held_pair",
        "The school holds this parent and student apart",
    )
    assert rows[8].error == "Same family as line 2"
    assert AuditEvent.objects.get(action="import_run.checked").data["new_links"] == 3


def test_it_makes_no_canvas_calls_for_people_the_portal_knows(family):
    parent = family.parent(in_canvas=True)
    parent.canvas_user_id = parent.canvas["id"]
    parent.save(update_fields=["canvas_user_id"])
    portal_student(family, "S1006")
    run = checked(
        import_run_create(
            content=csv_bytes(f"S1006,{parent.email},Pat,Parent"), filename="k.csv", source="upload", by=None
        )
    )
    assert run.preview["check_calls"] == 0
    assert run.rows.get().expected == "linked"


def test_it_makes_one_call_each_for_a_student_and_a_parent_it_does_not_know(family):
    email = f"{family.sim.unique('p')}@example.test"
    family.sim.make_user(login=email, email=email)
    run = checked(
        import_run_create(content=csv_bytes(f"S1007,{email},A,B"), filename="u.csv", source="upload", by=None)
    )
    assert run.preview["check_calls"] == 2
    assert run.rows.get().canvas_student_id == family.admin().find_user_by_sis_id("S1007")["id"]


def test_a_dry_run_makes_no_canvas_writes_and_cannot_be_started(family):
    email = f"{family.sim.unique('dry')}@example.test"
    run = checked(
        import_run_create(
            content=csv_bytes(f"S1008,{email},Dee,Ry"), filename="d.csv", source="upload", by=None, dry_run=True
        )
    )
    assert (run.state, run.dry_run, run.preview["new_parent_accounts"]) == ("preview", True, 1)
    assert family.admin().find_user_by_login(email) is None


def test_the_same_file_again_says_when_it_was_imported_before(family):
    content = csv_bytes(f"S1009,{family.sim.unique('again')}@example.test,A,B")
    first = checked(import_run_create(content=content, filename="a.csv", source="upload", by=None))
    ImportRun.objects.filter(pk=first.pk).update(state=ImportRun.State.DONE, finished_at=first.created_at)
    second = checked(import_run_create(content=content, filename="a.csv", source="upload", by=None))
    assert second.preview["seen_before"] == first.created_at.isoformat()


def test_an_unattended_check_retries_through_a_canvas_outage(family):
    family.sim.configure(error_rate=1.0)
    email = f"{family.sim.unique('out')}@example.test"
    run = import_run_create(content=csv_bytes(f"S1010,{email},A,B"), filename="o.csv", source="upload", by=None)
    time.sleep(1.5)  # the first attempts fail and are retried later
    assert ImportRun.objects.get(pk=run.pk).state == ImportRun.State.CHECKING
    family.sim.configure(error_rate=0.0)
    run = checked(run)
    assert run.state == ImportRun.State.PREVIEW
    assert run.rows.get().expected == ImportRow.Outcome.NEW_PARENT_LINKED


# -- a long file: the account's user list instead of a call per person ------------------------------
def long_file(family, count: int, *, in_canvas_every: int = 2) -> tuple[bytes, list[dict], list[str]]:
    """``count`` new students in Canvas, each with a parent; every ``in_canvas_every``-th parent Canvas has."""
    students, emails, lines = [], [], []
    for number in range(count):
        tag = family.sim.unique("dir")
        students.append(family.sim.make_user(name=f"Dir Student {tag}", sis_user_id=f"SIS-{tag}", student=True))
        email = f"{tag}.parent@example.test"
        if number % in_canvas_every == 0:
            family.sim.make_user(login=email, email=email)
        emails.append(email)
        lines.append(f"SIS-{tag},{email},Pat,Dir{number}")
    return csv_bytes(*lines, "SIS-nobody-has-this,lost.parent@example.test,No,Student"), students, emails


def test_a_long_file_finds_its_people_in_one_read_of_the_account_not_a_call_each(family):
    content, students, emails = long_file(family, 60)
    accounts = len(family.sim.users())

    run = checked(import_run_create(content=content, filename="long.csv", source="upload", by=None))

    pages = -(-accounts // 100)
    # The list's pages, and one lookup for the student it lacks (a parent it lacks is new); not 122 calls.
    assert run.preview["check_calls"] == pages + 1
    assert (run.preview["new_links"], run.preview["new_parent_accounts"], run.preview["errors"]) == (60, 30, 1)
    rows = {row.parent_email: row for row in run.rows.all()}
    admin = family.admin()
    for number, (student, email) in enumerate(zip(students, emails, strict=True)):
        assert rows[email].canvas_student_id == student["id"]
        in_canvas = admin.find_user_by_login(email) if number % 2 == 0 else None
        assert rows[email].canvas_observer_id == (in_canvas["id"] if in_canvas else None)
        assert rows[email].expected == ("linked" if in_canvas else "new_parent_linked")
    assert rows["lost.parent@example.test"].error == "No student with SIS id SIS-nobody-has-this in Canvas"


def test_when_the_account_is_too_large_to_list_it_looks_up_what_the_list_did_not_reach(
    db, canvas_settings, monkeypatch
):
    from linking.canvas import admin_client
    from linking.services import imports

    monkeypatch.setattr(imports, "DIRECTORY_BUDGET", 0.001)  # one page of the account's users, no more
    admin = admin_client()
    # The first 30 sort before anyone else in the account ("Aaaa, ..."), so the one page read reaches them.
    students = [
        canvas_settings.make_user(
            name=f"{canvas_settings.unique('big')} Aaaa" if number < 30 else None,
            sis_user_id=f"SIS-{canvas_settings.unique('big')}",
            student=True,
        )
        for number in range(55)
    ]
    emails = [f"{canvas_settings.unique('bigp')}@example.test" for _ in students]
    in_canvas = [canvas_settings.make_user(login=email, email=email) for email in emails[:20]]
    run = import_run_create(
        content=csv_bytes(*(f"{s['sis_user_id']},{e},Pat,Big" for s, e in zip(students, emails, strict=True))),
        filename="big.csv",
        source="upload",
        by=None,
    )
    first_page, complete = admin.list_account_users(max_pages=1)
    assert not complete
    on_first_page = {user["id"] for user in first_page}

    assert imports.import_run_check(run=run, canvas=admin) is True

    run.refresh_from_db()
    reached = sum(user["id"] in on_first_page for user in students + in_canvas)
    # One page, then a lookup for every student and parent it did not reach (the list was not read to the
    # end, so a parent it lacks may still be in Canvas).
    assert 30 <= reached < len(students) + len(in_canvas)
    assert run.preview["check_calls"] == 1 + len(students) + len(emails) - reached
    assert (run.preview["new_links"], run.preview["new_parent_accounts"]) == (55, 35)
    for student, row in zip(students, run.rows.order_by("number"), strict=True):
        assert row.canvas_student_id == student["id"]
