"""A second factor before any staff page: an authenticator app, and a session signed in with it.

Access itself stays with the views (``staff_required``): an anonymous visitor is sent to sign in by
``login_required``, and a signed-in user who is not staff gets the view's 403. This middleware only
stands between a staff member and the page:

1. no activated authenticator app (TOTP) yet: to allauth's set-up page, which also makes recovery codes;
2. an app, but this session was not signed in with it (a password or an emailed code alone): to
   allauth's "enter a code" page. allauth keeps the session's sign-in steps in
   ``account_authentication_methods``; its MFA forms add a ``{"method": "mfa"}`` step.

Both pages take ``next`` back to the staff page (allauth's set-up page ends at the recovery codes).
The same holds for Django's admin (``/admin/``) and anyone it lets in (``is_staff``): it shows every
account, token and audit event, and its own sign-in page hands over to allauth's (portal/urls.py).
"""

from __future__ import annotations

from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from linking.staff.access import is_staff_member


def session_used_mfa(request: HttpRequest) -> bool:
    """Whether this session's user completed a second-factor step (TOTP or a recovery code)."""
    return any(record.get("method") == "mfa" for record in get_authentication_records(request, request.user))


class StaffMfaMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._staff_prefix: str | None = None
        self._admin_prefix: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._needs_second_factor(request):
            if not is_mfa_enabled(request.user, [Authenticator.Type.TOTP]):
                return self._redirect("mfa_activate_totp", request)
            if not session_used_mfa(request):
                return self._redirect("mfa_reauthenticate", request)
        return self.get_response(request)

    def _needs_second_factor(self, request: HttpRequest) -> bool:
        if self._staff_prefix is None:
            # Resolved on first use: the URL conf is not loaded yet when middleware is built.
            self._staff_prefix, self._admin_prefix = reverse("staff_home"), reverse("admin:index")
        if request.path.startswith(self._staff_prefix):
            return is_staff_member(request.user)
        if request.path.startswith(self._admin_prefix):
            return request.user.is_authenticated and request.user.is_staff
        return False

    @staticmethod
    def _redirect(url_name: str, request: HttpRequest) -> HttpResponseRedirect:
        query = urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
        return HttpResponseRedirect(f"{reverse(url_name)}?{query}")


def record_activation_as_second_factor(sender, request, user, authenticator, **kwargs) -> None:
    """Count setting up the authenticator app as this session's second factor.

    Activation checks a code from the new app, which is the same proof a sign-in asks for; without this,
    staff who have just set the app up would be asked for another code on the very next page.
    """
    if request is not None and authenticator.type == Authenticator.Type.TOTP:
        record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type)
