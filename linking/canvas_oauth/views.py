"""The OAuth2 endpoints of the configured Canvas, and the profile of the student who signed in.

URLs are built from ``settings.CANVAS_BASE_URL`` on every request, never at import, so that a test can
point the portal at a simulator on a random port.
"""

from __future__ import annotations

from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base import ProviderException
from allauth.socialaccount.providers.oauth2.views import OAuth2Adapter, OAuth2CallbackView, OAuth2LoginView
from django.conf import settings
from django.http import Http404

from linking.canvas import CanvasError, canvas_client

TOKEN_PATH = "/login/oauth2/token"  # noqa: S105 - a URL path, not a secret


def canvas_url(path: str) -> str:
    return settings.CANVAS_BASE_URL.rstrip("/") + path


class CanvasOAuth2Adapter(OAuth2Adapter):
    provider_id = "canvas"

    @property
    def authorize_url(self) -> str:
        return canvas_url("/login/oauth2/auth")

    @property
    def access_token_url(self) -> str:
        return canvas_url(TOKEN_PATH)

    def complete_login(self, request, app, token, **kwargs):
        # The token response carries a short `user` too; the profile is the full User object.
        try:
            profile = canvas_client(token.token).get_user("self")
        except CanvasError as exc:
            raise ProviderException(f"Canvas did not return the student's profile: {exc}") from exc
        return self.get_provider().sociallogin_from_response(request, profile)


class _NotFoundUnlessConfigured:
    """Without a client id there is no Canvas app, and allauth would answer its URLs with a 500."""

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except SocialApp.DoesNotExist:
            raise Http404("Sign in with Canvas is not configured.") from None


class CanvasLoginView(_NotFoundUnlessConfigured, OAuth2LoginView):
    pass


class CanvasCallbackView(_NotFoundUnlessConfigured, OAuth2CallbackView):
    pass


oauth2_login = CanvasLoginView.adapter_view(CanvasOAuth2Adapter)
oauth2_callback = CanvasCallbackView.adapter_view(CanvasOAuth2Adapter)
