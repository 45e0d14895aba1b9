"""A signed-in student's Canvas access token, refreshed when it is about to expire.

Called from Celery workers, which act for a student long after the sign-in: there is no request here.
Tokens never reach a log line or an exception message.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialApp, SocialToken
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from linking.canvas import CanvasError, CanvasNotAuthorized, CanvasThrottled, CanvasTransient
from linking.canvas.errors import is_throttled
from linking.canvas.transport import nothing_was_sent

from .provider import CanvasProvider
from .views import TOKEN_PATH, canvas_url

logger = logging.getLogger(__name__)

# Refresh a little early, so that a token handed out now still works for the call it is wanted for.
REFRESH_MARGIN = timedelta(seconds=60)


def student_access_token(user: AbstractBaseUser) -> str | None:
    """The student's current Canvas access token, or None when they must sign in with Canvas again.

    A token that expires within a minute is refreshed first (Canvas keeps the refresh token, so the
    stored one stays). None: no token, or Canvas refused the refresh (``invalid_grant``: revoked, or
    the student's Canvas login is gone). Raises :class:`CanvasTransient` or :class:`CanvasThrottled`
    when Canvas could not be asked (the task retries), :class:`CanvasNotAuthorized` when Canvas refuses
    the portal's own client credentials.
    """
    token = _latest_token(SocialToken.objects.filter(account__user=user))
    if token is None:
        return None
    if not _expires_soon(token):
        return token.token
    if not token.token_secret:
        return token.token if _still_valid(token) else None
    with transaction.atomic():
        # Canvas replaces the access token on refresh; two workers refreshing at once would each
        # invalidate the other's. The second to get the row finds it fresh and uses it.
        token = _latest_token(SocialToken.objects.select_for_update().filter(pk=token.pk))
        if token is None:
            return None
        if not _expires_soon(token):
            return token.token
        answer = _refresh(token.token_secret)
        if answer is None:
            logger.warning("Canvas refused to refresh the token of user %s; they must sign in again", user.pk)
            return None
        token.token = answer["access_token"]
        expires_in = answer.get("expires_in")
        token.expires_at = timezone.now() + timedelta(seconds=int(expires_in)) if expires_in else None
        update_fields = ["token", "expires_at"]
        if answer.get("refresh_token"):
            token.token_secret = answer["refresh_token"]
            update_fields.append("token_secret")
        token.save(update_fields=update_fields)
    logger.info("Refreshed the Canvas token of user %s", user.pk)
    return token.token


def _latest_token(tokens) -> SocialToken | None:
    return tokens.filter(account__provider=CanvasProvider.id).order_by("-pk").first()


def _expires_soon(token: SocialToken) -> bool:
    return token.expires_at is not None and token.expires_at <= timezone.now() + REFRESH_MARGIN


def _still_valid(token: SocialToken) -> bool:
    return token.expires_at is None or token.expires_at > timezone.now()


def _refresh(refresh_token: str) -> dict | None:
    """``POST /login/oauth2/token`` with ``grant_type=refresh_token``; None when Canvas says invalid_grant."""
    app = _canvas_app()
    try:
        response = requests.post(
            canvas_url(TOKEN_PATH),
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            # HTTP Basic, which Canvas accepts; passing auth also keeps requests from applying .netrc.
            auth=(app.client_id, app.secret),
            headers={"Accept": "application/json"},
            timeout=(settings.CANVAS_TIMEOUT_CONNECT, settings.CANVAS_TIMEOUT_READ),
        )
    except requests.RequestException as exc:
        raise CanvasTransient(
            may_have_happened=not nothing_was_sent(exc),
            messages=[type(exc).__name__],
            method="POST",
            path=TOKEN_PATH,
        ) from exc
    if response.status_code == 200:
        answer = _json(response)
        if isinstance(answer.get("access_token"), str) and answer["access_token"]:
            return answer
    error = _json(response).get("error", "")
    details = {"status": response.status_code, "messages": [str(error)], "method": "POST", "path": TOKEN_PATH}
    if response.status_code == 400 and error == "invalid_grant":
        return None
    if is_throttled(response):
        raise CanvasThrottled(**details)
    if response.status_code >= 500:
        raise CanvasTransient(**details)
    if response.status_code == 401:
        raise CanvasNotAuthorized(**details)
    raise CanvasError(**details)


def _canvas_app() -> SocialApp:
    try:
        return get_adapter().get_app(None, provider=CanvasProvider.id)
    except SocialApp.DoesNotExist:
        raise CanvasNotAuthorized(
            messages=["Sign in with Canvas is not configured (CANVAS_OAUTH_CLIENT_ID)"],
            method="POST",
            path=TOKEN_PATH,
        ) from None


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
