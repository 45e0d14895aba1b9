"""The school's policy and its reviewers: holds before and after redeeming, approvals, declines,
retries, revocations and holds on a pair, against the simulator and the real worker."""

from __future__ import annotations

import pytest
from django.core import mail

from linking.models import LinkPolicy, LinkRequest, ObservationLink, PairHold
from linking.services.codes import pairing_code_request
from linking.services.languages import user_language_save
from linking.services.links import link_requests_submit
from linking.services.notices import link_request_rejected_send, observation_link_revoked_send
from linking.services.review import (
    link_request_approve,
    link_request_reject,
    link_request_retry,
    observation_link_revoke,
    pair_hold_create,
    pair_hold_lift,
    student_flag_set,
)
from tests.linking.test_link_requests import finished
from tests.workers import wait_for


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user(username="reviewer", email="office@school.test")


def set_policy(**fields) -> LinkPolicy:
    policy = LinkPolicy.current()
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()
    return policy


def in_state(request: LinkRequest, *states) -> LinkRequest:
    def check():
        request.refresh_from_db()
        return request if request.state in states else None

    return wait_for(check, message=f"request {request.pk} to reach {states}")


def portal_code(family, student) -> str:
    """A code made through the portal, so the portal knows its student before redeeming."""
    code = pairing_code_request(student=student, by=student.user)
    return wait_for(lambda: type(code).objects.get(pk=code.pk).code, message="the portal-made code")


def linked_in_canvas(family, parent, student) -> bool:
    parent.refresh_from_db()
    return (
        bool(parent.canvas_user_id)
        and family.admin().show_observee(parent.canvas_user_id, student.canvas_user_id) is not None
    )


def test_hold_every_request_waits_for_approval_then_links(family, reviewer):
    set_policy(mode=LinkPolicy.Mode.HOLD_ALL)
    student, parent = family.student(), family.parent()
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created

    assert (request.state, request.held_rule) == (LinkRequest.State.HELD, LinkRequest.Rule.HOLD_ALL)
    assert request.code  # not redeemed: the code is still good
    link_request_approve(link_request=request, by=reviewer)
    assert finished(request).state == LinkRequest.State.LINKED
    assert request.reviewed_by == reviewer
    assert linked_in_canvas(family, parent, student)


def test_a_watched_email_domain_holds_the_request(family):
    set_policy(mode=LinkPolicy.Mode.RULES, watched_domains="example.test\nother.test")
    student, parent = family.student(), family.parent()
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created
    assert (request.state, request.held_rule) == (LinkRequest.State.HELD, LinkRequest.Rule.WATCHED_DOMAIN)


def test_a_flagged_student_is_held_before_redeeming_when_the_portal_made_the_code(family, reviewer):
    set_policy(mode=LinkPolicy.Mode.RULES)
    student, parent = family.student(), family.parent()
    student_flag_set(student=student, flagged=True, by=reviewer)
    [request] = link_requests_submit(parent=parent, codes=[portal_code(family, student)]).created

    assert (request.state, request.held_rule, request.student) == ("held", "flagged_student", student)
    assert not linked_in_canvas(family, parent, student)


def test_a_flagged_student_found_only_by_redeeming_is_unlinked_and_held_then_approved(family, reviewer):
    set_policy(mode=LinkPolicy.Mode.RULES)
    student, parent = family.student(), family.parent(in_canvas=True)
    student_flag_set(student=student, flagged=True, by=reviewer)
    # A code made in Canvas: the portal learns whose it is only by redeeming it.
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created
    in_state(request, LinkRequest.State.HELD)

    assert (request.held_rule, request.student) == (LinkRequest.Rule.FLAGGED_STUDENT, student)
    assert not linked_in_canvas(family, parent, student)
    assert not ObservationLink.objects.filter(parent=parent).exists()
    link_request_approve(link_request=request, by=reviewer)
    assert finished(request).state == LinkRequest.State.LINKED
    assert linked_in_canvas(family, parent, student)


def test_a_student_with_enough_parents_holds_the_next_one(family):
    set_policy(mode=LinkPolicy.Mode.RULES, max_observers=1)
    student, first, second = family.student(), family.parent(), family.parent()
    [request] = link_requests_submit(parent=first, codes=[family.code_for(student)]).created
    assert finished(request).state == LinkRequest.State.LINKED
    [another] = link_requests_submit(parent=second, codes=[family.code_for(student)]).created

    assert in_state(another, LinkRequest.State.HELD).held_rule == LinkRequest.Rule.MAX_OBSERVERS
    assert not linked_in_canvas(family, second, student)


