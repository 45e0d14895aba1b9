"""A signed-in user's saved language (``LanguagePreference``) applied to their session.

Django's ``LocaleMiddleware`` picks a page's language from the language cookie, then the browser's
Accept-Language; anonymous visitors get just that. At sign-in the user's saved language is copied into
the session (``language_restore_on_sign_in``, on ``user_logged_in``), so that no page needs a query
for it; ``SavedLanguageMiddleware`` then makes it the request's language and, when the browser's
cookie says otherwise, sets the cookie, so that the choice outlives the session on that browser too.
The header's switch (``linking.views.language_set``) saves a new choice and updates the session.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from linking.models import LanguagePreference

SESSION_KEY = "portal_language"


def session_language_set(request: HttpRequest, language: str) -> None:
    """Make ``language`` this session's language from the next request on (and this response's cookie)."""
    request.session[SESSION_KEY] = language


def language_restore_on_sign_in(sender, request: HttpRequest | None, user: AbstractBaseUser, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    # Read afresh, not through the user object, which may be one a caller has held since before a switch.
    saved = LanguagePreference.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
    if saved:
        session_language_set(request, saved)


class SavedLanguageMiddleware:
    """After AuthenticationMiddleware (it reads the user) and LocaleMiddleware (it overrides its choice)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        saved = self._saved(request)
        if saved and saved != translation.get_language():
            translation.activate(saved)
            request.LANGUAGE_CODE = saved
        response = self.get_response(request)
        # Read again: the request may have signed the user in, out, or switched their language.
        saved = self._saved(request)
        cookie = settings.LANGUAGE_COOKIE_NAME
        if saved and request.COOKIES.get(cookie) != saved and cookie not in response.cookies:
            response.set_cookie(
                cookie,
                saved,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response

    @staticmethod
    def _saved(request: HttpRequest) -> str:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return ""
        return request.session.get(SESSION_KEY, "")
