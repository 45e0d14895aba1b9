"""Holds on a parent and a student, which every path that links must honour."""

from __future__ import annotations

from linking.models import PairHold, Parent, Student


def pair_is_held(*, student: Student, parent_email: str) -> bool:
    """Whether staff forbid linking this parent (by email) to this student."""
    return PairHold.objects.filter(
        student=student, parent_email=parent_email.strip().lower(), lifted_at__isnull=True
    ).exists()


def pairs_held(*, student_ids: list[int], parent_emails: list[str]) -> set[tuple[int, str]]:
    """The (student id, parent email) pairs among these that staff forbid linking: one query for a batch."""
    return set(
        PairHold.objects.filter(
            student_id__in=student_ids,
            parent_email__in={email.strip().lower() for email in parent_emails},
            lifted_at__isnull=True,
        ).values_list("student_id", "parent_email")
    )


def parent_has_holds(parent: Parent) -> bool:
    """Whether any student is held away from this parent (their codes' students are unknown until redeemed)."""
    return PairHold.objects.filter(parent_email=parent.email.strip().lower(), lifted_at__isnull=True).exists()
