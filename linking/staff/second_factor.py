"""allauth's "enter your authenticator code" page, kept whole when a POST carries no code.

allauth takes a POST without a ``code`` for a security key's answer; with security keys off (they are
not in ``MFA_SUPPORTED_TYPES``) it then shows the page again with no code field and no error, a dead
end. Here every POST is the code form, so a missing code is "This field is required." beside the field.
"""

from __future__ import annotations

from allauth.mfa import app_settings
from allauth.mfa.base.views import AuthenticateView


class CodeAuthenticateView(AuthenticateView):
    def _build_forms(self):
        if self.request.method == "POST" and "webauthn" not in app_settings.SUPPORTED_TYPES:
            self.webauthn_form = None
            self.auth_form = self.get_form_class()(user=self.stage.login.user, data=self.request.POST)
            return self.auth_form
        return super()._build_forms()


authenticate = CodeAuthenticateView.as_view()
