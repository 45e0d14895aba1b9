"""The student's and the parent's pages: who may see what, and what each form does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from linking.audit.models import AuditEvent
from linking.models import LinkRequest, ObservationLink, PairingCode, Student
from linking.services.people import parent_register

pytestmark = pytest.mark.django_db


def make_parent(email: str, name: str = "Pat Parent"):
    user = get_user_model().objects.create_user(username=email, email=email, password="a long passphrase")
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return parent_register(user=user, name=name)


def make_student(canvas_id: int, name: str = "Sam Student") -> Student:
    user = get_user_model().objects.create_user(username=f"canvas-{canvas_id}")
    return Student.objects.create(user=user, canvas_user_id=canvas_id, name=name)


def active_code(student: Student, code: str = "aB3xZ9") -> PairingCode:
    return PairingCode.objects.create(
        student=student,
        requested_by=student.user,
        state=PairingCode.State.ACTIVE,
        code=code,
        expires_at=timezone.now() + timedelta(days=7),
    )


@pytest.fixture
def parent():
    return make_parent("pat@example.test")


@pytest.fixture
def other_parent():
    return make_parent("robin@example.test", "Robin Other")


@pytest.fixture
def student():
    return make_student(101)


@pytest.fixture
def other_student():
    return make_student(102, "Alex Other")


# -- who may see what -----------------------------------------------------------------------------
STUDENT_PAGES = ["student_home"]
PARENT_PAGES = ["parent_home", "add_child", "parent_requests"]


@pytest.mark.parametrize("name", STUDENT_PAGES + PARENT_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("name", STUDENT_PAGES)
def test_parents_cannot_open_student_pages(client, parent, name):
    client.force_login(parent.user)
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", PARENT_PAGES)
def test_students_cannot_open_parent_pages(client, student, name):
    client.force_login(student.user)
    assert client.get(reverse(name)).status_code == 403


def test_a_student_cannot_see_another_students_code(client, student, other_student):
    code = active_code(other_student)
    client.force_login(student.user)
    for name in ("pairing_code_detail", "pairing_code_status", "pairing_code_card"):
        assert client.get(reverse(name, args=[code.pk])).status_code == 404


def test_a_parent_cannot_remove_another_parents_link(client, parent, other_parent, student):
    link = ObservationLink.objects.create(
        parent=other_parent, student=student, root_account_id=1, method="pairing_code"
    )
    client.force_login(parent.user)
    assert client.post(reverse("link_remove", args=[link.pk])).status_code == 404
    link.refresh_from_db()
    assert link.state == ObservationLink.State.ACTIVE


# -- students -------------------------------------------------------------------------------------
def test_invite_a_parent_saves_a_request_and_shows_its_page(client, student):
    client.force_login(student.user)
    response = client.post(reverse("pairing_code_new"))
    code = PairingCode.objects.get(student=student)
    assert response["Location"] == reverse("pairing_code_detail", args=[code.pk])
    assert code.state == PairingCode.State.PENDING
    page = client.get(response["Location"])
    assert b"Making your code" in page.content
    assert b"data-poll-url" in page.content
    assert AuditEvent.objects.filter(action="pairing_code.requested").count() == 1


def test_invite_a_parent_needs_a_post(client, student):
    client.force_login(student.user)
    assert client.get(reverse("pairing_code_new")).status_code == 405


def test_a_ready_code_is_shown_big_spelled_out_with_a_qr_code_and_its_expiry(client, student):
    code = active_code(student, "Il1O0a")
    client.force_login(student.user)
    page = client.get(reverse("pairing_code_detail", args=[code.pk])).content.decode()
    assert 'id="the-code"' in page and ">Il1O0a<" in page
    assert "capital i" in page and "the digit zero" in page
    assert "<svg" in page
    assert "in 7 days" in page
    assert 'data-copy="Il1O0a"' in page
    status = client.get(reverse("pairing_code_status", args=[code.pk]))
    assert status["X-Pending"] == "0"


def test_the_printable_card_holds_the_code_and_steps(client, student):
    code = active_code(student)
    client.force_login(student.user)
    page = client.get(reverse("pairing_code_card", args=[code.pk])).content.decode()
    assert "print-card" in page and "aB3xZ9" in page and "<svg" in page
    # Not every parent can scan a QR code: the address is printed too.
    assert "http://127.0.0.1:8000/family/add/" in page


def test_emailing_the_code_checks_the_address_and_records_who_sent_it(client, student):
    code = active_code(student)
    client.force_login(student.user)
    url = reverse("pairing_code_email", args=[code.pk])
    bad = client.post(url, {"email": "not-an-address"})
    assert bad.status_code == 400
    assert b"Enter a valid email address" in bad.content
    good = client.post(url, {"email": "mum@example.test"})
    assert good.status_code == 302
    event = AuditEvent.objects.get(action="pairing_code.emailed")
    assert event.personal["to"] == "mum@example.test"
    assert "aB3xZ9" not in str(event.data) + str(event.subject)


def test_a_refused_code_says_why_in_plain_words(client, student):
    code = PairingCode.objects.create(
        student=student, requested_by=student.user, state="failed", failure=PairingCode.Failure.NOT_ENROLLED
    )
    client.force_login(student.user)
    page = client.get(reverse("pairing_code_detail", args=[code.pk])).content.decode()
    assert "not enrolled in any course" in page
    assert "Try again" in page


def test_the_student_home_lists_codes_and_linked_parents(client, student, parent):
    active_code(student)
    ObservationLink.objects.create(parent=parent, student=student, root_account_id=1, method="pairing_code")
    client.force_login(student.user)
    page = client.get(reverse("student_home")).content.decode()
    assert "aB3xZ9" in page
    assert "Pat Parent" in page


# -- parents --------------------------------------------------------------------------------------
def test_adding_children_saves_one_request_per_code_keeping_case(client, parent):
    client.force_login(parent.user)
    response = client.post(reverse("add_child"), {"codes": " aB3xZ9  Qw7Rt2 "})
    assert response["Location"] == reverse("parent_home")
    assert sorted(LinkRequest.objects.filter(parent=parent).values_list("code", flat=True)) == ["Qw7Rt2", "aB3xZ9"]
    assert AuditEvent.objects.filter(action="link_request.submitted").count() == 2


def test_the_same_code_twice_is_not_submitted_twice(client, parent):
    client.force_login(parent.user)
    client.post(reverse("add_child"), {"codes": "aB3xZ9"})
    client.post(reverse("add_child"), {"codes": "aB3xZ9"})
    assert LinkRequest.objects.filter(parent=parent).count() == 1


def test_a_malformed_code_is_explained_and_nothing_is_saved(client, parent):
    client.force_login(parent.user)
    response = client.post(reverse("add_child"), {"codes": "aB3x"})
    assert response.status_code == 400
    assert "6 letters and digits" in response.content.decode()
    assert 'value="aB3x"' in response.content.decode()
    assert not LinkRequest.objects.exists()


def test_look_alike_characters_draw_a_warning(client, parent):
    client.force_login(parent.user)
    response = client.post(reverse("add_child"), {"codes": "Il10Ox"}, follow=True)
    assert "look alike" in response.content.decode()


def test_the_qr_link_fills_in_the_code_and_marks_its_source(client, parent):
    client.force_login(parent.user)
    page = client.get(reverse("add_child") + "?code=aB3xZ9").content.decode()
    assert 'value="aB3xZ9"' in page and 'name="source" value="qr"' in page
    client.post(reverse("add_child"), {"codes": "aB3xZ9", "source": "qr"})
    assert LinkRequest.objects.get(parent=parent).source == LinkRequest.Source.QR


def add_family_history(parent, count: int, start: int) -> None:
    for number in range(start, start + count):
        kid = make_student(200 + number, f"Kid {number}")
        ObservationLink.objects.create(parent=parent, student=kid, root_account_id=1, method="pairing_code")
        LinkRequest.objects.create(parent=parent, code=f"aaaa{number:02d}")
        LinkRequest.objects.create(parent=parent, state="failed", failure="invalid_code", finished_at=timezone.now())


def test_the_dashboard_shows_links_open_and_failed_requests_in_as_many_queries_for_one_child_as_for_twelve(
    client, parent
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(parent.user)
    add_family_history(parent, 1, start=0)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("parent_home"))
    add_family_history(parent, 11, start=1)
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("parent_home")).content.decode()

    assert len(many.captured_queries) == len(few.captured_queries)
    assert page.count("Remove this link") == 12
    assert page.count("Waiting to be linked") == 12
    assert page.count("Ask your child to make a new code") == 12
    polled = client.get(reverse("parent_requests"))
    assert polled["X-Pending"] == "1"


def test_removing_a_link_asks_first_then_queues_the_unlink(client, parent, student):
    link = ObservationLink.objects.create(parent=parent, student=student, root_account_id=1, method="pairing_code")
    client.force_login(parent.user)
    confirm = client.get(reverse("link_remove", args=[link.pk]))
    assert b"Stop following Sam Student?" in confirm.content
    link.refresh_from_db()
    assert link.state == ObservationLink.State.ACTIVE
    client.post(reverse("link_remove", args=[link.pk]))
    link.refresh_from_db()
    assert (link.state, link.removed_by) == (ObservationLink.State.REMOVING, parent.user)
    assert AuditEvent.objects.filter(action="link.remove_requested").count() == 1


def test_held_and_declined_requests_say_what_the_school_is_doing(client, parent):
    LinkRequest.objects.create(parent=parent, code="aB3xZ9", state="held", held_rule="hold_all")
    LinkRequest.objects.create(parent=parent, state="rejected", finished_at=timezone.now(), review_reason="x")
    client.force_login(parent.user)
    page = client.get(reverse("parent_home")).content.decode()
    assert "Waiting for the school" in page and "reviews some requests before linking" in page
    assert "Declined by the school" in page and "The school declined this request" in page
    # A declined request's reason is for the school's records and the email, not the dashboard.
    assert ">x<" not in page
