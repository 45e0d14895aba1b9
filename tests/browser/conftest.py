"""Real browsers: Debian's Chromium driven by Playwright for Python, against the running portal.

The portal is pytest-django's live server with the session's Canvas simulator and real Celery worker
behind it (the ``portal`` fixture of tests/journey). Each person gets a browser context of their own
(cookies, viewport, language); ``person()`` makes one::

    student = person()                               # a desktop browser that prefers English
    parent = person(phone=True, language="es")       # 360x740, touch, Accept-Language: es

Chromium comes from Debian's package (``apt-get install chromium``, which .ci/run does), never from
``playwright install``: the tests reach nothing but loopback. Where it is missing the tests skip, and
fail instead under REQUIRE_SERVICES=1, as CI runs them.

Every context refuses any request that would leave loopback (and names it in the failure), and
records what the page's console reports as an error, a Content-Security-Policy violation among them:
a page that breaks its own policy fails the test that opened it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from tests.conftest import is_loopback, missing
from tests.journey.conftest import portal  # noqa: F401 - the running portal, for these tests too

# Playwright's sync API runs an event loop in this thread, and Django then refuses ORM calls from it as
# "async-unsafe"; the tests' own queries (fixtures, assertions) are ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium")
# A phone as WCAG's reflow criterion and the issue name it: 360 CSS pixels wide.
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
# Chromium otherwise reaches for Google's hosts in the background (updates, safe browsing, sync).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # No host name resolves but localhost's. MAP * catches address literals as well, so the loopback
    # ones (the simulator's 127.0.0.1) are excluded by name too.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
]
# Long enough for a page that waits on the worker (a code from Canvas, a link) on a busy 2-core machine.
TIMEOUT_MS = 20_000


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session (each person's context is fresh)."""
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed (pip install -e '.[dev]')")
    # expect() waits as long as anything else: its default (5 s) is short for a busy worker.
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Person:
    """One person's browser: a context (cookies, viewport, language) and its one page."""

    context: object
    page: object
    console_errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@pytest.fixture
def person(chromium, portal, settings) -> Iterator[Callable[..., Person]]:  # noqa: F811 - the fixture imported above
    """Makes a person with a browser of their own; on teardown, fails on console errors or off-loopback requests."""
    # The policy's form-action lets "Sign in with Canvas" go on to Canvas, whose address settings.py
    # reads at start-up; here Canvas is the session's simulator, whose address only the fixtures know.
    policy = settings.CONTENT_SECURITY_POLICY
    directives = {**policy["DIRECTIVES"], "form-action": ["'self'", portal.sim.base_url]}
    settings.CONTENT_SECURITY_POLICY = {**policy, "DIRECTIVES": directives}
    people: list[Person] = []

    def make(*, phone: bool = False, language: str = "en") -> Person:
        accept = {"en": "en-US,en;q=0.9", "es": "es-US,es;q=0.9,en;q=0.5"}[language]
        context = chromium.new_context(
            base_url=portal.url,
            viewport=PHONE if phone else DESKTOP,
            is_mobile=phone,
            has_touch=phone,
            locale="es-US" if language == "es" else "en-US",
            extra_http_headers={"Accept-Language": accept},
        )
        context.set_default_timeout(TIMEOUT_MS)
        # Copying a code writes to the clipboard, which Chromium allows a page only with this.
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal.url)
        page = context.new_page()
        someone = Person(context=context, page=page)

        def loopback_only(route) -> None:
            url = urlsplit(route.request.url)
            if url.scheme in ("http", "https", "ws", "wss") and not is_loopback(2, (url.hostname or "", 0)):
                someone.refused.append(route.request.url)
                route.abort("blockedbyclient")
            else:
                route.continue_()

        context.route("**/*", loopback_only)

        def console(message) -> None:
            # A page that answers with an error status (a form sent back with its errors is a 400) is
            # the test's to check; Chromium logs it as a failed load, of the page's own address.
            own_status = message.text.startswith("Failed to load resource") and message.location["url"] == page.url
            if message.type == "error" and not own_status:
                someone.console_errors.append(f"{page.url}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: someone.console_errors.append(f"{page.url}: {error}"))
        people.append(someone)
        return someone

    yield make
    problems = []
    for someone in people:
        problems += [f"left loopback: {url}" for url in someone.refused]
        problems += [f"console: {error}" for error in someone.console_errors]
        someone.context.close()
    assert not problems, "\n".join(problems)
