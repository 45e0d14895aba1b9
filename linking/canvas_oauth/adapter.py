"""How a Canvas sign-in becomes a portal student: signed up without a form, a password or an email.

Parents' accounts are untouched: they keep email sign-in with mandatory verification, and a Canvas
account is never attached to one (not by a matching email, not through "connect").
"""

from __future__ import annotations

import functools

import requests
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.utils import user_username
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.base import AuthProcess
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from linking.services.people import student_upsert_from_canvas

from .provider import CanvasProvider


def is_canvas(sociallogin: SocialLogin) -> bool:
    return sociallogin.account.provider == CanvasProvider.id


def student_landing_url() -> str | None:
    """Where a student lands after signing in: the student page once it exists, else the default."""
    try:
        return reverse("student_home")
    except NoReverseMatch:
        return None


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        if not is_canvas(sociallogin):
            return
        if sociallogin.state.get("process") == AuthProcess.CONNECT:
            # A parent who knows their child's Canvas password would otherwise become that student.
            messages.error(request, _("Sign in with Canvas is for students; it cannot be added to an account."))
            raise ImmediateHttpResponse(HttpResponseRedirect(reverse("socialaccount_connections")))
        landing = student_landing_url()
        if landing and not sociallogin.state.get("next"):
            sociallogin.state["next"] = landing
        if sociallogin.is_existing:
            self._record_student(sociallogin)

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        if is_canvas(sociallogin):
            return True
        return super().is_auto_signup_allowed(request, sociallogin)

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form=None):
        if is_canvas(sociallogin):
            # Usernames are never typed (parents sign in by email), only unique: name it after the Canvas id.
            username = get_account_adapter(request).generate_unique_username([f"canvas-{sociallogin.account.uid}"])
            user_username(sociallogin.user, username)
        user = super().save_user(request, sociallogin, form)  # with an unusable password
        if is_canvas(sociallogin):
            self._record_student(sociallogin)
        return user

    def get_requests_session(self) -> requests.Session:
        # allauth's own calls (the token exchange) get the same timeouts as every other Canvas call.
        session = requests.Session()
        session.request = functools.partial(
            session.request, timeout=(settings.CANVAS_TIMEOUT_CONNECT, settings.CANVAS_TIMEOUT_READ)
        )
        return session

    @staticmethod
    def _record_student(sociallogin: SocialLogin) -> None:
        student_upsert_from_canvas(
            canvas_user_id=int(sociallogin.account.uid),
            name=sociallogin.account.extra_data.get("name") or "",
            user=sociallogin.user,
        )
