"""A browser per person, driving the running portal (pytest-django's live server) and the Canvas
simulator over loopback HTTP, with the real Celery worker behind the portal.

The worker fixtures live in ``tests/workers.py`` and are registered for the whole suite by
``tests/conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import requests
from django.core.cache import cache

from linking.canvas import CanvasClient
from tests.canvas_oauth.conftest import configured
from tests.workers import wait_for

TIMEOUT = 10


@dataclass
class Form:
    action: str
    fields: dict[str, str]
    text: str = ""  # what the form shows, its buttons' labels included


@dataclass
class Link:
    href: str
    text: str = ""


class PageParser(HTMLParser):
    """The forms and links of a page: all a person needs to find what to press."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: list[Link] = []
        self._form: Form | None = None
        self._link: Link | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(action=attributes.get("action", ""), fields={})
            self.forms.append(self._form)
        elif tag == "a" and "href" in attributes:
            self._link = Link(href=attributes["href"])
            self.links.append(self._link)
        elif tag == "input" and self._form is not None and attributes.get("name"):
            if attributes.get("type") not in ("submit", "checkbox", "radio"):
                self._form.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "a":
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._form is not None:
            self._form.text += data
        if self._link is not None:
            self._link.text += data


def parse(page: requests.Response) -> PageParser:
    parser = PageParser()
    parser.feed(page.text)
    return parser


@dataclass
class Browser:
    """One person's browser: one cookie jar, for the portal and for Canvas alike."""

    portal_url: str
    session: requests.Session = field(default_factory=requests.Session)

    def get(self, url: str) -> requests.Response:
        page = self.session.get(urljoin(self.portal_url, url), timeout=TIMEOUT)
        assert page.status_code == 200, f"GET {url}: {page.status_code}\n{page.text[:2000]}"
        return page

    def press(self, page: requests.Response, button: str, **fields: str) -> requests.Response:
        """Fill in and submit the form on ``page`` holding ``button``; follows the redirects."""
        forms = [form for form in parse(page).forms if button in form.text]
        assert forms, f"no form with {button!r} on {page.url}:\n{page.text[:3000]}"
        form = forms[0]
        return self.session.post(urljoin(page.url, form.action), data={**form.fields, **fields}, timeout=TIMEOUT)

    def follow(self, page: requests.Response, text: str) -> requests.Response:
        links = [link for link in parse(page).links if text in link.text]
        assert links, f"no link {text!r} on {page.url}:\n{page.text[:3000]}"
        return self.get(urljoin(page.url, links[0].href))

    def settled(self, url: str) -> requests.Response:
        """Poll a fragment the page refreshes itself with until the worker is done (``X-Pending: 0``)."""
        return wait_for(
            lambda: (page := self.get(url)).headers["X-Pending"] == "0" and page,
            message=f"{url} to stop pending",
        )


@dataclass
class Portal:
    url: str
    sim: object
    worker: str  # "thread" (emails land in mail.outbox) or "process" (emails go to its console)
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        self.browsers.append(Browser(portal_url=self.url))
        return self.browsers[-1]

    def canvas_admin(self) -> CanvasClient:
        return CanvasClient(base_url=self.sim.base_url, token=self.sim.admin_token)


@pytest.fixture
def portal(live_server, settings, canvas_settings, canvas_sim, celery_worker):  # noqa: F811 - the fixtures
    """The running portal, signed in to Canvas as the demo developer key, with a worker behind it."""
    settings.SOCIALACCOUNT_PROVIDERS = configured()
    # Outside DEBUG the cookies are Secure, and a browser would not send them back over http://.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    # The real hasher costs ~0.3 s a password; allauth's rate limits live in the cache.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    running = Portal(url=live_server.url, sim=canvas_settings, worker=celery_worker)
    yield running
    for browser in running.browsers:
        browser.session.close()
    cache.clear()
