"""What the fuzz tests found, each pinned down by the smallest request that showed it.

Every one was a 500, a refused request that left rows behind, or a refusal without a message. The fuzz
tests would find them again; these say what each was, in one place, and fail with a plain message.
"""

from __future__ import annotations

from allauth.socialaccount.models import SocialAccount
from django.contrib.sites.models import Site
from django.urls import reverse

from linking.audit.models import AuditEvent
from linking.models import Course, PairingCode
from tests.staff.conftest import fast_accounts, parent_a, staff, student  # noqa: F401

TOO_MANY_FIELDS = {f"f{n}": "x" for n in range(1001)}  # Django reads at most 1,000 (DATA_UPLOAD_MAX_NUMBER_FIELDS)


# -- 500s -------------------------------------------------------------------------------------------
def test_a_next_address_that_is_not_a_path_sends_staff_back_to_the_list(staff, student):
    # redirect() took any word for the name of a view to reverse: NoReverseMatch, a 500.
    for next_url in ("nul\x00inside", "staff_home", "javascript:alert(1)"):
        response = staff.client.post(
            reverse("staff_student_flag", args=[student.student.pk]), {"flagged": "true", "next": next_url}
        )
        assert response.status_code == 302 and response["Location"] == reverse("staff_requests"), next_url


def test_a_student_id_in_digits_python_cannot_read_prefills_no_student(staff):
    # "²".isdigit() is true, and int("²") raises: a 500 on the hold form's GET and on its invalid POST.
    for student_id in ("²", "٣²", "１２"):
        assert staff.client.get(reverse("staff_hold_new"), {"student": student_id}).status_code == 200
        response = staff.client.post(reverse("staff_hold_new"), {"student": student_id, "reason": "Court order"})
        assert response.status_code == 400 and response.context["prefilled_student"] is None


def test_the_admin_refuses_a_nul_in_a_filter_and_a_date_past_the_calendar_with_a_message(site_admin):
    # PostgreSQL refuses NUL in text, and the date drill-down asks for the year after 9999: both were 500s.
    for query in ({"action": "nul\x00inside"}, {"created_at__year": "9999"}, {"created_at__year": "9" * 40}):
        response = site_admin.client.get(reverse("admin:audit_auditevent_changelist"), query)
        assert response.status_code == 400, query
        assert b"Something was wrong with what you sent" in response.content
    response = site_admin.client.get(reverse("admin:audit_auditevent_changelist"), {"created_at__year": "2026"})
    assert response.status_code == 200


def test_a_site_can_be_added_after_the_one_the_migrations_made(db):
    # The migration gave the portal's site an explicit id and left PostgreSQL's sequence at 1: the next
    # site added (in the admin) collided with it, an IntegrityError.
    assert Site.objects.create(domain="other.example", name="Other").pk != Site.objects.get_current().pk


# -- refused, but rows left behind ------------------------------------------------------------------
def test_a_code_request_django_refuses_makes_no_code(staff, student):
    # The view made the code, then read the letter's language from the body Django refused: a 400 with
    # a new code (and its audit event) behind it.
    codes, events = PairingCode.objects.count(), AuditEvent.objects.count()
    response = staff.client.post(reverse("staff_code_new", args=[student.student.pk]), TOO_MANY_FIELDS)
    assert response.status_code == 400
    assert (PairingCode.objects.count(), AuditEvent.objects.count()) == (codes, events)


def test_a_course_letters_request_django_refuses_makes_no_code(staff, student):
    course = Course.objects.create(canvas_course_id=901, name="Year 9 Maths")
    course.students.add(student.student)
    codes = PairingCode.objects.count()
    response = staff.client.post(reverse("staff_letters_course", args=[course.pk]), TOO_MANY_FIELDS)
    assert response.status_code == 400 and PairingCode.objects.count() == codes


# -- refused, without a message ---------------------------------------------------------------------
def test_the_authenticator_code_page_keeps_its_field_when_a_post_has_no_code(db):
    from tests.staff.conftest import password_client, staff_member_make

    client = password_client(staff_member_make("code.less@school.example"))
    # allauth read a POST without "code" as a security key's answer and showed the page with no field.
    response = client.post(reverse("mfa_authenticate"), {"anything": "else"})
    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="code"' in content and "This field is required." in content


def test_a_student_is_told_why_their_only_canvas_account_cannot_be_removed(student):
    account = SocialAccount.objects.create(user=student.user, provider="canvas", uid="5001")
    # allauth's page showed neither the form's errors: pressing "Remove" seemed to do nothing.
    response = student.client.post(reverse("socialaccount_connections"), {"account": account.pk})
    assert response.status_code == 200 and "Your account has no password set up." in response.content.decode()
    response = student.client.post(reverse("socialaccount_connections"), {})
    assert "This field is required." in response.content.decode()
    assert SocialAccount.objects.filter(pk=account.pk).exists()


def test_invalid_filters_answer_400_with_their_errors_beside_the_fields(staff):
    for name, query in (
        ("staff_requests", {"created_from": "not a date"}),
        ("staff_audit", {"date_from": "not a date"}),
        ("staff_letters", {"course": "not a course"}),
    ):
        response = staff.client.get(reverse(name), query)
        assert response.status_code == 400, name
        assert 'class="errorlist' in response.content.decode(), name
