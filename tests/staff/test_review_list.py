"""The review list: filters, search, sorting and pages, in a fixed number of queries per page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from linking.models import Course, LinkRequest, Student
from tests.staff.conftest import parent_make, student_make

URL = reverse("staff_requests")


def request_make(parent, *, student: Student | None = None, state=LinkRequest.State.HELD, **fields) -> LinkRequest:
    if state == LinkRequest.State.HELD:
        fields.setdefault("held_rule", LinkRequest.Rule.HOLD_ALL)
    return LinkRequest.objects.create(parent=parent, student=student, state=state, code="AbC123", **fields)


def aged(link_request: LinkRequest, days: int) -> LinkRequest:
    # created_at is auto_now_add: backdate it with an update, as the form's date filter reads it.
    LinkRequest.objects.filter(pk=link_request.pk).update(created_at=timezone.now() - timedelta(days=days))
    link_request.refresh_from_db()
    return link_request


def listed(response, status: int = 200) -> list[LinkRequest]:
    assert response.status_code == status
    return list(response.context["page"].object_list)


@pytest.fixture
def families(db):
    """Two families in two schools: Maria asks for Sofia (held), Lee's request for Tom failed."""
    maria = parent_make("maria.garcia@example.com", "Maria Garcia")
    lee = parent_make("lee.wong@mail.example", "Lee Wong")
    sofia = student_make("Sofia Garcia")
    tom = student_make("Tom Wong")
    Student.objects.filter(pk=sofia.pk).update(sis_user_id="S-1001")
    Student.objects.filter(pk=tom.pk).update(sis_user_id="S-2002")
    north = Course.objects.create(canvas_course_id=1, name="Maths 7", account_id=10)
    south = Course.objects.create(canvas_course_id=2, name="Art 9", account_id=20)
    north.students.add(sofia)
    south.students.add(tom)
    held = request_make(maria, student=sofia, held_rule=LinkRequest.Rule.FLAGGED_STUDENT)
    failed = aged(request_make(lee, student=tom, state=LinkRequest.State.FAILED), days=10)
    unknown_student = request_make(lee, state=LinkRequest.State.WAITING)
    return {"held": held, "failed": failed, "unknown_student": unknown_student, "north": north, "south": south}


def test_it_lists_every_request_newest_first(staff, families):
    assert listed(staff.client.get(URL)) == [families["unknown_student"], families["held"], families["failed"]]


def test_it_narrows_the_list_to_one_state(staff, families):
    assert listed(staff.client.get(URL, {"state": "held"})) == [families["held"]]
    assert listed(staff.client.get(URL, {"state": "failed"})) == [families["failed"]]


def test_it_narrows_the_list_to_a_date_range(staff, families):
    today = timezone.localdate()
    recent = listed(staff.client.get(URL, {"created_from": (today - timedelta(days=2)).isoformat()}))
    assert families["failed"] not in recent and families["held"] in recent
    older = (today - timedelta(days=5)).isoformat()
    assert listed(staff.client.get(URL, {"created_to": older})) == [families["failed"]]


def test_the_first_and_last_days_a_date_can_hold_bound_nothing(staff, families):
    everything = listed(staff.client.get(URL))
    assert listed(staff.client.get(URL, {"created_from": "0001-01-01", "created_to": "9999-12-31"})) == everything


def test_it_narrows_the_list_to_a_course_or_a_school(staff, families):
    assert listed(staff.client.get(URL, {"course": families["north"].pk})) == [families["held"]]
    assert listed(staff.client.get(URL, {"school": 20})) == [families["failed"]]


def test_the_course_filter_offers_every_course_escaped_and_keeps_the_one_chosen(staff, families):
    Course.objects.create(canvas_course_id=4, name='Band <b>"A"</b>', account_id=10)
    page = staff.client.get(URL, {"course": families["north"].pk}).content.decode()

    select = page[page.index('<select name="course"') : page.index("</select>", page.index('<select name="course"'))]
    assert '<select name="course" id="id_course">' in page
    assert '<option value="">Any</option>' in select
    assert f'<option value="{families["north"].pk}" selected>Maths 7</option>' in select
    assert f'<option value="{families["south"].pk}">Art 9</option>' in select
    assert "Band &lt;b&gt;&quot;A&quot;&lt;/b&gt;" in select and "<b>" not in select


