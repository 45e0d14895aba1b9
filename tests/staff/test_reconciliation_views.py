"""The drift page and its actions: what staff see, what each button does, and who may press it."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from linking.audit.models import AuditEvent
from linking.models import Drift, ObservationLink, PairHold, Parent, ReconciliationRun
from tests.staff.conftest import student_make

URL = reverse("staff_drift")
COUNTS = {
    "parents_checked": 2,
    "students_checked": 1,
    "missing_in_portal": 2,
    "missing_in_canvas": 1,
    "canvas_calls": 3,
}


def message_of(response) -> str:
    """The message the action left (the sign-in left one before it)."""
    return [str(message) for message in get_messages(response.wsgi_request)][-1]


def canvas_only(run, *, student, parent=None, observer_id=None, observer_name="") -> Drift:
    return Drift.objects.create(
        run=run,
        kind=Drift.Kind.IN_CANVAS_ONLY,
        parent=parent,
        canvas_observer_id=observer_id or parent.canvas_user_id,
        observer_name=observer_name or (parent.name if parent else ""),
        student=student,
        canvas_student_id=student.canvas_user_id,
        student_name=student.name,
        root_account_ids=[1],
    )


@pytest.fixture
def drift(db, parent_a, parent_b, student):
    """A finished run that found: Lee linked to Sofia in Canvas only, a stranger observing Sofia, and
    Maria's portal link to Sofia gone from Canvas."""
    Parent.objects.filter(pk=parent_a.parent.pk).update(canvas_user_id=901)
    Parent.objects.filter(pk=parent_b.parent.pk).update(canvas_user_id=902)
    parent_a.parent.refresh_from_db()
    parent_b.parent.refresh_from_db()
    run = ReconciliationRun.objects.create(state=ReconciliationRun.State.DONE, counts=COUNTS)
    sofia = student.student
    link = parent_a.own["link"]
    return {
        "run": run,
        "adoptable": canvas_only(run, student=sofia, parent=parent_b.parent),
        "stranger": canvas_only(run, student=sofia, observer_id=777, observer_name="Sam Stranger"),
        "gone": Drift.objects.create(
            run=run,
            kind=Drift.Kind.IN_PORTAL_ONLY,
            parent=parent_a.parent,
            canvas_observer_id=901,
            observer_name=parent_a.parent.name,
            student=sofia,
            canvas_student_id=sofia.canvas_user_id,
            student_name=sofia.name,
            observation_link=link,
            root_account_ids=[1],
        ),
    }


# -- the page -------------------------------------------------------------------------------------
def test_it_shows_the_latest_run_with_counts_and_the_drift_by_kind(staff, drift):
    response = staff.client.get(URL)

    assert response.status_code == 200
    page = response.context["page"]
    assert page.latest == drift["run"] and page.last_finished.counts == COUNTS
    assert {d.pk for d in page.in_canvas_only} == {drift["adoptable"].pk, drift["stranger"].pk}
    assert [d.pk for d in page.in_portal_only] == [drift["gone"].pk]
    html = response.content.decode()
    assert "Sam Stranger" in html and "no portal account" in html
    assert reverse("staff_drift_adopt", args=[drift["adoptable"].pk]) in html
    assert reverse("staff_drift_adopt", args=[drift["stranger"].pk]) not in html
    assert reverse("staff_drift_mark_removed", args=[drift["gone"].pk]) in html
    assert reverse("staff_drift_relink", args=[drift["gone"].pk]) in html


def test_it_shows_a_held_pair_without_the_adopt_button(staff, drift, parent_b):
    PairHold.objects.create(student=drift["adoptable"].student, parent_email=parent_b.parent.email, reason="order")

    html = staff.client.get(URL).content.decode()

    assert reverse("staff_drift_adopt", args=[drift["adoptable"].pk]) not in html
    assert "Remove the link in Canvas" in html


def test_it_shows_the_page_before_any_run(staff):
    response = staff.client.get(URL)

    assert response.status_code == 200
    assert "No run yet." in response.content.decode()


def test_the_page_costs_the_same_queries_however_much_drift(staff, drift):
    with CaptureQueriesContext(connection) as few:
        staff.client.get(URL)
    for index in range(10):
        student = student_make(f"Student {index}")
        canvas_only(drift["run"], student=student, observer_id=1000 + index, observer_name=f"Observer {index}")
    with CaptureQueriesContext(connection) as many:
        response = staff.client.get(URL)

    assert len(response.context["page"].in_canvas_only) == 12
    assert len(many) == len(few)


