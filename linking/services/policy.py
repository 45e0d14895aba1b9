"""The school's link policy: which requests wait for a person before they are linked.

A pairing code names its student only when Canvas redeems it, and redeeming links. So the rules are
applied twice: before redeeming, with what is known (the parent; the student too when the code was
made through the portal), and again once Canvas has named the student, when a rule that fires then
means the fresh link is removed at once and the request waits for review.
"""

from __future__ import annotations

from linking.models import LinkPolicy, LinkRequest, ObservationLink, PairingCode, Parent, Student
from linking.services.holds import pair_is_held, parent_has_holds

Rule = LinkRequest.Rule


def student_for_code(code: str) -> Student | None:
    """The student whose portal-made code this is; None for codes made in Canvas itself."""
    from django.utils import timezone

    pairing_code = (
        PairingCode.objects.filter(code=code, state=PairingCode.State.ACTIVE, expires_at__gt=timezone.now())
        .select_related("student")
        .first()
    )
    return pairing_code.student if pairing_code else None


def rule_before_redeem(*, parent: Parent, student: Student | None, policy: LinkPolicy) -> str:
    """The rule that holds a new request before its code is redeemed, or ``""``."""
    if student is None and parent_has_holds(parent):
        # Some child is held away from this parent and the code could be theirs: a person decides.
        return Rule.PAIR_HOLD
    if policy.mode == LinkPolicy.Mode.HOLD_ALL:
        return Rule.HOLD_ALL
    if policy.mode == LinkPolicy.Mode.AT_ONCE:
        return ""
    if parent.email.rsplit("@", 1)[-1].lower() in policy.watched_domain_set():
        return Rule.WATCHED_DOMAIN
    return rule_for_student(parent=parent, student=student, policy=policy) if student else ""


def rule_for_student(*, parent: Parent, student: Student, policy: LinkPolicy) -> str:
    """The student-side rules, which can only be applied once the student is known."""
    if policy.mode != LinkPolicy.Mode.RULES:
        return ""
    if policy.hold_flagged_students and student.flagged:
        return Rule.FLAGGED_STUDENT
    if policy.max_observers is not None:
        others = (
            ObservationLink.objects.current()
            .filter(student=student)
            .exclude(parent=parent)
            .values("parent")
            .distinct()
            .count()
        )
        if others >= policy.max_observers:
            return Rule.MAX_OBSERVERS
    return ""


def is_blocked(*, parent: Parent, student: Student) -> bool:
    return pair_is_held(student=student, parent_email=parent.email)
