"""The sign-in page offers "Sign in with Canvas (students)" only when a developer key is configured."""

from __future__ import annotations

import pytest

from .conftest import configured

pytestmark = pytest.mark.django_db

BUTTON = b"Sign in with Canvas (students)"


def test_it_offers_students_the_canvas_button_when_configured(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = configured()

    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert BUTTON in response.content
    assert b'href="/accounts/canvas/login/?process=login"' in response.content


def test_it_shows_no_canvas_button_without_a_client_id(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"canvas": {"APPS": [], "OAUTH_PKCE_ENABLED": True}}

    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert BUTTON not in response.content
    assert b"/accounts/canvas/" not in response.content


def test_it_answers_not_found_for_canvas_sign_in_without_a_client_id(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"canvas": {"APPS": [], "OAUTH_PKCE_ENABLED": True}}

    assert client.get("/accounts/canvas/login/").status_code == 404
    assert client.post("/accounts/canvas/login/").status_code == 404
    assert client.get("/accounts/canvas/login/callback/?code=x&state=y").status_code == 404


def test_it_sends_the_student_to_canvas_with_a_pkce_challenge(client, settings, canvas_sim):
    settings.CANVAS_BASE_URL = canvas_sim.base_url
    settings.SOCIALACCOUNT_PROVIDERS = configured()

    response = client.post("/accounts/canvas/login/")

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{canvas_sim.base_url}/login/oauth2/auth?")
    assert "code_challenge_method=S256" in location
    assert "client_id=10000000000001" in location
