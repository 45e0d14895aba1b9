"""A request's page: the request, its people, the links it made, and its whole timeline from the audit log."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction
from django.urls import reverse

from linking.audit.services import audit_event_record
from linking.models import LinkRequest, ObservationLink
from tests.staff.conftest import parent_make, student_make


def record(action: str, subject: dict, **fields):
    with transaction.atomic():
        return audit_event_record(
            action=action, actor_label=fields.pop("actor_label", "parent"), subject=subject, **fields
        )


@pytest.fixture
def linked_request(db):
    """Maria's request that linked her to Sofia, with the events the portal recorded on the way."""
    parent = parent_make("maria.garcia@example.com", "Maria Garcia")
    student = student_make("Sofia Garcia")
    request = LinkRequest.objects.create(parent=parent, student=student, state=LinkRequest.State.LINKED)
    link = ObservationLink.objects.create(
        parent=parent,
        student=student,
        root_account_id=1,
        method=ObservationLink.Method.PAIRING_CODE,
        link_request=request,
    )
    about_request = {"link_request": str(request.pk), "parent": parent.pk}
    record("link_request.submitted", about_request, actor=parent.user, data={"source": "typed"})
    record(
        "link.created",
        {**about_request, "student": student.pk},
        actor=parent.user,
        outcome="linked",
        canvas_calls=[
            {"method": "GET", "path": "/api/v1/accounts/1/users", "status": 200, "outcome": "ok"},
            {"method": "POST", "path": "/api/v1/users/77/observees", "status": 200, "outcome": "ok"},
        ],
    )
    record(
        "link.removed",
        {"observation_link": str(link.pk), "parent": parent.pk, "student": student.pk},
        actor_label="staff",
        outcome="removed",
        canvas_calls=[{"method": "DELETE", "path": "/api/v1/users/77/observees/9", "status": 200, "outcome": "ok"}],
    )
    # Someone else's request: not on this page.
    record("link_request.submitted", {"link_request": str(uuid.uuid4()), "parent": parent.pk})
    return request


def test_it_shows_the_timeline_oldest_first_with_its_canvas_calls(staff, linked_request):
    response = staff.client.get(reverse("staff_request_detail", args=[linked_request.pk]))

    assert response.status_code == 200
    timeline = response.context["timeline"]
    assert [event.action for event in timeline] == ["link_request.submitted", "link.created", "link.removed"]
    page = response.content.decode()
    assert page.index("link_request.submitted") < page.index("link.created") < page.index("link.removed")
    for path in ("/api/v1/accounts/1/users", "/api/v1/users/77/observees", "/api/v1/users/77/observees/9"):
        assert path in page
    assert "DELETE" in page


def test_it_shows_the_request_its_people_and_the_links_it_made(staff, linked_request):
    page = staff.client.get(reverse("staff_request_detail", args=[linked_request.pk])).content.decode()
    assert "Maria Garcia" in page and "maria.garcia@example.com" in page and "Sofia Garcia" in page
    link = linked_request.observation_links.get()
    assert reverse("staff_link_revoke", args=[link.pk]) in page


def test_it_offers_approve_and_decline_only_on_a_held_request(staff, linked_request):
    approve = reverse("staff_request_approve", args=[linked_request.pk])
    assert approve not in staff.client.get(reverse("staff_request_detail", args=[linked_request.pk])).content.decode()
    held = LinkRequest.objects.create(
        parent=linked_request.parent, state=LinkRequest.State.HELD, held_rule=LinkRequest.Rule.HOLD_ALL
    )
    page = staff.client.get(reverse("staff_request_detail", args=[held.pk])).content.decode()
    assert reverse("staff_request_approve", args=[held.pk]) in page
    assert reverse("staff_request_reject", args=[held.pk]) in page


def test_it_answers_404_for_a_request_that_does_not_exist(staff, db):
    assert staff.client.get(reverse("staff_request_detail", args=[uuid.uuid4()])).status_code == 404
