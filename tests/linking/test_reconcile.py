"""Reconciliation against a simulator seeded with drift in both directions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from linking.audit.models import AuditEvent
from linking.models import Drift, LinkRequest, ObservationLink, PairHold, Parent, ReconciliationRun, Student
from linking.services.links import link_requests_submit
from linking.services.reconcile import (
    DriftRefused,
    drift_adopt,
    drift_mark_removed,
    drift_relink,
    reconciliation_request,
    reconciliation_run,
)
from linking.tasks import reconcile_run
from tests.workers import wait_for


# -- building the drift ---------------------------------------------------------------------------
def linked_through_the_portal(family, student):
    """A parent linked to ``student`` by the real flow: a code, the worker, Canvas."""
    parent = family.parent()
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created
    wait_for(lambda: LinkRequest.objects.get(pk=request.pk).state == LinkRequest.State.LINKED, message="the link")
    parent.refresh_from_db()
    return parent


def known_in_canvas(family, **kwargs):
    """A portal parent with a Canvas account the portal has already found."""
    parent = family.parent(in_canvas=True, **kwargs)
    Parent.objects.filter(pk=parent.pk).update(canvas_user_id=parent.canvas["id"])
    parent.refresh_from_db()
    return parent


class Drifted:
    """Drift both ways:

    * ``direct``: a portal parent the school linked to a portal student in Canvas, past the portal;
    * ``new_student``: the same parent linked in Canvas to a student the portal has never seen;
    * ``stranger``: an observer with no portal account, linked in Canvas to a portal student;
    * ``gone``: a link the portal made that was then removed in Canvas.
    """

    def __init__(self, family):
        admin = family.admin()
        self.student, self.other_student = family.student(), family.student()
        self.parent = known_in_canvas(family)
        admin.link(self.parent.canvas_user_id, self.student.canvas_user_id)
        self.unknown_student = family.sim.make_user(student=True)
        admin.link(self.parent.canvas_user_id, self.unknown_student["id"])
        self.stranger = family.sim.make_user(name="Sam Stranger")
        admin.link(self.stranger["id"], self.other_student.canvas_user_id)
        self.gone_parent = linked_through_the_portal(family, self.other_student)
        self.gone_link = ObservationLink.objects.get(parent=self.gone_parent)
        assert admin.unlink(self.gone_parent.canvas_user_id, self.other_student.canvas_user_id)

    def drift(self, **filters) -> Drift:
        return Drift.objects.get(state=Drift.State.OPEN, **filters)


@pytest.fixture
def staff(transactional_db):
    return get_user_model().objects.create_user(username="office", email="office@school.test")


def run_now() -> ReconciliationRun:
    run = ReconciliationRun.objects.create(state=ReconciliationRun.State.RUNNING)
    reconciliation_run(run=run)
    run.refresh_from_db()
    return run


def open_drift() -> set[tuple]:
    return set(
        Drift.objects.filter(state=Drift.State.OPEN).values_list("kind", "canvas_observer_id", "canvas_student_id")
    )


# -- finding drift --------------------------------------------------------------------------------
def test_it_finds_drift_in_both_directions_with_counts(family):
    seeded = Drifted(family)

    run = run_now()

    assert run.state == ReconciliationRun.State.DONE
    assert open_drift() == {
        ("in_canvas_only", seeded.parent.canvas_user_id, seeded.student.canvas_user_id),
        ("in_canvas_only", seeded.parent.canvas_user_id, seeded.unknown_student["id"]),
        ("in_canvas_only", seeded.stranger["id"], seeded.other_student.canvas_user_id),
        ("in_portal_only", seeded.gone_parent.canvas_user_id, seeded.other_student.canvas_user_id),
    }
    assert run.counts == {
        "parents_checked": 2,
        "students_checked": 2,
        "missing_in_portal": 3,
        "missing_in_canvas": 1,
        "canvas_calls": 4,
    }
    direct = seeded.drift(canvas_student_id=seeded.student.canvas_user_id)
    assert (direct.parent, direct.student, direct.root_account_ids) == (seeded.parent, seeded.student, [1])
    assert seeded.drift(canvas_student_id=seeded.unknown_student["id"]).student is None
    stranger = seeded.drift(canvas_observer_id=seeded.stranger["id"])
    assert (stranger.parent, stranger.student, stranger.observer_name) == (None, seeded.other_student, "Sam Stranger")
    assert seeded.drift(kind=Drift.Kind.IN_PORTAL_ONLY).observation_link == seeded.gone_link
    event = AuditEvent.objects.get(action="reconciliation.finished")
    assert (event.subject, event.outcome, event.data) == ({"reconciliation_run": str(run.pk)}, "drift", run.counts)
    assert len(event.canvas_calls) == 4
    # Finding drift changes no link: only staff resolve it.
    assert ObservationLink.objects.filter(method=ObservationLink.Method.ADOPTED).count() == 0


def test_it_finds_nothing_when_the_portal_and_canvas_agree(family):
    student = family.student()
    linked_through_the_portal(family, student)

    run = run_now()

    assert open_drift() == set()
    assert (run.counts["missing_in_portal"], run.counts["missing_in_canvas"]) == (0, 0)
    assert AuditEvent.objects.get(action="reconciliation.finished").outcome == "in_step"


def test_a_link_being_removed_is_not_drift(family):
    student = family.student()
    parent = linked_through_the_portal(family, student)
    # The parent asked to remove it and the unlink task has not run yet: Canvas still has it.
    ObservationLink.objects.filter(parent=parent).update(state=ObservationLink.State.REMOVING)

    run_now()

    assert open_drift() == set()


# -- resolving it ---------------------------------------------------------------------------------
def test_it_adopts_a_link_made_in_canvas_and_audits_it(family, staff):
    seeded = Drifted(family)
    run_now()
    drift = seeded.drift(canvas_student_id=seeded.student.canvas_user_id)

    [link] = drift_adopt(drift=drift, by=staff)

    assert (link.parent, link.student, link.method, link.state, link.root_account_id, link.created_by) == (
        seeded.parent,
        seeded.student,
        ObservationLink.Method.ADOPTED,
        ObservationLink.State.ACTIVE,
        1,
        staff,
    )
    drift.refresh_from_db()
    assert (drift.state, drift.resolved_by) == (Drift.State.ADOPTED, staff)
    event = AuditEvent.objects.get(action="link.adopted")
    assert (event.actor_id, event.actor_label, event.outcome) == (staff.pk, "staff", "adopted")
    assert event.subject["drift"] == str(drift.pk)
    assert event.subject["parent"] == seeded.parent.pk


def test_adopting_a_link_to_a_student_new_to_the_portal_adds_the_student(family, staff):
    seeded = Drifted(family)
    run_now()

    [link] = drift_adopt(drift=seeded.drift(canvas_student_id=seeded.unknown_student["id"]), by=staff)

    assert link.student == Student.objects.get(canvas_user_id=seeded.unknown_student["id"])
    assert link.student.name == seeded.unknown_student["name"]


def test_a_link_of_an_observer_without_a_portal_account_cannot_be_adopted(family, staff):
    seeded = Drifted(family)
    run_now()
    drift = seeded.drift(canvas_observer_id=seeded.stranger["id"])

    with pytest.raises(DriftRefused, match="no portal account"):
        drift_adopt(drift=drift, by=staff)

    assert Drift.objects.get(pk=drift.pk).state == Drift.State.OPEN
    assert not AuditEvent.objects.filter(action="link.adopted").exists()


def test_a_held_pair_cannot_be_adopted(family, staff):
    seeded = Drifted(family)
    run_now()
    PairHold.objects.create(student=seeded.student, parent_email=seeded.parent.email, reason="court order")
    drift = seeded.drift(canvas_student_id=seeded.student.canvas_user_id)

    with pytest.raises(DriftRefused, match="held"):
        drift_adopt(drift=drift, by=staff)

    assert not ObservationLink.objects.filter(parent=seeded.parent).exists()
    assert Drift.objects.get(pk=drift.pk).state == Drift.State.OPEN


def test_it_marks_a_link_gone_from_canvas_removed(family, staff):
    seeded = Drifted(family)
    run_now()
    drift = seeded.drift(kind=Drift.Kind.IN_PORTAL_ONLY)

    drift_mark_removed(drift=drift, by=staff)

    seeded.gone_link.refresh_from_db()
    assert (seeded.gone_link.state, seeded.gone_link.remove_reason, seeded.gone_link.removed_by) == (
        ObservationLink.State.REMOVED,
        "gone from Canvas",
        staff,
    )
    assert Drift.objects.get(pk=drift.pk).state == Drift.State.MARKED_REMOVED
    assert AuditEvent.objects.get(action="link.marked_removed").outcome == "removed"
    with pytest.raises(DriftRefused, match="already resolved"):
        drift_mark_removed(drift=drift, by=staff)


def test_it_links_again_in_canvas_through_the_worker(family, staff):
    seeded = Drifted(family)
    run_now()
    drift = seeded.drift(kind=Drift.Kind.IN_PORTAL_ONLY)

    drift_relink(drift=drift, by=staff)

    wait_for(lambda: Drift.objects.get(pk=drift.pk).state == Drift.State.RELINKED, message="the relink")
    observer, student = seeded.gone_parent.canvas_user_id, seeded.other_student.canvas_user_id
    assert family.admin().show_observee(observer, student) is not None
    assert ObservationLink.objects.get(pk=seeded.gone_link.pk).state == ObservationLink.State.ACTIVE
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="link.relink")] == [
        "link.relink_requested",
        "link.relinked",
    ]
    assert AuditEvent.objects.get(action="link.relinked").canvas_calls[0]["method"] == "PUT"


def test_a_held_pair_cannot_be_linked_again(family, staff):
    seeded = Drifted(family)
    run_now()
    PairHold.objects.create(student=seeded.other_student, parent_email=seeded.gone_parent.email, reason="order")
    drift = seeded.drift(kind=Drift.Kind.IN_PORTAL_ONLY)

    with pytest.raises(DriftRefused, match="held"):
        drift_relink(drift=drift, by=staff)

    assert Drift.objects.get(pk=drift.pk).state == Drift.State.OPEN
    assert family.admin().show_observee(seeded.gone_parent.canvas_user_id, seeded.other_student.canvas_user_id) is None


def test_a_second_run_after_resolutions_finds_no_drift(family, staff):
    seeded = Drifted(family)
    first = run_now()
    drift_adopt(drift=seeded.drift(canvas_student_id=seeded.student.canvas_user_id), by=staff)
    drift_adopt(drift=seeded.drift(canvas_student_id=seeded.unknown_student["id"]), by=staff)
    drift_mark_removed(drift=seeded.drift(kind=Drift.Kind.IN_PORTAL_ONLY), by=staff)
    # The stranger cannot be adopted: the school removes that link in Canvas.
    family.admin().unlink(seeded.stranger["id"], seeded.other_student.canvas_user_id)

    second = run_now()

    assert open_drift() == set()
    assert (second.counts["missing_in_portal"], second.counts["missing_in_canvas"]) == (0, 0)
    assert second.counts["students_checked"] == 3  # the adopted student is now known
    # What the first run left open is replaced by the second run's findings.
    assert not Drift.objects.filter(run=first, state=Drift.State.OPEN).exists()
    assert Drift.objects.filter(run=first, state=Drift.State.SUPERSEDED).count() == 1


def test_a_new_run_supersedes_the_open_drift_of_the_last(family):
    seeded = Drifted(family)
    first = run_now()
    second = run_now()

    assert not Drift.objects.filter(run=first, state=Drift.State.OPEN).exists()
    assert Drift.objects.filter(run=second, state=Drift.State.OPEN).count() == 4
    assert seeded.drift(kind=Drift.Kind.IN_PORTAL_ONLY).run == second


# -- the task -------------------------------------------------------------------------------------
def test_a_run_asked_for_by_staff_is_done_by_the_worker(family, staff):
    seeded = Drifted(family)

    run, created = reconciliation_request(by=staff)

    assert created
    wait_for(lambda: ReconciliationRun.objects.get(pk=run.pk).state == ReconciliationRun.State.DONE, message="run")
    run.refresh_from_db()
    assert (run.counts["missing_in_portal"], run.counts["missing_in_canvas"]) == (3, 1)
    assert run.attempts == 1 and run.started_at is not None and run.finished_at is not None
    assert seeded.drift(kind=Drift.Kind.IN_PORTAL_ONLY).run == run
    assert AuditEvent.objects.get(action="reconciliation.requested").actor_id == staff.pk


def test_a_second_request_while_one_is_under_way_makes_no_second_run(transactional_db, staff):
    ReconciliationRun.objects.create(state=ReconciliationRun.State.RUNNING)

    run, created = reconciliation_request(by=staff)

    assert not created
    assert ReconciliationRun.objects.count() == 1


def test_the_nightly_beat_asks_for_a_run_that_the_worker_does(family):
    Drifted(family)

    reconcile_run.delay()

    run = wait_for(
        lambda: ReconciliationRun.objects.filter(state=ReconciliationRun.State.DONE).first(), message="the run"
    )
    assert run.requested_by is None
    assert run.counts["missing_in_portal"] == 3
    assert AuditEvent.objects.get(action="reconciliation.finished").actor_label == "system"


def test_a_finished_run_is_not_claimed_again(transactional_db):
    from linking.tasks import claim_reconciliation_run

    run = ReconciliationRun.objects.create()
    assert claim_reconciliation_run(str(run.pk), task_id="task-1") is not None
    assert claim_reconciliation_run(str(run.pk), task_id="task-2") is None
    ReconciliationRun.objects.filter(pk=run.pk).update(state=ReconciliationRun.State.DONE)
    assert claim_reconciliation_run(str(run.pk), task_id="task-1") is None
