"""Settings are read at import, so each case loads them in a fresh interpreter.

Its environment is built from scratch: the parent's DATABASE_URL, SECRET_KEY or PYTEST_VERSION
must not leak in.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def load_settings(expression: str = "None", **env: str) -> subprocess.CompletedProcess:
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; "
        "from django.conf import settings; "
        f"print(repr(({expression})))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = load_settings("settings.SECRET_KEY")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_it_starts_with_a_secret_key_and_turns_on_secure_cookies():
    result = load_settings("settings.SESSION_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS", SECRET_KEY="x" * 50)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(True, 31536000)"


def test_it_uses_a_dev_key_and_local_hosts_in_debug():
    result = load_settings("settings.ALLOWED_HOSTS", DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['localhost', '127.0.0.1']"


def test_it_rejects_a_canvas_url_that_is_not_http():
    result = load_settings("settings.CANVAS_BASE_URL", DEBUG="1", CANVAS_BASE_URL="ftp://canvas.example.com")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CANVAS_BASE_URL" in result.stderr


def test_it_rejects_a_debug_value_it_cannot_read():
    result = load_settings("settings.DEBUG", DEBUG="ture")

    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_it_defaults_to_sqlite_under_var():
    result = load_settings("settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME']", DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(("django.db.backends.sqlite3", str(BASE_DIR / "var" / "portal.sqlite3")))


def test_it_shows_times_in_the_schools_zone_and_refuses_one_that_does_not_exist():
    chicago = load_settings("settings.TIME_ZONE", DEBUG="1", TIME_ZONE="America/Chicago")
    assert chicago.stdout.strip() == "'America/Chicago'"
    mars = load_settings("settings.TIME_ZONE", DEBUG="1", TIME_ZONE="Mars/Olympus")
    assert mars.returncode != 0
    assert "TIME_ZONE must be an IANA zone" in mars.stderr


def test_the_retry_backoff_cap_bounds_every_retry_and_the_outbox_waits_longer_than_any():
    # linking.tasks reads the setting at import, so the app registry is set up first.
    tasks = "(__import__('django').setup(), __import__('linking.tasks', fromlist=['tasks']))[1]"
    expression = f"(t := {tasks}).MAX_BACKOFF, t.LOST_MESSAGE.total_seconds(), max(t.backoff(30) for _ in range(500))"

    shipped = load_settings(expression, DEBUG="1")
    assert shipped.returncode == 0, shipped.stderr
    cap, lost, longest = ast.literal_eval(shipped.stdout)
    assert (cap, lost) == (300.0, 510.0)
    assert 300 < longest <= 450
    short = load_settings(expression, DEBUG="1", TASK_RETRY_BACKOFF_CAP="2")
    cap, lost, longest = ast.literal_eval(short.stdout)
    assert (cap, lost) == (2.0, 63.0)
    assert longest <= 3
    refused = load_settings("settings.TASK_RETRY_BACKOFF_CAP", DEBUG="1", TASK_RETRY_BACKOFF_CAP="0")
    assert "TASK_RETRY_BACKOFF_CAP must be at least 1 second" in refused.stderr
