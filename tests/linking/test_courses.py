"""Course sync: the portal reads Canvas's courses and their students with the admin token."""

from __future__ import annotations

import pytest

from linking.audit.models import AuditEvent
from linking.canvas import CanvasTransient, admin_client
from linking.models import Course, Student
from linking.services.courses import courses_sync
from linking.services.people import student_upsert_from_canvas


@pytest.fixture
def school(canvas_settings, canvas_sim, db):
    """A fresh course in the simulator with a teacher and two students (one with an SIS id)."""
    canvas = admin_client()
    course = canvas.request(
        "POST",
        "/api/v1/accounts/self/courses",
        data={"course[name]": canvas_sim.unique("Grade 4, Room "), "course[sis_course_id]": canvas_sim.unique("C4-")},
    )
    teacher = canvas_sim.make_user(name="Terry Teacher")
    ana = canvas_sim.make_user(name="Ana Ortiz", sis_user_id=canvas_sim.unique("S"))
    ben = canvas_sim.make_user(name="Ben Okoro")
    enrollments = {}
    for user, kind in ((teacher, "TeacherEnrollment"), (ana, "StudentEnrollment"), (ben, "StudentEnrollment")):
        enrollments[user["id"]] = canvas.request(
            "POST",
            f"/api/v1/courses/{course['id']}/enrollments",
            data={
                "enrollment[user_id]": user["id"],
                "enrollment[type]": kind,
                "enrollment[enrollment_state]": "active",
            },
        )
    return {"course": course, "teacher": teacher, "ana": ana, "ben": ben, "enrollments": enrollments, "canvas": canvas}


def test_it_reads_every_course_and_its_students(school):
    counts = courses_sync()

    course = Course.objects.get(canvas_course_id=school["course"]["id"])
    assert (course.name, course.sis_course_id, course.account_id) == (
        school["course"]["name"],
        school["course"]["sis_course_id"],
        1,
    )
    assert course.synced_at is not None
    assert sorted(course.students.values_list("name", flat=True)) == ["Ana Ortiz", "Ben Okoro"]
    ana = Student.objects.get(canvas_user_id=school["ana"]["id"])
    assert ana.sis_user_id == school["ana"]["sis_user_id"]
    assert not Student.objects.filter(canvas_user_id=school["teacher"]["id"]).exists()
    # The demo school is there too: Grade 5, Room 12 and its students.
    demo = Course.objects.get(sis_course_id="C5-12")
    assert demo.name == "Grade 5, Room 12"
    assert demo.students.filter(sis_user_id="S1001").exists()
    assert counts["courses"] == Course.objects.count()
    assert counts["enrollments"] == sum(c.students.count() for c in Course.objects.all())
    event = AuditEvent.objects.get(action="courses.synced")
    assert event.data == counts
    assert event.canvas_calls and all(call["method"] == "GET" for call in event.canvas_calls)


def test_a_second_sync_follows_the_roster_and_keeps_the_students(school):
    courses_sync()
    ben = school["enrollments"][school["ben"]["id"]]
    school["canvas"].request(
        "DELETE", f"/api/v1/courses/{school['course']['id']}/enrollments/{ben['id']}", params={"task": "delete"}
    )

    counts = courses_sync()

    course = Course.objects.get(canvas_course_id=school["course"]["id"])
    assert list(course.students.values_list("name", flat=True)) == ["Ana Ortiz"]
    assert Student.objects.filter(canvas_user_id=school["ben"]["id"]).exists()
    assert counts["students_new"] == 0


def test_a_student_who_signed_in_keeps_their_portal_account(school, django_user_model):
    user = django_user_model.objects.create_user(username="canvas-ana")
    student_upsert_from_canvas(canvas_user_id=school["ana"]["id"], name="Ana", user=user)

    courses_sync()

    ana = Student.objects.get(canvas_user_id=school["ana"]["id"])
    assert (ana.user, ana.name, ana.sis_user_id) == (user, "Ana Ortiz", school["ana"]["sis_user_id"])


def test_a_sync_that_fails_half_way_changes_nothing(school, canvas_sim):
    canvas_sim.configure(error_rate=1.0)

    with pytest.raises(CanvasTransient):
        courses_sync()

    assert not Course.objects.exists()
    assert not AuditEvent.objects.filter(action="courses.synced").exists()
