"""Sign in with Canvas, driven end to end: a ``requests.Session`` plays the student's browser against the
portal (pytest-django's live server) and the Canvas simulator, both on loopback.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore

CLIENT_ID = "10000000000001"
CLIENT_SECRET = "demo-portal-secret"
STUDENT_LOGIN = "s1001"
STUDENT_PASSWORD = "student-demo"
TIMEOUT = 10

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
OAUTH_QUERY_FIELD = re.compile(r'name="oauth_query" value="([^"]*)"')


def configured(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict:
    return {"canvas": {"APPS": [{"client_id": client_id, "secret": secret}], "OAUTH_PKCE_ENABLED": True}}


@pytest.fixture
def canvas_oauth(settings, canvas_sim):
    """The portal pointed at the simulator, with the demo developer key configured."""
    settings.CANVAS_BASE_URL = canvas_sim.base_url
    settings.SOCIALACCOUNT_PROVIDERS = configured()
    # Outside DEBUG the cookies are Secure, and a browser would not send them back over http://.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return canvas_sim


@dataclass
class Browser:
    """A student's browser: one cookie jar for the portal and for Canvas."""

    portal_url: str
    canvas_url: str
    session: requests.Session

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, timeout=TIMEOUT, allow_redirects=False)

    def post(self, url: str, data: dict) -> requests.Response:
        return self.session.post(url, data=data, timeout=TIMEOUT, allow_redirects=False)

    def start_canvas_sign_in(self, process: str = "login") -> requests.Response:
        """Press "Sign in with Canvas": allauth's confirmation page, then its POST; returns Canvas's page."""
        url = f"{self.portal_url}/accounts/canvas/login/?process={process}"
        page = self.get(url)
        assert page.status_code == 200, page.text
        redirect = self.post(url, {"csrfmiddlewaretoken": field(CSRF_FIELD, page)})
        assert redirect.status_code == 302, redirect.text
        location = redirect.headers["Location"]
        assert location.startswith(f"{self.canvas_url}/login/oauth2/auth?"), location
        return self.get(location)

    def sign_in_at_canvas(self, *, process: str = "login") -> requests.Response:
        """Canvas's sign-in form, as the demo student s1001; returns Canvas's consent page."""
        page = self.start_canvas_sign_in(process)
        assert page.status_code == 200, page.text
        consent = self.post(
            f"{self.canvas_url}/login/canvas",
            {
                "oauth_query": field(OAUTH_QUERY_FIELD, page),
                "pseudonym_session[unique_id]": STUDENT_LOGIN,
                "pseudonym_session[password]": STUDENT_PASSWORD,
            },
        )
        assert consent.status_code == 200, consent.text
        return consent

    def answer_consent(self, consent: requests.Response, button: str) -> requests.Response:
        """Press Authorize (``accept``) or Cancel (``deny``) and follow Canvas back to the portal."""
        back = self.post(f"{self.canvas_url}/login/oauth2/{button}", {"oauth_query": field(OAUTH_QUERY_FIELD, consent)})
        assert back.status_code == 302, back.text
        callback = back.headers["Location"]
        assert callback.startswith(f"{self.portal_url}/accounts/canvas/login/callback/?"), callback
        return self.get(callback)

    def sign_in_with_canvas(self) -> requests.Response:
        """The whole flow; returns the portal's answer to Canvas's redirect."""
        return self.answer_consent(self.sign_in_at_canvas(), "accept")

    def signed_in_user(self):
        session_key = self.session.cookies.get("sessionid")
        if not session_key:
            return None
        user_id = SessionStore(session_key=session_key).get("_auth_user_id")
        return get_user_model().objects.filter(pk=user_id).first() if user_id else None


def field(pattern: re.Pattern, page: requests.Response) -> str:
    match = pattern.search(page.text)
    assert match, f"no {pattern.pattern!r} in:\n{page.text}"
    return html.unescape(match.group(1))


@pytest.fixture
def make_browser(live_server, canvas_oauth):
    """A new browser each call (a second device: its own cookies at the portal and at Canvas)."""
    sessions = []

    def make() -> Browser:
        sessions.append(requests.Session())
        return Browser(portal_url=live_server.url, canvas_url=canvas_oauth.base_url, session=sessions[-1])

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def browser(make_browser) -> Browser:
    return make_browser()


@pytest.fixture
def s1001(canvas_oauth) -> dict:
    """The demo student as Canvas's admin sees them (id, name, email)."""
    response = requests.get(
        f"{canvas_oauth.base_url}/api/v1/users/sis_login_id:{STUDENT_LOGIN}",
        headers={"Authorization": f"Bearer {canvas_oauth.admin_token}"},
        params={"include[]": "email"},
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture
def signed_in_student(browser):
    """A demo student who has signed in with Canvas once: (browser, user)."""
    response = browser.sign_in_with_canvas()
    assert response.status_code == 302, response.text
    user = browser.signed_in_user()
    assert user is not None
    return browser, user