# -- the actions ----------------------------------------------------------------------------------
def test_run_now_queues_a_run(staff):
    response = staff.client.post(reverse("staff_reconcile_now"))

    assert response.status_code == 302 and response.url == URL
    run = ReconciliationRun.objects.get()
    assert (run.state, run.requested_by) == (ReconciliationRun.State.QUEUED, staff.user)
    assert "queued" in message_of(response)
    assert AuditEvent.objects.get(action="reconciliation.requested").actor_id == staff.user.pk


def test_run_now_while_a_run_is_under_way_makes_no_second_run(staff):
    ReconciliationRun.objects.create(state=ReconciliationRun.State.RUNNING)

    response = staff.client.post(reverse("staff_reconcile_now"))

    assert ReconciliationRun.objects.count() == 1
    assert message_of(response) == "A reconciliation run is already under way."


def test_adopt_takes_the_link_into_the_portal(staff, drift, parent_b):
    response = staff.client.post(reverse("staff_drift_adopt", args=[drift["adoptable"].pk]))

    assert response.status_code == 302 and response.url == URL
    assert message_of(response) == "The link is now in the portal's records."
    link = ObservationLink.objects.get(parent=parent_b.parent)
    assert (link.method, link.created_by) == (ObservationLink.Method.ADOPTED, staff.user)
    assert Drift.objects.get(pk=drift["adoptable"].pk).state == Drift.State.ADOPTED


def test_adopting_a_held_pair_is_refused(staff, drift, parent_b):
    PairHold.objects.create(student=drift["adoptable"].student, parent_email=parent_b.parent.email, reason="order")

    response = staff.client.post(reverse("staff_drift_adopt", args=[drift["adoptable"].pk]))

    assert "held apart" in message_of(response)
    assert not ObservationLink.objects.filter(parent=parent_b.parent).exists()


def test_adopting_for_an_observer_without_a_portal_account_says_why_not(staff, drift):
    response = staff.client.post(reverse("staff_drift_adopt", args=[drift["stranger"].pk]))

    assert "no portal account" in message_of(response)
    assert Drift.objects.get(pk=drift["stranger"].pk).state == Drift.State.OPEN


def test_mark_removed_removes_the_portal_link(staff, drift, parent_a):
    response = staff.client.post(reverse("staff_drift_mark_removed", args=[drift["gone"].pk]))

    assert message_of(response) == "The link is marked removed."
    link = ObservationLink.objects.get(pk=parent_a.own["link"].pk)
    assert (link.state, link.remove_reason) == (ObservationLink.State.REMOVED, "gone from Canvas")


def test_relink_queues_the_canvas_link(staff, drift):
    response = staff.client.post(reverse("staff_drift_relink", args=[drift["gone"].pk]))

    assert message_of(response) == "The link will be made again in Canvas in a moment."
    assert Drift.objects.get(pk=drift["gone"].pk).state == Drift.State.RELINKING
    assert "Being linked again" in staff.client.get(URL).content.decode()


def test_an_action_that_does_not_fit_the_drift_is_refused(staff, drift):
    response = staff.client.post(reverse("staff_drift_relink", args=[drift["adoptable"].pk]))

    assert "does not apply" in message_of(response)
    assert Drift.objects.get(pk=drift["adoptable"].pk).state == Drift.State.OPEN


def test_actions_take_post_only(staff, drift):
    assert staff.client.get(reverse("staff_drift_adopt", args=[drift["adoptable"].pk])).status_code == 405
    assert staff.client.get(reverse("staff_reconcile_now")).status_code == 405


# -- who may ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("persona", ["parent_a", "parent_b", "student"])
def test_families_get_403(personas, persona, drift):
    client = personas[persona].client

    assert client.get(URL).status_code == 403
    assert client.post(reverse("staff_reconcile_now")).status_code == 403
    assert client.post(reverse("staff_drift_adopt", args=[drift["adoptable"].pk])).status_code == 403
    assert client.post(reverse("staff_drift_mark_removed", args=[drift["gone"].pk])).status_code == 403
    assert not ReconciliationRun.objects.exclude(pk=drift["run"].pk).exists()
    assert Drift.objects.filter(state=Drift.State.OPEN).count() == 3


def test_anonymous_visitors_are_sent_to_sign_in(anonymous, drift):
    response = anonymous.client.get(URL)

    assert response.status_code == 302 and reverse("account_login") in response.url
    assert anonymous.client.post(reverse("staff_drift_adopt", args=[drift["adoptable"].pk])).status_code == 302
    assert Drift.objects.get(pk=drift["adoptable"].pk).state == Drift.State.OPEN


def test_staff_admins_may_use_it_too(staff_admin, drift):
    assert staff_admin.client.get(URL).status_code == 200
