"""Production settings: ``check --deploy`` is clean, and real responses carry HSTS, a CSP and secure cookies.

The settings are read at import, so production is a fresh process with a production environment
(DEBUG off, a long random SECRET_KEY, the host names, Canvas), never this test process: pytest's
settings keep http:// working for the test client. The pages are then fetched from ``runserver`` in
that environment, behind the TLS proxy's ``X-Forwarded-Proto`` header, and checked against their own
Content-Security-Policy: every script, stylesheet, font and image they use loads, and nothing inline.
"""

from __future__ import annotations

import ast
import re
import secrets
import subprocess
import sys
from urllib.parse import urljoin, urlsplit

import pytest

from tests.portal.test_settings import load_settings
from tests.security import production
from tests.security.csp import parse_policy, read_page, violations
from tests.security.production import CANVAS, HOST, ROOT, production_env

PUBLIC_PAGES = (
    "/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/login/code/",
    "/accounts/canvas/login/",
)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=production_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- manage.py check --deploy ---------------------------------------------------------------------
def test_check_deploy_is_clean_with_the_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "warning"),
    [
        ("SECURE_HSTS_SECONDS", "security.W004"),
        ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "security.W005"),
        ("SECURE_SSL_REDIRECT", "security.W008"),
        ("SECURE_HSTS_PRELOAD", "security.W021"),
    ],
)
def test_check_deploy_warns_when_a_protection_is_turned_off(variable, warning):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **{variable: "0"})

    assert result.returncode != 0
    assert warning in result.stderr


def test_check_deploy_warns_about_a_short_secret_key():
    result = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="too-short")

    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_the_production_defaults_are_the_safe_ones():
    names = (
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_REFERRER_POLICY",
        "X_FRAME_OPTIONS",
        "SECURE_CONTENT_TYPE_NOSNIFF",
    )
    env = production_env()
    del env["CACHE_URL"]
    result = load_settings(f"[getattr(settings, name) for name in {names!r}], settings.CACHES['default']", **env)

    assert result.returncode == 0, result.stderr
    values, cache = ast.literal_eval(result.stdout)
    assert dict(zip(names, values, strict=True)) == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
    }
    assert cache["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_debug_turns_the_https_only_settings_off_for_a_laptop():
    result = load_settings(
        "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_PRELOAD", DEBUG="1"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(False, 0, False)"


def cache_in_a_new_process(statement: str, **env: str) -> subprocess.CompletedProcess:
    code = f"import django; django.setup(); from django.core.cache import cache; print(repr({statement}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**production_env(**env), "DJANGO_SETTINGS_MODULE": "portal.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_cache_url_names_the_cache_every_process_shares(redis_url):
    key = f"security-test-{secrets.token_hex(4)}"

    write = cache_in_a_new_process(f"cache.set({key!r}, 'shared', 30)", CACHE_URL="redis://127.0.0.1:6379/14")
    read = cache_in_a_new_process(f"cache.get({key!r})", CACHE_URL="redis://127.0.0.1:6379/14")
    alone = cache_in_a_new_process(f"cache.get({key!r})", CACHE_URL="locmemcache://")

    assert write.returncode == 0, write.stderr
    assert read.stdout.strip() == "'shared'", read.stderr
    assert alone.stdout.strip() == "None", alone.stderr


def test_a_cache_url_it_cannot_read_stops_the_process():
    result = load_settings("settings.CACHES", **production_env(CACHE_URL="mongodb://127.0.0.1/"))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


# -- the headers on real responses ----------------------------------------------------------------
def test_plain_http_is_redirected_to_https(production_server):
    response = production_server.get("/accounts/login/", **{"X-Forwarded-Proto": "http"})

    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{HOST}/accounts/login/"


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_every_public_page_carries_the_security_headers(production_server, path):
    response = production_server.get(path)

    assert response.status_code == 200, response.text[:2000]
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert parse_policy(response.headers["Content-Security-Policy"]) == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'", CANVAS],
        "frame-ancestors": ["'none'"],
    }


def test_cookies_are_secure_and_out_of_reach_of_scripts(production_server):
    import requests
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="p", email="p@example.com", password="a long passphrase")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    page = production_server.get("/accounts/login/")
    csrf = page.cookies["csrftoken"]
    response = requests.post(
        production_server.url + "/accounts/login/",
        data={"login": user.email, "password": "a long passphrase", "csrfmiddlewaretoken": csrf},
        cookies={"csrftoken": csrf},
        headers={"X-Forwarded-Proto": "https", "Host": HOST, "Referer": f"https://{HOST}/accounts/login/"},
        timeout=10,
        allow_redirects=False,
    )

    assert response.status_code == 302, response.text[:2000]
    cookies = {cookie.name: cookie for cookie in page.cookies} | {cookie.name: cookie for cookie in response.cookies}
    assert cookies["csrftoken"].secure
    assert cookies["sessionid"].secure
    assert cookies["sessionid"].has_nonstandard_attr("HttpOnly")
    assert cookies["sessionid"].get_nonstandard_attr("SameSite") == "Lax"


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_every_public_page_loads_its_css_js_and_fonts_under_its_policy(production_server, path):
    page_url = f"https://{HOST}{path}"
    response = production_server.get(path)
    header = response.headers["Content-Security-Policy"]

    assert violations(response.text, header, page_url) == []
    page = read_page(response.text, page_url)
    assert page.stylesheets, "every page has the portal's stylesheet"
    for asset in page.scripts + page.stylesheets:
        loaded = production_server.get(urljoin(path, asset))
        assert loaded.status_code == 200, asset
        assert ("javascript" if asset in page.scripts else "text/css") in loaded.headers["Content-Type"]
        if asset in page.stylesheets:
            for font in re.findall(r"url\(\s*['\"]?([^'\")]+)", loaded.text):
                assert production_server.get(urljoin(urljoin(path, asset), font)).status_code == 200, font


