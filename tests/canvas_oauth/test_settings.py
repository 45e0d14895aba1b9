"""CANVAS_OAUTH_CLIENT_ID and CANVAS_OAUTH_CLIENT_SECRET, read at import: each case in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def load_settings(expression: str, **env: str) -> subprocess.CompletedProcess:
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; "
        "from django.conf import settings; "
        f"print(repr(({expression})))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", ""), "DEBUG": "1", **env},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
