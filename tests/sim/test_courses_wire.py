"""The simulator's course lists on the wire: an account's courses and a course's students.

Raw HTTP, as in ``test_wire.py``; the demo seed has "Grade 5, Room 12" (SIS ``C5-12``) taught by
Tomás Rivera, with students S1001 to S1015 and a few who take both demo courses.
"""

from __future__ import annotations

import re

import requests

NOT_AUTHORIZED = {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}


def call(sim, method, path, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, sim.base_url + path, headers=headers, timeout=10, **kwargs)


def admin(sim, method, path, **kwargs):
    return call(sim, method, path, sim.admin_token, **kwargs)


def rels(response) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["Link"])}


def every_page(sim, path, params, token=None) -> list[dict]:
    items, url = [], sim.base_url + path
    auth = {"Authorization": f"Bearer {token or sim.admin_token}"}
    response = requests.get(url, params=params, headers=auth, timeout=10)
    while True:
        assert response.status_code == 200
        items += response.json()
        url = rels(response).get("next")
        if not url:
            return items
        response = requests.get(url, headers=auth, timeout=10)


def grade5(sim) -> dict:
    return admin(sim, "GET", "/api/v1/courses/sis_course_id:C5-12").json()


def new_course(sim, name: str) -> dict:
    return admin(sim, "POST", "/api/v1/accounts/self/courses", data={"course[name]": name}).json()


def enrol(sim, course_id: int, user_id: int, kind: str = "StudentEnrollment") -> dict:
    data = {"enrollment[user_id]": user_id, "enrollment[type]": kind, "enrollment[enrollment_state]": "active"}
    return admin(sim, "POST", f"/api/v1/courses/{course_id}/enrollments", data=data).json()


# -- GET /accounts/:id/courses ----------------------------------------------------------------------
def test_an_admin_lists_the_accounts_courses_as_course_objects(canvas_sim):
    courses = every_page(canvas_sim, "/api/v1/accounts/self/courses", {"per_page": 100})

    demo = next(course for course in courses if course["sis_course_id"] == "C5-12")
    assert demo == grade5(canvas_sim)
    assert demo["name"] == "Grade 5, Room 12"
    assert set(demo) == {
        "id",
        "name",
        "course_code",
        "sis_course_id",
        "account_id",
        "root_account_id",
        "workflow_state",
        "created_at",
    }


def test_the_course_list_is_paginated_with_a_link_header(canvas_sim):
    new_course(canvas_sim, canvas_sim.unique("Paged course "))
    response = admin(canvas_sim, "GET", "/api/v1/accounts/self/courses", params={"per_page": 1})

    assert len(response.json()) == 1
    assert list(rels(response)) == ["current", "next", "first", "last"]
    assert "page=2&per_page=1" in rels(response)["next"]
    assert "," in response.headers["Link"] and ", " not in response.headers["Link"]
    every = every_page(canvas_sim, "/api/v1/accounts/self/courses", {"per_page": 1})
    assert len(every) == len({course["id"] for course in every}) >= 3


def test_total_students_counts_current_student_enrollments_on_request(canvas_sim):
    plain = every_page(canvas_sim, "/api/v1/accounts/self/courses", {})
    assert all("total_students" not in course for course in plain)

    counted = every_page(canvas_sim, "/api/v1/accounts/self/courses", {"include[]": "total_students"})
    demo = next(course for course in counted if course["sis_course_id"] == "C5-12")
    students = every_page(canvas_sim, f"/api/v1/courses/{demo['id']}/users", {"enrollment_type[]": "student"})
    assert demo["total_students"] == len(students) >= 15


def test_a_search_matches_name_code_or_sis_id(canvas_sim):
    for term in ("room 12", "G5-12", "c5-12"):
        found = every_page(canvas_sim, "/api/v1/accounts/self/courses", {"search_term": term})
        assert "C5-12" in [course["sis_course_id"] for course in found], term
        assert "C8-SCI" not in [course["sis_course_id"] for course in found], term
        for course in found:
            fields = (course["name"], course["course_code"], course["sis_course_id"] or "")
            assert any(term.lower() in value.lower() for value in fields), course


