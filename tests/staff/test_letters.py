"""Staff make pairing codes with the admin token and print family letters, in English or Spanish,
for one student or a whole course."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from linking.audit.models import AuditEvent
from linking.models import Course, PairingCode
from tests.staff.conftest import student_make
from tests.workers import wait_for


def ready_code(student, by, code: str = "Il1O0x") -> PairingCode:
    return PairingCode.objects.create(
        student=student,
        requested_by=by,
        state=PairingCode.State.ACTIVE,
        code=code,
        expires_at=timezone.now() + timedelta(days=7),
    )


def settled(codes):
    def check():
        states = set(PairingCode.objects.filter(pk__in=[c.pk for c in codes]).values_list("state", flat=True))
        return states <= {PairingCode.State.ACTIVE, PairingCode.State.FAILED}

    wait_for(check, message="the pairing codes to be made", timeout=60)
    return list(PairingCode.objects.filter(pk__in=[c.pk for c in codes]))


# -- one student ------------------------------------------------------------------------------------
def test_staff_make_a_code_with_the_admin_token_even_for_a_student_who_signed_in(family, staff):
    student = family.student()  # has their own Canvas token, which staff-made codes never use

    response = staff.client.post(reverse("staff_code_new", args=[student.pk]), {"lang": "en"})

    assert response.status_code == 302
    assert response["Location"] == reverse("staff_letters_student", args=[student.pk]) + "?lang=en"
    (code,) = settled(PairingCode.objects.filter(student=student))
    assert code.state == PairingCode.State.ACTIVE and code.requested_by == staff.user
    assert AuditEvent.objects.get(action="pairing_code.requested").actor_label == "staff"
    assert AuditEvent.objects.get(action="pairing_code.created").data["acting_as"] == "admin"

    page = staff.client.get(response["Location"]).content.decode()

    assert student.name in page
    assert f'<p class="code code-big" translate="no">{code.code}</p>' in page
    assert "<svg" in page and "QR code" in page
    assert "Steps" in page and 'class="steps"' in page
    assert "Scan the QR code, or type this address" in page
    assert "/family/add/" in page
    assert "expires on" in page
    assert "data-poll-url" not in page


def test_the_letter_waits_for_a_code_that_is_being_made(staff, db):
    student = student_make("Noah Kim")
    code = PairingCode.objects.create(student=student, requested_by=staff.user)
    status_url = reverse("staff_letters_student_status", args=[student.pk]) + "?lang=en"

    page = staff.client.get(reverse("staff_letters_student", args=[student.pk]))
    assert f'data-poll-url="{status_url}"' in page.content.decode()
    assert "Being made" in page.content.decode()
    assert staff.client.get(status_url)["X-Pending"] == "1"

    PairingCode.objects.filter(pk=code.pk).update(
        state=PairingCode.State.ACTIVE, code="Zq7pR2", expires_at=timezone.now() + timedelta(days=7)
    )
    ready = staff.client.get(status_url)
    assert ready["X-Pending"] == "0"
    assert "Zq7pR2" in ready.content.decode()


def test_a_student_without_a_code_gets_a_button_to_make_one(staff, db):
    student = student_make("Mia Nguyen")

    page = staff.client.get(reverse("staff_letters_student", args=[student.pk])).content.decode()

    assert "No code yet." in page
    assert f'action="{reverse("staff_code_new", args=[student.pk])}"' in page


def test_a_code_the_student_made_themselves_is_never_printed(staff, student):
    page = staff.client.get(reverse("staff_letters_student", args=[student.student.pk])).content.decode()

    assert student.own["pairing_code"].code not in page
    assert "No code yet." in page


def test_a_failed_code_says_why_and_offers_another_try(staff, db):
    student = student_make("Ivy Newcomer")
    PairingCode.objects.create(
        student=student,
        requested_by=staff.user,
        state=PairingCode.State.FAILED,
        failure=PairingCode.Failure.NOT_ENROLLED,
    )

    page = staff.client.get(reverse("staff_letters_student", args=[student.pk])).content.decode()

    assert "Not enrolled in a course yet" in page
    assert "Try again" in page


def test_a_spanish_letter_is_written_and_spelled_in_spanish(staff, db):
    student = student_make("Sofía García")
    ready_code(student, staff.user, code="Il1O0x")

    page = staff.client.get(reverse("staff_letters_student", args=[student.pk]), {"lang": "es"}).content.decode()

    assert 'lang="es"' in page
    for spanish in (
        "Siga las clases de Sofía García en Canvas",
        "Código de vinculación",
        "Pasos",
        "Escanee el código QR",
        "Este código sirve una sola vez y vence el",
        "Código QR",
    ):
        assert spanish in page, spanish
    spelled = re.findall(r'<span><b translate="no">(.)</b> ([^<]+)</span>', page)
    assert spelled == [
        ("I", "i mayúscula"),
        ("l", "ele minúscula"),
        ("1", "el número uno"),
        ("O", "o mayúscula"),
        ("0", "el número cero"),
        ("x", "x minúscula"),
    ]
    assert "Steps" not in page and "capital" not in page
    # The month is Spanish too ("vence el 3 de diciembre de 2026").
    assert re.search(r"vence el \d+ de [a-z]+ de \d{4}", page)


def test_an_english_letter_spells_the_code_in_english(staff, db):
    student = student_make("Liam Okafor")
    ready_code(student, staff.user, code="Il1O0x")

    page = staff.client.get(reverse("staff_letters_student", args=[student.pk]), {"lang": "en"}).content.decode()

    assert "capital i" in page and "lower-case L" in page and "the digit one" in page
    assert "Pasos" not in page


def test_an_unknown_language_falls_back_to_english(staff, db):
    student = student_make("Ava Thompson")
    ready_code(student, staff.user)

    page = staff.client.get(reverse("staff_letters_student", args=[student.pk]), {"lang": "xx"}).content.decode()

    assert "Steps" in page


# -- finding students and courses -------------------------------------------------------------------
def test_staff_find_students_by_name_or_sis_id(staff, db):
    sofia = student_make("Sofia Garcia")
    sofia.sis_user_id = "S1003"
    sofia.save(update_fields=["sis_user_id"])
    student_make("Noah Kim")

    by_name = staff.client.get(reverse("staff_letters"), {"q": "garc", "lang": "es"}).content.decode()
    by_sis = staff.client.get(reverse("staff_letters"), {"q": "s1003"}).content.decode()

    assert "Sofia Garcia" in by_name and "Noah Kim" not in by_name
    assert f"{reverse('staff_letters_student', args=[sofia.pk])}?lang=es" in by_name
    assert "Sofia Garcia" in by_sis and "Noah Kim" not in by_sis


def test_choosing_a_course_opens_its_letters(staff, db):
    course = Course.objects.create(canvas_course_id=777001, name="Grade 3")

    response = staff.client.get(reverse("staff_letters"), {"course": course.pk, "lang": "es"})

    assert response["Location"] == reverse("staff_letters_course", args=[course.pk]) + "?lang=es"


def test_the_course_list_pages_through_a_districts_courses_with_their_student_counts(staff, db):
    from linking.staff.letters import COURSES_PER_PAGE

    courses = Course.objects.bulk_create(
        Course(canvas_course_id=880000 + number, name=f"Room {number:03d}") for number in range(COURSES_PER_PAGE + 5)
    )
    for number in range(3):
        courses[0].students.add(student_make(f"Pupil {number}"))

    first = staff.client.get(reverse("staff_letters")).content.decode()
    second = staff.client.get(reverse("staff_letters"), {"page": 2}).content.decode()

    assert "<strong>Room 000</strong>" in first and "3 students" in first and "Page 1 of 2" in first
    assert f"<strong>Room {COURSES_PER_PAGE - 1:03d}</strong>" in first and "Room 050</strong>" not in first
    assert "<strong>Room 050</strong>" in second and "0 students" in second and "Room 000</strong>" not in second
    # Every course stays one choice away in the form, whichever page is shown.
    assert f'<option value="{courses[-1].pk}">Room {len(courses) - 1:03d}</option>' in first


# -- a course ---------------------------------------------------------------------------------------
def test_staff_print_a_letter_for_every_student_of_a_synced_course(family, staff):
    response = staff.client.post(reverse("staff_courses_sync"))
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="courses.sync_requested").actor_label == "staff"
    course = wait_for(lambda: Course.objects.filter(sis_course_id="C5-12").first(), message="the course sync")
    event = wait_for(lambda: AuditEvent.objects.filter(action="courses.synced").first(), message="the audit")
    assert event.data["courses"] >= 2 and event.actor_id == staff.user.pk
    students = list(course.students.order_by("name"))
    assert len(students) >= 15

    before = staff.client.get(reverse("staff_letters_course", args=[course.pk]), {"lang": "es"}).content.decode()
    assert f"{len(students)} students, 0 letters ready to print." in before

    response = staff.client.post(reverse("staff_letters_course", args=[course.pk]), {"lang": "es"})
    assert response["Location"] == reverse("staff_letters_course", args=[course.pk]) + "?lang=es"
    codes = list(PairingCode.objects.filter(student__in=students))
    assert len(codes) == len(students)
    assert {code.student_id for code in codes} == {student.pk for student in students}

    pending = staff.client.get(response["Location"]).content.decode()
    assert "data-poll-url" in pending or "Being made" not in pending
    codes = settled(codes)
    assert {code.state for code in codes} == {PairingCode.State.ACTIVE}

    page = staff.client.get(response["Location"]).content.decode()
    letters = re.findall(r'<article class="letter" lang="es">(.*?)</article>', page, re.S)
    assert len(letters) == len(students)
    for student, letter in zip(students, letters, strict=True):
        code = next(code for code in codes if code.student_id == student.pk)
        assert escape(student.name) in letter
        assert code.code in letter
        assert "<svg" in letter
        assert "Pasos" in letter
    # One letter per printed page: each is an article.letter, which the stylesheet breaks after in print.
    assert page.count('<article class="letter') >= 1
    assert "break-after: page" in (Path(settings.BASE_DIR) / "static/css/portal.css").read_text()

    # Pressing the button again makes no second batch.
    staff.client.post(reverse("staff_letters_course", args=[course.pk]), {"lang": "es"})
    assert PairingCode.objects.filter(student__in=students).count() == len(students)


def test_a_course_page_shows_pending_letters_as_being_made_and_polls(staff, db):
    course = Course.objects.create(canvas_course_id=777002, name="Grade 2")
    waiting, done = student_make("Ben Okoro"), student_make("Ana Ortiz")
    course.students.set([waiting, done])
    PairingCode.objects.create(student=waiting, requested_by=staff.user)
    ready_code(done, staff.user, code="Hk4mW9")

    page = staff.client.get(reverse("staff_letters_course", args=[course.pk])).content.decode()
    status = staff.client.get(reverse("staff_letters_course_status", args=[course.pk]))

    assert "2 students, 1 letter ready to print." in page
    assert "Being made" in page and "Hk4mW9" in page
    assert 'data-poll-url="' + reverse("staff_letters_course_status", args=[course.pk]) + '?lang=en"' in page
    assert status["X-Pending"] == "1" and "Hk4mW9" in status.content.decode()


def test_the_course_page_costs_the_same_queries_for_many_students(staff, db, django_assert_max_num_queries):
    course = Course.objects.create(canvas_course_id=777003, name="Grade 1")
    students = [student_make(f"Student {n}") for n in range(12)]
    course.students.set(students)
    for n, student in enumerate(students):
        ready_code(student, staff.user, code=f"Abc{n:03d}")

    with django_assert_max_num_queries(12):
        response = staff.client.get(reverse("staff_letters_course", args=[course.pk]))

    assert response.content.decode().count('<article class="letter"') == 12


# -- who may -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["parent_b", "student"])
def test_only_staff_may_make_codes_or_print_letters(request, who, db):
    persona = request.getfixturevalue(who)
    target = student_make("Ella Martin")
    course = Course.objects.create(canvas_course_id=777004, name="Grade 6")

    for method, url in (
        ("get", reverse("staff_letters")),
        ("get", reverse("staff_letters_student", args=[target.pk])),
        ("get", reverse("staff_letters_student_status", args=[target.pk])),
        ("post", reverse("staff_code_new", args=[target.pk])),
        ("get", reverse("staff_letters_course", args=[course.pk])),
        ("post", reverse("staff_letters_course", args=[course.pk])),
        ("get", reverse("staff_letters_course_status", args=[course.pk])),
        ("post", reverse("staff_courses_sync")),
    ):
        assert getattr(persona.client, method)(url).status_code == 403, url
    assert not PairingCode.objects.filter(student=target).exists()


def test_anonymous_visitors_are_sent_to_sign_in(anonymous, db):
    response = anonymous.client.get(reverse("staff_letters"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