def test_it_counts_a_student_in_two_of_a_schools_courses_once(staff, families):
    second = Course.objects.create(canvas_course_id=3, name="Science 7", account_id=10)
    second.students.add(families["held"].student)
    assert listed(staff.client.get(URL, {"school": 10})) == [families["held"]]


def test_it_narrows_the_list_to_the_rule_that_held_it(staff, families):
    assert listed(staff.client.get(URL, {"held_rule": "flagged_student"})) == [families["held"]]
    assert listed(staff.client.get(URL, {"held_rule": "watched_domain"})) == []


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("sofia", ["held"]),  # student name
        ("S-2002", ["failed"]),  # student SIS id
        ("maria garcia", ["held"]),  # parent name
        ("mail.example", ["unknown_student", "failed"]),  # parent email, a request with no student yet too
    ],
)
@pytest.mark.parametrize("listed_at_most", [2000, 0], ids=["matches listed", "matches left to a subquery"])
def test_it_searches_students_and_parents(staff, families, q, expected, listed_at_most, monkeypatch):
    monkeypatch.setattr("linking.selectors.MATCHES_LISTED", listed_at_most)
    assert listed(staff.client.get(URL, {"q": q})) == [families[key] for key in expected]


def test_it_sorts_by_parent_or_student_name_either_way(staff, families):
    by_parent = listed(staff.client.get(URL, {"sort": "parent"}))
    assert [r.parent.name for r in by_parent] == ["Lee Wong", "Lee Wong", "Maria Garcia"]
    assert listed(staff.client.get(URL, {"sort": "-parent"}))[0] == families["held"]
    by_student = [r for r in listed(staff.client.get(URL, {"sort": "student"})) if r.student]
    assert [r.student.name for r in by_student] == ["Sofia Garcia", "Tom Wong"]
    by_state = listed(staff.client.get(URL, {"sort": "state"}))
    assert [r.state for r in by_state] == ["failed", "held", "waiting"]
    assert listed(staff.client.get(URL, {"sort": "created"}))[0] == families["failed"]


def test_it_reports_a_bad_filter_and_still_applies_the_others(staff, families):
    response = staff.client.get(URL, {"created_from": "not a date", "state": "held"})
    # 400, as for any invalid form; the page is the list all the same, narrowed by the valid filters.
    assert listed(response, 400) == [families["held"]]
    assert response.context["form"].errors["created_from"]


def test_it_offers_a_checkbox_only_for_held_requests(staff, families):
    page = staff.client.get(URL).content.decode()
    assert f'value="{families["held"].pk}"' in page
    assert f'value="{families["failed"].pk}"' not in page
    assert reverse("staff_requests_approve_many") in page


@pytest.fixture
def many_requests(db):
    parents = [parent_make(f"parent{n}@example.com", f"Parent {n}") for n in range(12)]
    students = [student_make(f"Student {n}") for n in range(12)]
    reviewer = parent_make("former.reviewer@example.com", "Former Reviewer").user
    for n in range(120):
        request_make(parents[n % 12], student=students[n % 12], reviewed_by=reviewer if n % 3 else None)


def test_it_pages_the_list_at_the_chosen_size(staff, many_requests):
    first = staff.client.get(URL, {"per_page": 50})
    assert len(listed(first)) == 50
    last = staff.client.get(URL, {"per_page": 50, "page": 3})
    assert len(listed(last)) == 20
    assert 'rel="prev"' in last.content.decode() and 'rel="next"' not in last.content.decode()
    assert len(listed(staff.client.get(URL))) == 25


@pytest.mark.parametrize("per_page", [25, 100])
def test_it_shows_a_page_in_the_same_number_of_queries_whatever_its_size(
    staff, many_requests, per_page, django_assert_max_num_queries
):
    staff.client.get(URL)  # warm the session and the content types
    # 11 today: session, user, two for permissions, MFA, the header's parent and student, the school and
    # course choices, the count, the page. An N+1 would add a query a row.
    with django_assert_max_num_queries(11):
        response = staff.client.get(URL, {"per_page": per_page, "sort": "student"})
    assert len(listed(response)) == per_page