# -- static files and the health check in production ----------------------------------------------
def test_static_files_have_hashed_names_and_are_served_by_whitenoise_to_be_cached_for_good(production_server):
    page = read_page(production_server.get("/").text, f"https://{HOST}/")
    stylesheet = next(url for url in page.stylesheets if "/static/css/portal." in url)

    assert re.fullmatch(r".*/static/css/portal\.[0-9a-f]{12}\.css", stylesheet), stylesheet
    served = production_server.get(urlsplit(stylesheet).path, **{"Accept-Encoding": "gzip"})
    assert served.status_code == 200
    assert "immutable" in served.headers["Cache-Control"]
    assert served.headers["Content-Encoding"] == "gzip"
    assert production_server.get("/static/css/no-such-file.css").status_code == 404


def test_the_health_check_answers_over_plain_http_where_every_page_redirects(
    transactional_db, redis_url, canvas_settings, static_root, tmp_path
):
    """A load balancer's probe inside the network speaks plain HTTP: /healthz must not send it to HTTPS."""
    env = {
        "CACHE_URL": "locmemcache://",
        "STATIC_ROOT": str(static_root),
        "CELERY_BROKER_URL": redis_url,
        "CANVAS_BASE_URL": canvas_settings.base_url,
        "CANVAS_ADMIN_TOKEN": canvas_settings.admin_token,
    }
    with production.production_server(tmp_path / "runserver.log", **env) as server:
        health = server.get("/healthz", **{"X-Forwarded-Proto": "http"})
        page = server.get("/accounts/login/", **{"X-Forwarded-Proto": "http"})
        elsewhere = server.get("/healthz", Host="portal.attacker.example")

    assert health.status_code == 200, health.text[:2000]
    assert health.json()["status"] == "ok"
    assert page.status_code == 301
    # The probe must name a host in ALLOWED_HOSTS, as README says.
    assert elsewhere.status_code == 400
