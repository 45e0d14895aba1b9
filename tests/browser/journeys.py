"""What people do in the browser, step by step, for the journey tests: each helper clicks and types
what a person would, and waits with Playwright's ``expect`` for what the page shows next.

The same journeys over plain HTTP are in tests/journey/test_family_journey.py; these drive Chromium.
"""

from __future__ import annotations

import re

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import translation
from playwright.sync_api import Page, expect

from linking.canvas import CanvasClient
from linking.models import Parent
from linking.services.people import parent_register
from tests.journey.conftest import Portal
from tests.journey.test_family_journey import PASSWORD, VERIFICATION_CODE

CODE = re.compile(r"^[A-Za-z0-9]{6}$")


def path_is(path: str) -> re.Pattern:
    """For ``expect(page).to_have_url``: the page's path, whatever the live server's address, query and
    fragment (a form posted after the skip link keeps its ``#main`` through the redirect)."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?[^#]*)?(#.*)?$")


# -- students -------------------------------------------------------------------------------------
def a_canvas_student(portal: Portal, *, enrolled: bool = True) -> dict:
    """A fresh student in the shared simulator, so tests never share a person."""
    return portal.sim.make_user(name=f"Student {portal.sim.unique('s')}", student=enrolled, password="student-password")


def code_made_in_canvas(portal: Portal, canvas_user: dict) -> str:
    """A code the student made in Canvas itself (Account, Settings, Pair with Observer)."""
    return (
        CanvasClient(base_url=portal.sim.base_url, token=canvas_user["token"])
        .create_pairing_code(canvas_user["id"])
        .code
    )


def signs_in_with_canvas(page: Page, portal: Portal, canvas_user: dict, *, look=lambda page: None) -> None:
    """From the home page through the simulator's login and authorize pages, back to "Invite a parent".

    ``look(page)`` checks each of the portal's pages on the way (Canvas's are not the portal's)."""
    page.goto("/")
    look(page)
    page.get_by_role("link", name="Sign in with Canvas").click()
    expect(page).to_have_url(path_is("/accounts/canvas/login/"))
    look(page)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(portal.sim.base_url)}/login/oauth2/auth\?"))
    page.get_by_label("Email or login").fill(canvas_user["login"])
    page.get_by_label("Password").fill(canvas_user["password"])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Authorize").click()
    expect(page).to_have_url(path_is("/student/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hi {canvas_user['name']}")
    look(page)


def the_code(page: Page) -> str:
    """The code once the page has it: the page polls until the worker got it from Canvas."""
    code = page.locator("#the-code")
    expect(code).to_have_text(CODE)
    return code.inner_text()


# -- parents --------------------------------------------------------------------------------------
ENGLISH = {
    "language": "en",
    "name": "Your full name",
    "email": "Email",
    "password": "Password",
    "sign up": "Sign Up",
    "confirm": "Confirm",
}
SPANISH = {
    "language": "es",
    "name": "Su nombre completo",
    "email": "Correo electrónico",
    "password": "Contraseña",
    "sign up": "Registrarse",
    "confirm": "Confirmar",
}


def registers_as_a_parent(page: Page, *, name: str, email: str, words: dict = ENGLISH, look=lambda page: None) -> None:
    """The signup form, then the code emailed to confirm the address; ``look(page)`` checks each page."""
    expect(page).to_have_url(path_is("/accounts/signup/"))
    look(page)
    page.get_by_label(words["name"]).fill(name)
    page.get_by_role("textbox", name=words["email"]).fill(email)
    page.get_by_label(words["password"], exact=True).fill(PASSWORD)
    page.get_by_role("button", name=words["sign up"]).click()
    expect(page).to_have_url(path_is("/accounts/confirm-email/"))
    look(page)
    page.locator("input[name=code]").fill(verification_code_sent_to(email, language=words["language"]))
    page.get_by_role("button", name=words["confirm"]).click()
    # Confirmed, and signed in: straight to their children, to add the first (linking/accounts.py).
    expect(page).to_have_url(path_is("/family/"))
    look(page)


def verification_code_sent_to(email: str, *, language: str) -> str:
    """The code in the email that confirms the address, written in the parent's language."""
    with translation.override(language):
        prefix = str(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX)
    [message] = [m for m in mail.outbox if m.to == [email] and m.subject.startswith(prefix)]
    match = VERIFICATION_CODE.search(message.body)
    assert match, message.body
    return match.group(1)


def signed_in(person, portal: Portal, user) -> None:
    """Give ``person``'s browser a session for ``user``, whose own sign-in other journeys go through."""
    client = Client()
    client.force_login(user, backend=settings.AUTHENTICATION_BACKENDS[0])
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    person.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": portal.url}])


def a_parent(email: str, name: str = "Maria Garcia") -> Parent:
    """A parent registered through the real service, email confirmed, for journeys that start later."""
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return parent_register(user=user, name=name)


def linked_in_canvas(portal: Portal, parent: Parent) -> list[int]:
    parent.refresh_from_db()
    return [student["id"] for student in portal.canvas_admin().list_observees(parent.canvas_user_id)]


def marks_the_page(page: Page) -> None:
    """Leave a mark in the page, which only a reload or a new page would wipe."""
    page.evaluate("() => { window.stillTheSamePage = true; }")


def is_the_same_page(page: Page) -> bool:
    return page.evaluate("() => window.stillTheSamePage === true")


# -- phones ---------------------------------------------------------------------------------------
def fits_the_screen(page: Page) -> None:
    """Nothing scrolls sideways: WCAG's reflow at 320-360 CSS pixels."""
    page.wait_for_load_state()  # the stylesheet and the web font in place
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} scrolls sideways: {widths[0]} px wide in a {widths[1]} px window"


def tappable(locator) -> None:
    """Visible, inside the screen's width, at least 24 CSS pixels each way (WCAG 2.2's target size), and
    the element a tap at its centre lands on."""
    expect(locator).to_be_visible()
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    width = locator.page.evaluate("() => window.innerWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{locator} is off the screen: {box}"
    assert box["width"] >= 24 and box["height"] >= 24, f"{locator} is too small to tap: {box}"
    hit = locator.evaluate(
        "(element) => { const r = element.getBoundingClientRect();"
        " const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);"
        " return top !== null && (element === top || element.contains(top)); }"
    )
    assert hit, f"something covers {locator}"
