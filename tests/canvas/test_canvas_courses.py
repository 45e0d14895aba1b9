"""Reading courses and their students with the client: every page, students only, typed refusals."""

from __future__ import annotations

import pytest

import linking.canvas.client
from linking.canvas import CanvasNotAuthorized, CanvasNotFound


def new_course(admin, name: str) -> dict:
    return admin.request("POST", "/api/v1/accounts/self/courses", data={"course[name]": name})


def enrol(admin, course_id: int, user_id: int, kind: str = "StudentEnrollment") -> None:
    admin.request(
        "POST",
        f"/api/v1/courses/{course_id}/enrollments",
        data={"enrollment[user_id]": user_id, "enrollment[type]": kind, "enrollment[enrollment_state]": "active"},
    )


def test_it_lists_every_course_of_the_account_with_its_student_count(admin):
    courses = admin.list_courses()

    demo = next(course for course in courses if course["sis_course_id"] == "C5-12")
    assert demo["name"] == "Grade 5, Room 12"
    assert demo["total_students"] >= 15
    assert len({course["id"] for course in courses}) == len(courses)


def test_it_follows_next_links_to_the_last_page(canvas_sim, admin, canvas_log, monkeypatch):
    new_course(admin, canvas_sim.unique("Course "))
    everything = admin.list_courses()
    monkeypatch.setattr(linking.canvas.client, "PER_PAGE", 1)
    canvas_log.clear()

    paged = admin.list_courses()

    assert [course["id"] for course in paged] == [course["id"] for course in everything]
    assert len(canvas_log.attempts(method="GET", contains="/courses")) == len(everything) >= 3


def test_it_lists_a_courses_students_only_with_their_sis_ids(canvas_sim, admin, monkeypatch):
    course = new_course(admin, canvas_sim.unique("Roster "))
    teacher = canvas_sim.make_user()
    students = [canvas_sim.make_user(sis_user_id=canvas_sim.unique("SIS")) for _ in range(3)]
    enrol(admin, course["id"], teacher["id"], "TeacherEnrollment")
    for student in students:
        enrol(admin, course["id"], student["id"])
    monkeypatch.setattr(linking.canvas.client, "PER_PAGE", 2)

    listed = admin.list_course_students(course["id"])

    assert sorted(user["id"] for user in listed) == sorted(student["id"] for student in students)
    assert {user["sis_user_id"] for user in listed} == {student["sis_user_id"] for student in students}


def test_it_takes_an_sis_course_id(admin):
    students = admin.list_course_students("sis_course_id:C5-12")
    assert {f"S{1000 + n}" for n in range(1, 16)} <= {user["sis_user_id"] for user in students}


def test_a_student_token_may_not_list_the_accounts_courses(make_client, student):
    with pytest.raises(CanvasNotAuthorized):
        make_client(student["token"]).list_courses()


def test_an_unknown_course_is_not_found(admin):
    with pytest.raises(CanvasNotFound):
        admin.list_course_students(99999999)