def test_a_held_pair_is_refused_at_once_when_the_portal_knows_the_student(family, reviewer):
    student, parent = family.student(), family.parent()
    pair_hold_create(student=student, parent_email=parent.email.upper(), reason="Court order 24-113", by=reviewer)
    code = portal_code(family, student)
    [request] = link_requests_submit(parent=parent, codes=[code]).created

    assert (request.state, request.failure) == (LinkRequest.State.FAILED, LinkRequest.Failure.BLOCKED)
    # The code was never redeemed, so someone else can still use it.
    other = family.parent()
    [theirs] = link_requests_submit(parent=other, codes=[code]).created
    assert finished(theirs).state == LinkRequest.State.LINKED


def test_a_held_pair_is_enforced_after_redeeming_even_when_approved(family, reviewer):
    student, parent = family.student(), family.parent(in_canvas=True)
    pair_hold_create(student=student, parent_email=parent.email, reason="Court order 24-114", by=reviewer)
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created

    # The parent has holds and the code's student is unknown: a person decides first.
    assert (request.state, request.held_rule) == (LinkRequest.State.HELD, LinkRequest.Rule.PAIR_HOLD)
    link_request_approve(link_request=request, by=reviewer)
    assert finished(request).failure == LinkRequest.Failure.BLOCKED
    assert not linked_in_canvas(family, parent, student)
    assert not ObservationLink.objects.filter(parent=parent).exists()


def test_holding_a_linked_pair_revokes_the_link_in_canvas(family, reviewer):
    student, parent = family.student(), family.parent()
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created
    finished(request)
    hold = pair_hold_create(student=student, parent_email=parent.email, reason="Court order 24-115", by=reviewer)

    link = ObservationLink.objects.get(parent=parent)
    wait_for(lambda: ObservationLink.objects.get(pk=link.pk).state == "removed", message="the revocation")
    assert not linked_in_canvas(family, parent, student)
    pair_hold_lift(hold=hold, by=reviewer, reason="Order expired")
    assert not PairHold.objects.get(pk=hold.pk).is_active
    with pytest.raises(ValueError):
        pair_hold_lift(hold=hold, by=reviewer, reason="again")


def test_declining_tells_the_parent_why(family, reviewer):
    set_policy(mode=LinkPolicy.Mode.HOLD_ALL)
    student, parent = family.student(), family.parent()
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created
    with pytest.raises(ValueError):
        link_request_reject(link_request=request, by=reviewer, reason="  ")
    link_request_reject(link_request=request, by=reviewer, reason="We could not confirm you are a guardian.")

    request.refresh_from_db()
    assert (request.state, request.code) == (LinkRequest.State.REJECTED, "")
    mail.outbox.clear()
    link_request_rejected_send(link_request=request)
    [message] = mail.outbox
    assert message.to == [parent.email]
    assert "We could not confirm you are a guardian." in message.body
    with pytest.raises(ValueError):
        link_request_approve(link_request=request, by=reviewer)


def test_a_failed_request_is_retried_once_canvas_is_back(family, reviewer):
    from datetime import timedelta

    from django.utils import timezone

    student, parent = family.student(), family.parent()
    request = LinkRequest.objects.create(
        parent=parent,
        code=family.code_for(student),
        state=LinkRequest.State.FAILED,
        failure=LinkRequest.Failure.CANVAS_UNAVAILABLE,
        finished_at=timezone.now() - timedelta(hours=1),
    )
    link_request_retry(link_request=request, by=reviewer)
    assert finished(request).state == LinkRequest.State.LINKED


def test_a_bad_code_cannot_be_retried(family, reviewer):
    parent = family.parent()
    request = LinkRequest.objects.create(parent=parent, state="failed", failure="invalid_code")
    with pytest.raises(ValueError):
        link_request_retry(link_request=request, by=reviewer)


def test_revoking_a_link_unlinks_it_and_tells_the_parent(family, reviewer):
    student, parent = family.student(), family.parent()
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created
    finished(request)
    link = ObservationLink.objects.get(parent=parent)
    with pytest.raises(ValueError):
        observation_link_revoke(link=link, by=reviewer, reason="")
    observation_link_revoke(link=link, by=reviewer, reason="Requested by the custodial parent")

    wait_for(lambda: ObservationLink.objects.get(pk=link.pk).state == "removed", message="the unlink")
    assert not linked_in_canvas(family, parent, student)
    link.refresh_from_db()
    mail.outbox.clear()
    observation_link_revoked_send(link=link)
    assert student.name in mail.outbox[0].subject
    assert "Requested by the custodial parent" in mail.outbox[0].body


def test_a_spanish_speaking_parent_is_told_in_spanish(family, reviewer):
    student, parent = family.student(), family.parent()
    user_language_save(user=parent.user, language="es")
    request = LinkRequest.objects.create(
        parent=parent, student=student, state="rejected", review_reason="No pudimos confirmar la tutela."
    )
    mail.outbox.clear()
    link_request_rejected_send(link_request=request)

    [message] = mail.outbox
    assert message.subject == "La escuela rechazó su solicitud de vínculo"
    assert "Motivo de la escuela: No pudimos confirmar la tutela." in message.body
