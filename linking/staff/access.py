"""Who may open staff pages.

"School staff" (permission ``linking.review_link_requests``) review requests, revoke links and hold
pairs; "staff admins" (``linking.manage_staff``) also set the link policy and manage staff accounts.
Every staff page also requires a second factor (allauth MFA), checked by ``StaffMfaMiddleware``.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

REVIEW = "linking.review_link_requests"
MANAGE = "linking.manage_staff"


def is_staff_member(user) -> bool:
    return user.is_authenticated and (user.has_perm(REVIEW) or user.has_perm(MANAGE))


def staff_required(view):
    """School staff and staff admins."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.has_perm(REVIEW):
            raise PermissionDenied("School staff only.")
        return view(request, *args, **kwargs)

    wrapper.staff_permission = REVIEW
    return wrapper


def staff_admin_required(view):
    """Staff admins only."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.has_perm(MANAGE):
            raise PermissionDenied("Staff admins only.")
        return view(request, *args, **kwargs)

    wrapper.staff_permission = MANAGE
    return wrapper
