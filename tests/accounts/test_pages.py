"""The layout every page shares, and the home page's two ways in."""

import pytest
from allauth.socialaccount import providers

CANVAS_IS_A_PROVIDER = "canvas" in providers.registry.provider_map


def test_it_renders_the_home_page_for_a_phone(client):
    response = client.get("/")

    assert response.status_code == 200
    assert b'<meta name="viewport" content="width=device-width, initial-scale=1">' in response.content
    assert b'href="#main">Skip to main content</a>' in response.content
    assert b'role="status"' in response.content


def test_it_offers_a_visitor_a_parent_account_from_the_home_page(client):
    body = client.get("/").content.decode()

    assert "I'm a parent" in body
    assert 'href="/accounts/signup/">Create a parent account</a>' in body
    assert 'href="/accounts/login/">Sign in</a>' in body


def test_it_offers_no_canvas_sign_in_while_no_canvas_app_is_configured(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {}

    body = client.get("/").content.decode()

    assert "I'm a student" not in body
    assert "/accounts/canvas/login/" not in body


@pytest.mark.skipif(not CANVAS_IS_A_PROVIDER, reason="the Canvas provider app is not installed yet")
def test_it_offers_a_student_canvas_sign_in_when_the_provider_is_configured(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "canvas": {"APPS": [{"client_id": "10000000000001", "secret": "demo-portal-secret"}]}
    }

    body = client.get("/").content.decode()

    assert "I'm a student" in body
    assert "/accounts/canvas/login/" in body


def test_it_renders_allauth_pages_in_the_portal_layout(client):
    for url in ("/accounts/signup/", "/accounts/login/", "/accounts/login/code/", "/accounts/password/reset/"):
        response = client.get(url)

        assert response.status_code == 200, url
        assert b'<a class="brand" href="/"><img class="brand-logo" src="/school/logo?v=' in response.content, url
        assert b'">Family Portal</a>' in response.content, url
        assert b'name="viewport"' in response.content, url
        assert b'class="button' in response.content, url


def test_it_shows_a_signed_in_parent_sign_out_as_a_post_button(client, parent):
    client.force_login(parent.user)

    body = client.get("/").content.decode()

    assert '<form method="post" action="/accounts/logout/">' in body
    assert "Create a parent account" not in body
