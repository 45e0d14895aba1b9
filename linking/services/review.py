"""What school staff do to requests, links and pairs: approve, reject, retry, revoke, hold, flag.

Each service checks that the action applies (``ValueError`` with a plain sentence when it does not),
writes its change and its audit event in one transaction, and queues any Canvas work on commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone, translation

from linking.audit.services import audit_event_record
from linking.models import LinkRequest, ObservationLink, PairHold, Student
from linking.services.links import link_request_subject


def _locked(link_request: LinkRequest) -> LinkRequest:
    return (
        LinkRequest.objects.select_for_update(of=("self",))
        .select_related("parent__user", "student")
        .get(pk=link_request.pk)
    )


@transaction.atomic
def link_request_approve(*, link_request: LinkRequest, by: AbstractBaseUser) -> None:
    """Send a held request to the worker. Holds on the pair still apply when it links."""
    from linking.tasks import link_request_process

    request = _locked(link_request)
    if request.state != LinkRequest.State.HELD:
        raise ValueError("Only a request waiting for review can be approved.")
    now = timezone.now()
    request.state = LinkRequest.State.WAITING
    request.reviewed_by = by
    request.reviewed_at = now
    request.save(update_fields=["state", "reviewed_by", "reviewed_at", "updated_at"])
    audit_event_record(
        action="link_request.approved",
        actor=by,
        actor_label="staff",
        subject=link_request_subject(request),
        data={"held_rule": request.held_rule},
    )
    link_request_process.delay_on_commit(str(request.pk))


def link_requests_approve(*, link_requests: Iterable[LinkRequest], by: AbstractBaseUser) -> int:
    """Approve every held request among these; returns how many were approved."""
    approved = 0
    for request in link_requests:
        try:
            link_request_approve(link_request=request, by=by)
        except ValueError:
            continue  # no longer held (another reviewer was quicker): nothing to do
        approved += 1
    return approved


@transaction.atomic
def link_request_reject(*, link_request: LinkRequest, by: AbstractBaseUser, reason: str) -> None:
    """Decline a held request; the parent is emailed, in their language, with the reason."""
    from linking.tasks import link_request_rejected_notify

    reason = reason.strip()
    if not reason:
        raise ValueError("Say why the request is declined; the parent will read it.")
    request = _locked(link_request)
    if request.state != LinkRequest.State.HELD:
        raise ValueError("Only a request waiting for review can be declined.")
    now = timezone.now()
    request.state = LinkRequest.State.REJECTED
    request.reviewed_by = by
    request.reviewed_at = now
    request.review_reason = reason
    request.finished_at = now
    request.code = ""
    request.save(
        update_fields=["state", "reviewed_by", "reviewed_at", "review_reason", "finished_at", "code", "updated_at"]
    )
    audit_event_record(
        action="link_request.rejected",
        actor=by,
        actor_label="staff",
        subject=link_request_subject(request),
        outcome="rejected",
        data={"held_rule": request.held_rule},
        personal={"reason": reason},
    )
    # For a parent who never chose a language: the one the staff member who declined is using.
    link_request_rejected_notify.delay_on_commit(str(request.pk), translation.get_language() or "")


@transaction.atomic
def link_request_retry(*, link_request: LinkRequest, by: AbstractBaseUser) -> LinkRequest:
    """Give a failed request another attempt, when the failure is one that can mend (not a bad code)."""
    from linking.tasks import link_request_process

    request = _locked(link_request)
    if request.state != LinkRequest.State.FAILED or request.failure not in LinkRequest.RETRYABLE_FAILURES:
        raise ValueError("Only a request that failed because of Canvas or an unclear account can be retried.")
    if not request.can_retry:
        raise ValueError("This request no longer has its code; the parent needs a new one.")
    previous = request.failure
    request.state = LinkRequest.State.WAITING
    request.failure = ""
    request.finished_at = None
    request.save(update_fields=["state", "failure", "finished_at", "updated_at"])
    audit_event_record(
        action="link_request.retried",
        actor=by,
        actor_label="staff",
        subject=link_request_subject(request),
        data={"after": previous},
    )
    link_request_process.delay_on_commit(str(request.pk))
    return request


@transaction.atomic
def observation_link_revoke(*, link: ObservationLink, by: AbstractBaseUser, reason: str) -> None:
    """Remove a parent's link (Canvas unlink by the worker) and tell the parent."""
    from linking.tasks import observation_link_revoked_notify
    from linking.tasks import observation_link_unlink as unlink_task

    reason = reason.strip()
    if not reason:
        raise ValueError("Say why the link is removed.")
    changed = ObservationLink.objects.filter(pk=link.pk, state=ObservationLink.State.ACTIVE).update(
        state=ObservationLink.State.REMOVING,
        removed_by=by,
        remove_reason=reason,
        claimed_at=None,
        claimed_by="",
        updated_at=timezone.now(),
    )
    if not changed:
        raise ValueError("This link is already being removed, or is gone.")
    audit_event_record(
        action="link.revoked",
        actor=by,
        actor_label="staff",
        subject={"observation_link": str(link.pk), "parent": link.parent_id, "student": link.student_id},
        personal={"reason": reason},
    )
    unlink_task.delay_on_commit(str(link.pk))
    observation_link_revoked_notify.delay_on_commit(str(link.pk), translation.get_language() or "")


@transaction.atomic
def pair_hold_create(*, student: Student, parent_email: str, reason: str, by: AbstractBaseUser) -> PairHold:
    """Forbid links between this parent (by email) and this student; current links are revoked."""
    reason = reason.strip()
    if not reason:
        raise ValueError("Say why the pair is held (for example, the court order's reference).")
    email = parent_email.strip().lower()
    if PairHold.objects.filter(student=student, parent_email=email, lifted_at__isnull=True).exists():
        raise ValueError("This parent and student are already held apart.")
    hold = PairHold.objects.create(student=student, parent_email=email, reason=reason, created_by=by)
    audit_event_record(
        action="pair_hold.created",
        actor=by,
        actor_label="staff",
        subject={"pair_hold": str(hold.pk), "student": student.pk},
        personal={"parent_email": email, "reason": reason},
    )
    current = ObservationLink.objects.filter(
        student=student, parent__user__email__iexact=email, state=ObservationLink.State.ACTIVE
    )
    for link in current:
        observation_link_revoke(link=link, by=by, reason=f"Hold: {reason}")
    for request in LinkRequest.objects.filter(
        student=student, parent__user__email__iexact=email, state=LinkRequest.State.HELD
    ):
        link_request_reject(link_request=request, by=by, reason=reason)
    return hold


@transaction.atomic
def pair_hold_lift(*, hold: PairHold, by: AbstractBaseUser, reason: str) -> None:
    reason = reason.strip()
    if not reason:
        raise ValueError("Say why the hold is lifted.")
    changed = PairHold.objects.filter(pk=hold.pk, lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=by, lift_reason=reason
    )
    if not changed:
        raise ValueError("This hold was already lifted.")
    audit_event_record(
        action="pair_hold.lifted",
        actor=by,
        actor_label="staff",
        subject={"pair_hold": str(hold.pk), "student": hold.student_id},
        personal={"reason": reason},
    )


@transaction.atomic
def student_flag_set(*, student: Student, flagged: bool, by: AbstractBaseUser) -> None:
    """Flag a student whose new links must be reviewed (with the "flagged" rule on), or unflag."""
    if Student.objects.filter(pk=student.pk).update(flagged=flagged):
        student.flagged = flagged
    audit_event_record(
        action="student.flagged" if flagged else "student.unflagged",
        actor=by,
        actor_label="staff",
        subject={"student": student.pk},
    )
