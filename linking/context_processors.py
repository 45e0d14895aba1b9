"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest

from linking.staff.access import is_staff_member


def roles(request: HttpRequest) -> dict[str, bool]:
    """Whether the signed-in user is a parent, a student, school staff, or none of these.

    A missing reverse OneToOne raises RelatedObjectDoesNotExist, an AttributeError, so hasattr is the check.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_parent": False, "is_student": False, "is_staff_member": False}
    return {
        "is_parent": hasattr(user, "parent"),
        "is_student": hasattr(user, "student"),
        "is_staff_member": is_staff_member(user),
    }
