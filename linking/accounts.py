"""allauth's account flows fitted to the portal's people: where each lands, and how each is named.

A parent who confirms their email, or signs in, goes straight to their children; a student to their
codes; staff to the console. A ``next`` (the "Add a child" link a QR code opens) still comes first:
allauth follows it before asking the adapter.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.urls import reverse

from linking.staff.access import is_staff_member


def user_display(user: AbstractBaseUser) -> str:
    """A person as allauth names them in messages ("Signed in as …"): their name, else their email.

    Usernames are made up from emails or Canvas ids and never typed, so they are never shown.
    """
    for role in ("parent", "student"):
        person = getattr(user, role, None)  # a missing one-to-one raises an AttributeError
        if person is not None and person.name:
            return person.name
    return user.email or user.get_username()


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request: HttpRequest) -> str:
        user = request.user
        if hasattr(user, "parent"):
            return reverse("parent_home")
        if hasattr(user, "student"):
            return reverse("student_home")
        if is_staff_member(user):
            return reverse("staff_home")
        return super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        # Signing up signs a parent in once their email is confirmed: the same landing as a sign-in.
        if request.user.is_authenticated:
            return self.get_login_redirect_url(request)
        return super().get_signup_redirect_url(request)
