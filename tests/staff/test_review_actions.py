"""Each review action on its own URL: it calls its service, and redirects with a message."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from linking.audit.models import AuditEvent
from linking.models import LinkRequest, ObservationLink, PairHold
from tests.staff.conftest import student_make


def said(response) -> str:
    """The last message the response left (staff's sign-in leaves one of its own before it)."""
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    return messages[-1] if messages else ""


@pytest.fixture
def held(parent_a) -> LinkRequest:
    return parent_a.own["request"]


# -- approve --------------------------------------------------------------------------------------
def test_it_approves_a_held_request(staff, held):
    response = staff.client.post(reverse("staff_request_approve", args=[held.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("staff_request_detail", args=[held.pk])
    held.refresh_from_db()
    assert (held.state, held.reviewed_by) == (LinkRequest.State.WAITING, staff.user)
    assert said(response) == "Approved: the portal is linking them now."
    assert AuditEvent.objects.filter(action="link_request.approved", subject__link_request=str(held.pk)).exists()
    page = staff.client.get(response["Location"]).content.decode()
    assert "link_request.approved" in page and staff.user.get_username() in page


def test_it_explains_why_a_request_that_is_not_held_cannot_be_approved(staff, held):
    LinkRequest.objects.filter(pk=held.pk).update(state=LinkRequest.State.LINKED)

    response = staff.client.post(reverse("staff_request_approve", args=[held.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("staff_request_detail", args=[held.pk])
    assert said(response) == "Only a request waiting for review can be approved."
    held.refresh_from_db()
    assert held.state == LinkRequest.State.LINKED and held.reviewed_by is None


def test_it_approves_the_selected_held_requests_and_returns_to_the_list(staff, parent_a, held):
    other = LinkRequest.objects.create(
        parent=parent_a.parent, code="QwE456", state=LinkRequest.State.HELD, held_rule=LinkRequest.Rule.HOLD_ALL
    )
    gone = LinkRequest.objects.create(parent=parent_a.parent, state=LinkRequest.State.FAILED)
    back = reverse("staff_requests") + "?state=held"

    response = staff.client.post(
        reverse("staff_requests_approve_many"), {"link_requests": [held.pk, other.pk, gone.pk], "next": back}
    )

    assert response.status_code == 302 and response["Location"] == back
    assert set(LinkRequest.objects.filter(reviewed_by=staff.user).values_list("pk", flat=True)) == {held.pk, other.pk}
    assert said(response) == "Approved 2 of 3 selected requests; the others were no longer held."


def test_it_approves_one_selected_request(staff, held):
    response = staff.client.post(reverse("staff_requests_approve_many"), {"link_requests": [held.pk]})
    assert said(response) == "Approved 1 request: the portal is linking it now."


def test_it_asks_to_select_something_before_approving_many(staff, held):
    response = staff.client.post(reverse("staff_requests_approve_many"), {})
    assert response.status_code == 302 and response["Location"] == reverse("staff_requests")
    assert said(response) == "Select at least one held request to approve."


def test_it_never_returns_to_another_site_after_approving_many(staff, held):
    response = staff.client.post(
        reverse("staff_requests_approve_many"), {"link_requests": [held.pk], "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("staff_requests")


# -- reject ---------------------------------------------------------------------------------------
def test_it_shows_a_form_asking_why_before_declining(staff, held):
    response = staff.client.get(reverse("staff_request_reject", args=[held.pk]))
    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()


def test_it_declines_a_held_request_with_its_reason(staff, held):
    response = staff.client.post(reverse("staff_request_reject", args=[held.pk]), {"reason": "Not a guardian."})

    assert response.status_code == 302
    assert response["Location"] == reverse("staff_request_detail", args=[held.pk])
    held.refresh_from_db()
    assert (held.state, held.review_reason, held.reviewed_by) == (
        LinkRequest.State.REJECTED,
        "Not a guardian.",
        staff.user,
    )
    assert said(response) == "Declined. We're emailing the parent."


@pytest.mark.parametrize("reason", ["", "   "])
def test_it_declines_nothing_without_a_reason(staff, held, reason):
    response = staff.client.post(reverse("staff_request_reject", args=[held.pk]), {"reason": reason})

    assert response.status_code == 400
    assert response.context["form"].errors["reason"]
    held.refresh_from_db()
    assert held.state == LinkRequest.State.HELD and held.review_reason == ""


# -- retry ----------------------------------------------------------------------------------------
def test_it_retries_a_request_that_failed_because_canvas_was_away(staff, parent_a):
    failed = LinkRequest.objects.create(
        parent=parent_a.parent,
        code="AbC123",
        state=LinkRequest.State.FAILED,
        failure=LinkRequest.Failure.CANVAS_UNAVAILABLE,
    )

    response = staff.client.post(reverse("staff_request_retry", args=[failed.pk]))

    failed.refresh_from_db()
    assert failed.state == LinkRequest.State.WAITING
    assert response.status_code == 302
    assert response["Location"] == reverse("staff_request_detail", args=[failed.pk])
    assert said(response) == "Trying again: the portal is linking them now."


def test_it_explains_why_a_wrong_code_cannot_be_retried(staff, parent_a):
    failed = LinkRequest.objects.create(
        parent=parent_a.parent, state=LinkRequest.State.FAILED, failure=LinkRequest.Failure.INVALID_CODE
    )
    response = staff.client.post(reverse("staff_request_retry", args=[failed.pk]))
    assert response.status_code == 302
    assert "retried" in said(response)
    failed.refresh_from_db()
    assert failed.state == LinkRequest.State.FAILED


# -- revoke ---------------------------------------------------------------------------------------
def test_it_asks_why_before_revoking_a_link(staff, parent_a):
    link = parent_a.own["link"]
    response = staff.client.get(reverse("staff_link_revoke", args=[link.pk]))
    assert response.status_code == 200 and 'name="reason"' in response.content.decode()
    response = staff.client.post(reverse("staff_link_revoke", args=[link.pk]), {"reason": ""})
    assert response.status_code == 400
    link.refresh_from_db()
    assert link.state == ObservationLink.State.ACTIVE


def test_it_revokes_a_link_with_its_reason(staff, parent_a):
    link = parent_a.own["link"]

    response = staff.client.post(reverse("staff_link_revoke", args=[link.pk]), {"reason": "Court order 12/2025"})

    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.state, link.remove_reason, link.removed_by) == (
        ObservationLink.State.REMOVING,
        "Court order 12/2025",
        staff.user,
    )
    assert said(response) == "We're removing the link in Canvas and telling the parent."


def test_it_explains_that_a_link_being_removed_cannot_be_revoked_again(staff, parent_a):
    link = parent_a.own["link"]
    ObservationLink.objects.filter(pk=link.pk).update(state=ObservationLink.State.REMOVING)
    response = staff.client.post(reverse("staff_link_revoke", args=[link.pk]), {"reason": "Again"})
    assert response.status_code == 302
    assert said(response) == "This link is already being removed, or is gone."


# -- holds ----------------------------------------------------------------------------------------
def test_it_prefills_the_hold_form_from_a_request(staff, parent_a, student):
    url = reverse("staff_hold_new") + f"?student={student.student.pk}&parent_email=maria.garcia@example.com"
    response = staff.client.get(url)
    assert response.status_code == 200
    assert response.context["prefilled_student"] == student.student
    assert "maria.garcia@example.com" in response.content.decode()


def test_it_holds_a_pair_found_by_sis_id_and_revokes_their_current_link(staff, parent_a, student):
    type(student.student).objects.filter(pk=student.student.pk).update(sis_user_id="S-1001")

    response = staff.client.post(
        reverse("staff_hold_new"),
        {"find_student": "s-1001", "parent_email": "Maria.Garcia@example.com", "reason": "Court order 12/2025"},
    )

    assert response.status_code == 302 and response["Location"] == reverse("staff_holds")
    hold = PairHold.objects.get()
    assert (hold.student, hold.parent_email, hold.is_active) == (student.student, "maria.garcia@example.com", True)
    parent_a.own["link"].refresh_from_db()
    assert parent_a.own["link"].state == ObservationLink.State.REMOVING
    assert "can no longer be linked" in said(response)


def test_it_holds_a_pair_given_the_students_id(staff, parent_b, student):
    response = staff.client.post(
        reverse("staff_hold_new"),
        {"student": student.student.pk, "parent_email": "lee.wong@example.com", "reason": "Court order"},
    )
    assert response.status_code == 302
    assert PairHold.objects.filter(student=student.student, parent_email="lee.wong@example.com").exists()


def test_it_asks_for_the_sis_id_when_two_students_share_a_name(staff, student):
    student_make(student.student.name)
    response = staff.client.post(
        reverse("staff_hold_new"),
        {"find_student": student.student.name, "parent_email": "lee.wong@example.com", "reason": "Court order"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["find_student"]
    assert not PairHold.objects.exists()


def test_it_holds_nothing_without_a_reason(staff, student):
    response = staff.client.post(
        reverse("staff_hold_new"), {"student": student.student.pk, "parent_email": "lee.wong@example.com"}
    )
    assert response.status_code == 400
    assert not PairHold.objects.exists()


def test_it_explains_that_a_pair_is_already_held(staff, student):
    PairHold.objects.create(student=student.student, parent_email="lee.wong@example.com", reason="First")
    response = staff.client.post(
        reverse("staff_hold_new"),
        {"student": student.student.pk, "parent_email": "lee.wong@example.com", "reason": "Second"},
    )
    assert response.status_code == 302
    assert said(response) == "This parent and student are already held apart."
    assert PairHold.objects.count() == 1


def test_it_lists_active_and_lifted_holds(staff, student):
    active = PairHold.objects.create(student=student.student, parent_email="a@example.com", reason="Order A")
    lifted = PairHold.objects.create(student=student.student, parent_email="b@example.com", reason="Order B")
    PairHold.objects.filter(pk=lifted.pk).update(lifted_at=active.created_at, lift_reason="Order ended")

    response = staff.client.get(reverse("staff_holds"))

    assert response.status_code == 200
    assert response.context["active"] == [active]
    assert [hold.pk for hold in response.context["lifted"]] == [lifted.pk]
    assert "Order ended" in response.content.decode()


def test_it_lifts_a_hold_with_its_reason(staff, student):
    hold = PairHold.objects.create(student=student.student, parent_email="a@example.com", reason="Order A")

    response = staff.client.post(reverse("staff_hold_lift", args=[hold.pk]), {"reason": "Order ended"})

    assert response.status_code == 302 and response["Location"] == reverse("staff_holds")
    hold.refresh_from_db()
    assert (hold.is_active, hold.lifted_by, hold.lift_reason) == (False, staff.user, "Order ended")


def test_it_lifts_nothing_without_a_reason(staff, student):
    hold = PairHold.objects.create(student=student.student, parent_email="a@example.com", reason="Order A")
    response = staff.client.post(reverse("staff_hold_lift", args=[hold.pk]), {"reason": " "})
    assert response.status_code == 400
    hold.refresh_from_db()
    assert hold.is_active


# -- flag -----------------------------------------------------------------------------------------
def test_it_flags_and_unflags_a_student(staff, student):
    back = reverse("staff_requests")
    response = staff.client.post(
        reverse("staff_student_flag", args=[student.student.pk]), {"flagged": "true", "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    student.student.refresh_from_db()
    assert student.student.flagged
    staff.client.post(reverse("staff_student_flag", args=[student.student.pk]), {"flagged": "false"})
    student.student.refresh_from_db()
    assert not student.student.flagged


# -- methods --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "arg"),
    [
        ("staff_request_approve", "request"),
        ("staff_requests_approve_many", None),
        ("staff_request_retry", "request"),
        ("staff_hold_lift", "hold"),
        ("staff_student_flag", "student"),
    ],
)
def test_it_refuses_a_get_on_a_post_only_action(staff, held, student, name, arg):
    hold = PairHold.objects.create(student=student.student, parent_email="a@example.com", reason="Order A")
    args = {"request": [held.pk], "hold": [hold.pk], "student": [student.student.pk], None: []}[arg]
    assert staff.client.get(reverse(name, args=args)).status_code == 405
