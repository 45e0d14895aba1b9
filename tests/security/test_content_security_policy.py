"""Every page of the portal works under its Content-Security-Policy: nothing inline, nothing from elsewhere.

Generated from the permission matrix: each URL that answers a GET with a page is fetched as a persona
its rule lets through (a superuser for the admin) and read as a browser would under the policy the
response carries. The public pages are also fetched from a production process, assets and all, in
test_production_settings.py.
"""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage

from tests.security.csp import read_page, violations
from tests.security.test_csrf import persona_for
from tests.security.test_permission_matrix import RULES, WALKED, World

# /healthz answers 503 while the broker is down: the session's worker brings one that answers (memory:// on
# a laptop, Redis in CI). A fixture of the module, so that it starts before a test's transaction does.
pytestmark = pytest.mark.usefixtures("celery_worker", "fast_passwords", "canvas_sign_in")

PAGES = [(route, key) for route, key in WALKED if RULES[key].method == "GET"]
# The one page that needs img-src data: allauth's authenticator set-up shows its QR code as a data: URI.
DATA_IMAGES = {"mfa_activate_totp"}
# The GET URLs that answer a file or data rather than a page, and what kind.
DOWNLOADS = {
    "staff_audit_export": "text/csv",
    "staff_import_report": "text/csv",
    "admin:jsi18n": "text/javascript",
    "healthz": "application/json",
    "school_theme": "text/css",
    # Without SCHOOL_LOGO, the mark in the school's colour; its own policy is stricter still (portal/school.py).
    "school_logo": "image/svg+xml",
}


def fetch(request, route: str, key: str):
    """The page a visitor ends up on, redirects followed; its URL and the response."""
    world = World(request)
    persona = getattr(world, persona_for(route, key))
    response = persona.client.get(RULES[key].build_url(world, key), follow=True)
    url = response.redirect_chain[-1][0] if response.redirect_chain else response.request["PATH_INFO"]
    return url, response


@pytest.mark.parametrize(("route", "key"), PAGES, ids=[key for _, key in PAGES])
def test_the_page_uses_nothing_its_policy_blocks(request, route, key):
    url, response = fetch(request, route, key)
    if key in DOWNLOADS:
        # A file, not a page: nothing in it runs, and the policy still rides on the response.
        assert response["Content-Type"].startswith(DOWNLOADS[key]), f"{url} is {response['Content-Type']}"
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy or "default-src 'none'" in policy, policy
        return
    assert response["Content-Type"].startswith("text/html"), f"{url} is {response['Content-Type']}, not a page"
    page_url = urljoin("http://testserver/", url)
    html = response.content.decode()

    assert violations(html, response["Content-Security-Policy"], page_url) == []
    page = read_page(html, page_url)
    for asset in page.scripts + page.stylesheets:
        if asset.startswith(staticfiles_storage.base_url):
            assert finders.find(asset.removeprefix(staticfiles_storage.base_url)), f"{asset} is not a static file"
    data_images = [src for src in page.images if src.startswith("data:")]
    assert not data_images or key in DATA_IMAGES, f"{url} shows a data: image; img-src allows them for {DATA_IMAGES}"


def test_the_authenticator_set_up_still_needs_data_images(request):
    """If allauth ever stops drawing its QR code as a data: URI, img-src can drop data: (settings.py)."""
    route, key = next((route, key) for route, key in PAGES if key == "mfa_activate_totp")
    _, response = fetch(request, route, key)

    assert response.status_code == 200
    assert any(src.startswith("data:image/svg+xml") for src in read_page(response.content.decode(), "/").images)


def test_every_response_carries_the_policy_and_the_framing_refusal(anonymous):
    for path in ("/", "/accounts/login/", "/no-such-page/"):
        response = anonymous.client.get(path)
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], path
        assert response["X-Frame-Options"] == "DENY", path
