"""CANVAS_OAUTH_CLIENT_ID and CANVAS_OAUTH_CLIENT_SECRET, read at import: each case in a fresh interpreter."""

from __future__ import annotations

import subprocess

from tests.portal.test_settings import load_settings as load_portal_settings


def load_settings(expression: str, **env: str) -> subprocess.CompletedProcess:
    return load_portal_settings(expression, DEBUG="1", **env)


def test_it_configures_no_canvas_app_by_default():
    result = load_settings("settings.SOCIALACCOUNT_PROVIDERS['canvas']")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'APPS': [], 'OAUTH_PKCE_ENABLED': True}"


def test_it_configures_the_canvas_app_from_the_environment():
    result = load_settings(
        "settings.SOCIALACCOUNT_PROVIDERS['canvas']['APPS']",
        CANVAS_OAUTH_CLIENT_ID="170000000000042",
        CANVAS_OAUTH_CLIENT_SECRET="s3cret",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[{'client_id': '170000000000042', 'secret': 's3cret'}]"


def test_it_refuses_a_client_id_without_a_secret():
    result = load_settings("settings.DEBUG", CANVAS_OAUTH_CLIENT_ID="170000000000042")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CANVAS_OAUTH_CLIENT_SECRET" in result.stderr
