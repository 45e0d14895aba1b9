"""The family import pages: upload, the preview while the worker checks, and the preview's counts.

The worker's check is run here in the test (``import_run_check``) on people the portal already knows,
so it needs no Canvas call; the check against Canvas is tests/linking/test_import_check.py.
"""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, reverse

from linking.models import ImportRun
from linking.services.imports import import_run_check
from linking.services.people import student_upsert_from_canvas
from tests.staff.conftest import parent_make

HEADER = "student_sis_id,parent_email,parent_first_name,parent_last_name\n"


def upload(persona, text: str, *, dry_run: bool = False, name: str = "families.csv"):
    data = {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv"), "method": "api"}
    if dry_run:
        data["dry_run"] = "on"
    return persona.client.post(reverse("staff_import_new"), data)


def known_family(number: int = 1):
    """A student (SIS id S7xxx) and a parent with a Canvas account, both known to the portal."""
    student = student_upsert_from_canvas(
        canvas_user_id=70000 + number, name=f"Kid {number}", sis_user_id=f"S7{number:03}"
    )
    parent = parent_make(f"known{number}@example.org", f"Known Parent {number}")
    parent.canvas_user_id = 80000 + number
    parent.save(update_fields=["canvas_user_id"])
    return student, parent


def test_it_shows_the_upload_form_and_recent_runs(staff, django_assert_max_num_queries):
    for n in range(3):
        upload(staff, HEADER + f"S7001,p{n}@example.org,A,B\n", name=f"run{n}.csv")
    with django_assert_max_num_queries(12):
        response = staff.client.get(reverse("staff_imports"))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'enctype="multipart/form-data"' in content and "Dry run only" in content
    assert all(f"run{n}.csv" in content for n in range(3))


def test_an_upload_is_saved_and_shows_the_check_in_progress(staff):
    response = upload(staff, HEADER + "S7001,a@example.org,A,B\nS7002,b@example.org,C,D\n")
    run = ImportRun.objects.get()
    assert response.status_code == 302 and response.url == reverse("staff_import_preview", args=[run.pk])
    assert (run.source, run.created_by, run.method) == ("upload", staff.user, "api")

    page = staff.client.get(response.url)
    assert "Checking 2 rows…" in page.content.decode()
    assert f'data-poll-url="{reverse("staff_import_status", args=[run.pk])}"' in page.content.decode()
    status = staff.client.get(reverse("staff_import_status", args=[run.pk]))
    assert status["X-Pending"] == "1"


def test_the_preview_shows_the_counts_and_the_rows_not_imported(staff):
    student, parent = known_family()
    upload(staff, HEADER + f"S7001,{parent.email},Known,Parent\nS7001,broken,A,B\n")
    run = ImportRun.objects.get()
    assert import_run_check(run=run) is True

    page = staff.client.get(reverse("staff_import_preview", args=[run.pk]))
    content = page.content.decode()
    assert page.status_code == 200
    assert "<dt>New links</dt><dd>1</dd>" in content
    assert "<dt>Errors</dt><dd>1</dd>" in content
    assert "<dt>New parent accounts in Canvas</dt><dd>0</dd>" in content
    assert "<td>3</td>" in content and "“broken” is not an email address" in content
    assert "data-poll-url" not in content
    try:
        start_url = reverse("staff_import_run_start", args=[run.pk])
    except NoReverseMatch:
        start_url = None
    if start_url:
        assert f'action="{start_url}"' in content
    assert staff.client.get(reverse("staff_import_status", args=[run.pk]))["X-Pending"] == "0"


def test_a_dry_run_has_no_start_button(staff):
    _student, parent = known_family()
    upload(staff, HEADER + f"S7001,{parent.email},Known,Parent\n", dry_run=True)
    run = ImportRun.objects.get()
    assert run.dry_run
    import_run_check(run=run)
    content = staff.client.get(reverse("staff_import_preview", args=[run.pk])).content.decode()
    assert "Start the import" not in content and "dry run" in content


def test_the_same_file_again_is_marked_as_seen_before(staff):
    _student, parent = known_family()
    text = HEADER + f"S7001,{parent.email},Known,Parent\n"
    upload(staff, text)
    first = ImportRun.objects.get()
    ImportRun.objects.filter(pk=first.pk).update(state=ImportRun.State.DONE, finished_at=first.created_at)
    upload(staff, text)
    second = ImportRun.objects.exclude(pk=first.pk).get()
    import_run_check(run=second)
    content = staff.client.get(reverse("staff_import_preview", args=[second.pk])).content.decode()
    assert "This file was imported before on" in content


def test_a_bad_file_is_refused_with_the_reason(staff):
    response = upload(staff, "student_sis_id,parent_email\nS7001,a@example.org\n")
    assert response.status_code == 400
    assert "The file has no parent_first_name column. Columns found: student_sis_id, parent_email." in (
        response.content.decode()
    )
    assert not ImportRun.objects.exists()


def test_a_file_that_is_not_utf8_is_refused_in_plain_words(staff):
    data = {
        "file": SimpleUploadedFile("x.csv", HEADER.encode() + "S1,a@example.org,José,B\n".encode("cp1252")),
        "method": "api",
    }
    response = staff.client.post(reverse("staff_import_new"), data)
    assert response.status_code == 400 and "is not UTF-8 text" in response.content.decode()


def test_people_who_are_not_staff_are_refused(parent_b, student, anonymous, db):
    for persona in (parent_b, student):
        assert persona.client.get(reverse("staff_imports")).status_code == 403
        assert upload(persona, HEADER + "S7001,a@example.org,A,B\n").status_code == 403
    assert anonymous.client.get(reverse("staff_imports")).status_code == 302
    assert not ImportRun.objects.exists()
