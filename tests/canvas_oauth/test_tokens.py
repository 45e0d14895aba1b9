"""student_access_token: the stored Canvas token, refreshed against the simulator when it is about to expire."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from allauth.socialaccount.models import SocialToken
from django.contrib.auth import get_user_model
from django.utils import timezone

from canvas_sim.testing import free_port
from linking.canvas import CanvasTransient, canvas_client
from linking.canvas_oauth.tokens import student_access_token

pytestmark = pytest.mark.django_db(transaction=True)


def stored_token(user) -> SocialToken:
    return SocialToken.objects.get(account__user=user, account__provider="canvas")


def expire(token: SocialToken, *, in_seconds: int = -5) -> None:
    token.expires_at = timezone.now() + timedelta(seconds=in_seconds)
    token.save(update_fields=["expires_at"])


def test_it_returns_a_fresh_token_without_asking_canvas(signed_in_student, settings):
    _browser, user = signed_in_student
    settings.CANVAS_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens there

    assert student_access_token(user) == stored_token(user).token


def test_it_refreshes_an_expired_token_and_the_new_one_works(signed_in_student, s1001):
    _browser, user = signed_in_student
    token = stored_token(user)
    old_access, refresh = token.token, token.token_secret
    expire(token)

    new_access = student_access_token(user)

    assert new_access and new_access != old_access
    token.refresh_from_db()
    assert token.token == new_access
    assert token.token_secret == refresh  # Canvas sends no new refresh token: the old one stays
    assert token.expires_at > timezone.now() + timedelta(minutes=50)
    assert canvas_client(new_access).get_user("self")["id"] == s1001["id"]


def test_it_refreshes_a_token_that_expires_within_a_minute(signed_in_student):
    _browser, user = signed_in_student
    token = stored_token(user)
    old_access = token.token
    expire(token, in_seconds=30)

    assert student_access_token(user) not in (None, old_access)


def test_it_refreshes_again_with_the_same_refresh_token(signed_in_student):
    _browser, user = signed_in_student
    expire(stored_token(user))
    first = student_access_token(user)
    expire(stored_token(user))

    second = student_access_token(user)

    assert second not in (None, first)


def test_it_returns_none_when_canvas_refuses_the_refresh_token(signed_in_student, settings):
    _browser, user = signed_in_student
    token = stored_token(user)
    token.token_secret = "revoked-or-never-issued"
    token.save(update_fields=["token_secret"])
    expire(token)

    assert student_access_token(user) is None


def test_it_returns_none_once_the_student_revoked_the_token_in_canvas(signed_in_student, canvas_oauth):
    _browser, user = signed_in_student
    token = stored_token(user)
    requests.delete(
        f"{canvas_oauth.base_url}/login/oauth2/token",
        headers={"Authorization": f"Bearer {token.token}"},
        timeout=10,
    ).raise_for_status()
    expire(token)

    assert student_access_token(user) is None


def test_it_returns_none_for_a_user_who_never_signed_in_with_canvas():
    parent = get_user_model().objects.create_user(username="parent", email="p@example.test")

    assert student_access_token(parent) is None


def test_it_raises_a_transient_error_when_canvas_cannot_be_reached(signed_in_student, settings):
    _browser, user = signed_in_student
    token = stored_token(user)
    expire(token)
    settings.CANVAS_BASE_URL = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(CanvasTransient) as raised:
        student_access_token(user)

    assert raised.value.may_have_happened is False
    assert token.token_secret not in str(raised.value)


def test_it_logs_no_tokens_while_refreshing(signed_in_student, caplog):
    _browser, user = signed_in_student
    token = stored_token(user)
    expire(token)

    with caplog.at_level("DEBUG"):
        new_access = student_access_token(user)

    assert new_access
    for secret in (token.token, token.token_secret, new_access):
        assert secret not in caplog.text