def test_a_one_character_search_is_refused(canvas_sim):
    response = admin(canvas_sim, "GET", "/api/v1/accounts/self/courses", params={"search_term": "G"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "2 or more characters is required"


def test_only_admins_list_an_accounts_courses(canvas_sim):
    student = canvas_sim.make_user(student=True)
    response = call(canvas_sim, "GET", "/api/v1/accounts/self/courses", student["token"])
    assert response.status_code == 401
    assert response.json() == NOT_AUTHORIZED


def test_a_numeric_search_also_finds_the_course_with_that_id(canvas_sim):
    course = new_course(canvas_sim, canvas_sim.unique("Numbered "))
    while course["id"] < 10:  # a search term needs two characters
        course = new_course(canvas_sim, canvas_sim.unique("Numbered "))
    found = every_page(canvas_sim, "/api/v1/accounts/self/courses", {"search_term": str(course["id"])})
    assert course["id"] in [c["id"] for c in found]


# -- GET /courses/:id/users -------------------------------------------------------------------------
def test_an_admin_lists_a_courses_students_as_user_objects_with_sis_ids(canvas_sim):
    students = every_page(
        canvas_sim, f"/api/v1/courses/{grade5(canvas_sim)['id']}/users", {"enrollment_type[]": "student"}
    )

    sis_ids = {user["sis_user_id"] for user in students}
    assert {f"S{1000 + n}" for n in range(1, 16)} <= sis_ids
    assert "T2001" not in sis_ids  # the teacher
    assert {"id", "name", "sortable_name", "short_name", "created_at", "sis_user_id", "login_id"} <= set(students[0])
    assert [u["sortable_name"].lower() for u in students] == sorted(u["sortable_name"].lower() for u in students)


def test_without_a_type_every_enrolled_user_is_listed_once(canvas_sim):
    course = new_course(canvas_sim, canvas_sim.unique("Mixed "))
    teacher, student = canvas_sim.make_user(), canvas_sim.make_user()
    enrol(canvas_sim, course["id"], teacher["id"], "TeacherEnrollment")
    enrol(canvas_sim, course["id"], student["id"])
    enrol(canvas_sim, course["id"], student["id"])  # a second section, say

    everyone = every_page(canvas_sim, f"/api/v1/courses/{course['id']}/users", {})
    only_students = every_page(canvas_sim, f"/api/v1/courses/{course['id']}/users", {"enrollment_type[]": "student"})

    assert sorted(user["id"] for user in everyone) == sorted([teacher["id"], student["id"]])
    assert [user["id"] for user in only_students] == [student["id"]]


def test_the_student_list_is_paginated(canvas_sim):
    response = admin(
        canvas_sim,
        "GET",
        f"/api/v1/courses/{grade5(canvas_sim)['id']}/users",
        params={"enrollment_type[]": "student", "per_page": 5},
    )
    assert len(response.json()) == 5
    assert "enrollment_type%5B%5D=student" in rels(response)["next"]
    assert "last" in rels(response)


def test_ended_enrollments_are_left_out(canvas_sim):
    course = new_course(canvas_sim, canvas_sim.unique("Ending "))
    staying, leaving = canvas_sim.make_user(), canvas_sim.make_user()
    enrol(canvas_sim, course["id"], staying["id"])
    gone = enrol(canvas_sim, course["id"], leaving["id"])
    admin(canvas_sim, "DELETE", f"/api/v1/courses/{course['id']}/enrollments/{gone['id']}", params={"task": "delete"})

    listed = every_page(canvas_sim, f"/api/v1/courses/{course['id']}/users", {"enrollment_type[]": "student"})
    assert [user["id"] for user in listed] == [staying["id"]]


def test_the_courses_teacher_may_read_the_roster_but_without_sis_ids(canvas_sim):
    course = new_course(canvas_sim, canvas_sim.unique("Taught "))
    teacher, student = canvas_sim.make_user(), canvas_sim.make_user()
    enrol(canvas_sim, course["id"], teacher["id"], "TeacherEnrollment")
    enrol(canvas_sim, course["id"], student["id"])

    response = call(
        canvas_sim,
        "GET",
        f"/api/v1/courses/{course['id']}/users",
        teacher["token"],
        params={"enrollment_type[]": "student"},
    )

    assert response.status_code == 200
    assert [user["id"] for user in response.json()] == [student["id"]]
    assert "sis_user_id" not in response.json()[0]


def test_a_student_of_another_course_may_not_read_the_roster(canvas_sim):
    outsider = canvas_sim.make_user(student=True)
    response = call(canvas_sim, "GET", f"/api/v1/courses/{grade5(canvas_sim)['id']}/users", outsider["token"])
    assert response.status_code == 401
    assert response.json() == NOT_AUTHORIZED


def test_an_unknown_course_is_not_found(canvas_sim):
    response = admin(canvas_sim, "GET", "/api/v1/courses/99999999/users")
    assert response.status_code == 404
