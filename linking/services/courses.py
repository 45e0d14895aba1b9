"""Courses as Canvas has them, read with the admin token, so staff can print family letters by class."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from linking.audit.services import audit_event_record
from linking.canvas import CanvasClient, admin_client, record_canvas_calls
from linking.models import Course, PairingCode, Student
from linking.services.codes import pairing_code_request
from linking.services.people import student_upsert_from_canvas


@transaction.atomic
def courses_sync_request(*, by: AbstractBaseUser) -> None:
    """Record that staff asked for a course sync and queue the worker that does it."""
    from linking.tasks import courses_sync_run

    audit_event_record(action="courses.sync_requested", actor=by, actor_label="staff", subject={})
    courses_sync_run.delay_on_commit(requested_by_id=by.pk)


def courses_sync(*, canvas: CanvasClient | None = None, by: AbstractBaseUser | None = None) -> dict:
    """Read the account's courses and each course's students from Canvas (admin token), then upsert
    the ``Course`` and ``Student`` rows and set each course's students; returns the counts.

    Canvas is read first and the database written in one transaction afterwards, so a sync that
    fails half way (raising a :class:`linking.canvas.CanvasError`) changes nothing. Courses that
    disappeared from Canvas are left as they were.
    """
    canvas = canvas or admin_client()
    with record_canvas_calls() as calls:
        courses = canvas.list_courses()
        rosters = {course["id"]: canvas.list_course_students(course["id"]) for course in courses}
    return _courses_save(courses, rosters, calls=calls, by=by)


@transaction.atomic
def _courses_save(courses: list[dict], rosters: dict[int, list[dict]], *, calls: list[dict], by) -> dict:
    now = timezone.now()
    canvas_ids = {user["id"] for roster in rosters.values() for user in roster}
    known = set(Student.objects.filter(canvas_user_id__in=canvas_ids).values_list("canvas_user_id", flat=True))
    students: dict[int, Student] = {}
    enrollments = 0
    for data in courses:
        course, _ = Course.objects.update_or_create(
            canvas_course_id=data["id"],
            defaults={
                "name": data.get("name") or "",
                "course_code": data.get("course_code") or "",
                "sis_course_id": data.get("sis_course_id") or "",
                "account_id": data.get("account_id"),
                "synced_at": now,
            },
        )
        members = []
        for user in rosters[data["id"]]:
            if user["id"] not in students:
                students[user["id"]] = student_upsert_from_canvas(
                    canvas_user_id=user["id"], name=user.get("name") or "", sis_user_id=user.get("sis_user_id") or ""
                )
            members.append(students[user["id"]])
        course.students.set(members)
        enrollments += len(members)
    counts = {
        "courses": len(courses),
        "students": len(students),
        "students_new": len(canvas_ids - known),
        "enrollments": enrollments,
    }
    audit_event_record(
        action="courses.synced",
        actor=by,
        actor_label="worker",
        subject={},
        canvas_calls=calls,
        data=counts,
    )
    return counts


def course_pairing_codes_request(*, course: Course, by: AbstractBaseUser) -> list[PairingCode]:
    """A staff-made code (admin token) for each student of the course who has no usable or pending
    one yet, so pressing the button twice makes no second batch. Returns the new code requests."""
    with transaction.atomic():
        students = list(course.students.select_related("user").order_by("name", "pk"))
        have = staff_codes_latest(students)
        return [
            pairing_code_request(student=student, by=by, actor_label="staff")
            for student in students
            if not (have.get(student.pk) and (have[student.pk].is_usable or have[student.pk].is_pending))
        ]


# Codes last 7 days; a day more covers any clock skew between Canvas and us.
CODE_LOOKBACK = timedelta(days=8)


def staff_codes_latest(students: list[Student]) -> dict[int, PairingCode]:
    """For each student, the code staff should print: the newest usable or pending one made by
    someone other than the student (staff), else the newest such code that failed, so its reason
    shows. A student's own codes are theirs to hand out and never printed. One query."""
    by_student: dict[int, PairingCode] = {}
    codes = PairingCode.objects.filter(student__in=students, created_at__gte=timezone.now() - CODE_LOOKBACK).order_by(
        "-created_at"
    )
    users = {student.pk: student.user_id for student in students}
    for code in codes:
        if users[code.student_id] is not None and code.requested_by_id == users[code.student_id]:
            continue
        current = by_student.get(code.student_id)
        if current is None or (current.state == PairingCode.State.FAILED and (code.is_usable or code.is_pending)):
            by_student[code.student_id] = code
    return {
        pk: code
        for pk, code in by_student.items()
        if code.is_usable or code.is_pending or code.state == PairingCode.State.FAILED
    }
