"""Every page of the portal passes axe-core's WCAG 2.1 A and AA rules, in English and in Spanish.

Each page is opened by the persona who uses it, in the states that matter (empty, with data, with a form
error). The people are signed in by copying a test ``Client``'s session cookie into their browser: the
journeys test real sign-in, this sweep only needs the pages. Also here: family pages reflow at a phone's
360 px without scrolling sideways (WCAG 1.4.10), form errors are tied to their fields and announced, and
every element the keyboard reaches shows where the focus is.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from playwright.sync_api import expect

from linking.models import (
    CodeEntryLockout,
    Course,
    Drift,
    ImportRow,
    ImportRun,
    LinkRequest,
    ObservationLink,
    PairHold,
    PairingCode,
    ReconciliationRun,
)
from tests.browser.axe import axe_violations
from tests.staff.conftest import mfa_client, parent_make, password_client, staff_member_make, student_make

LANGUAGES = pytest.mark.parametrize("language", ["en", "es"])
PASSWORD = "correct horse battery staple"


# -- people and their browsers --------------------------------------------------------------------
def signed_in_client(user) -> Client:
    client = Client()
    client.force_login(user, backend=settings.AUTHENTICATION_BACKENDS[0])
    return client


def browser_for(person, portal, client: Client | None = None, *, language: str = "en", phone: bool = False):
    """A person's browser, carrying ``client``'s session when there is one."""
    someone = person(language=language, phone=phone)
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        someone.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": portal.url}])
    return someone


def expect_refused(someone, status: int) -> None:
    """A page that answers ``status`` on purpose: Chromium logs that as a console error, which is expected."""
    someone.console_errors[:] = [line for line in someone.console_errors if f"status of {status}" not in line]


BROKEN_REFERENCES = """() => [...document.querySelectorAll("[aria-describedby], [aria-labelledby]")].flatMap(
    (element) => ["aria-describedby", "aria-labelledby"].flatMap((name) =>
        (element.getAttribute(name) || "").split(/\\s+/).filter((id) => id && !document.getElementById(id))
            .map((id) => `${name} names no element: #${element.id || element.tagName} -> ${id}`)))"""


def submit(page) -> None:
    """Press the page's main form's first button (allauth's forms end with a second, "Cancel")."""
    page.locator("main form.form button[type=submit]").first.click()


class Sweep:
    """Opens pages one after another and gathers every axe violation, so one run names them all."""

    def __init__(self, someone):
        self.someone = someone
        self.page = someone.page
        self.problems: list[str] = []

    def open(self, url: str, status: int = 200) -> None:
        response = self.page.goto(url)
        if response.status != status:
            self.problems.append(f"GET {url}: {response.status}, expected {status}")
        if status != 200:
            expect_refused(self.someone, status)
        self.check()

    def check(self) -> None:
        self.problems += axe_violations(self.page)
        # axe only asks a person to review these: help and errors that name no element are never read.
        self.problems += [f"{line}  [{self.page.url}]" for line in self.page.evaluate(BROKEN_REFERENCES)]

    def reflows(self) -> None:
        if not self.page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"):
            width = self.page.evaluate("() => document.documentElement.scrollWidth")
            self.problems.append(f"scrolls sideways at 360 px ({width} px wide): {self.page.url}")

    def done(self) -> None:
        assert not self.problems, f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems)


# -- data -----------------------------------------------------------------------------------------
def a_student_with_a_code():
    student = student_make("Sofia Garcia")
    code = PairingCode.objects.create(student=student, requested_by=student.user, state=PairingCode.State.ACTIVE)
    code.code, code.expires_at = "AbC1l0", timezone.now() + timedelta(days=7)
    code.save(update_fields=["code", "expires_at"])
    return student, code


def a_parent_with_every_kind_of_request(student):
    parent = parent_make("maria.garcia@example.com", "Maria Garcia")
    link = ObservationLink.objects.create(
        parent=parent, student=student, root_account_id=1, method=ObservationLink.Method.PAIRING_CODE
    )
    LinkRequest.objects.create(parent=parent, code="WaIt12", state=LinkRequest.State.WAITING)
    LinkRequest.objects.create(
        parent=parent, code="HeLd12", state=LinkRequest.State.HELD, held_rule=LinkRequest.Rule.HOLD_ALL
    )
    LinkRequest.objects.create(
        parent=parent, code="BaD123", state=LinkRequest.State.FAILED, failure=LinkRequest.Failure.INVALID_CODE
    )
    return parent, link


# -- anonymous visitors ---------------------------------------------------------------------------
@LANGUAGES
def test_the_pages_before_signing_in_pass_axe(person, portal, language):
    sweep = Sweep(browser_for(person, portal, language=language))
    for name in (
        "home",
        "account_login",
        "account_signup",
        "account_reset_password",
        "account_request_login_code",
        "account_inactive",
        "socialaccount_login_cancelled",
    ):
        sweep.open(reverse(name))
    sweep.open("/accounts/canvas/login/?process=login")
    # A parent signs up: then the page that asks for the code emailed to them, and a wrong code.
    page = sweep.page
    page.goto(reverse("account_signup"))
    page.locator("#id_name").fill("Ana Lopez")
    page.locator("#id_email").fill(f"ana.{language}@example.com")
    page.locator("#id_password1").fill(PASSWORD)
    submit(page)
    expect(page).to_have_url(f"{portal.url}{reverse('account_email_verification_sent')}")
    sweep.check()
    page.locator("#id_code").fill("WRONG-CODE")
    submit(page)
    assert_error_announced(page, "#id_code")
    sweep.check()
    sweep.done()


@LANGUAGES
def test_the_password_reset_and_sign_in_by_code_pages_pass_axe(person, portal, language):
    parent_make(f"reset.{language}@example.com", "Reset Parent")
    sweep = Sweep(browser_for(person, portal, language=language))
    page = sweep.page
    page.goto(reverse("account_reset_password"))
    page.locator("#id_email").fill(f"reset.{language}@example.com")
    submit(page)
    expect(page).to_have_url(f"{portal.url}{reverse('account_confirm_password_reset_code')}")
    sweep.check()
    page.goto(reverse("account_request_login_code"))
    page.locator("#id_email").fill(f"reset.{language}@example.com")
    submit(page)
    expect(page).to_have_url(f"{portal.url}{reverse('account_confirm_login_code')}")
    sweep.check()
    # A wrong password: an error for the whole form.
    sweep = Sweep(browser_for(person, portal, language=language))
    page = sweep.page
    page.goto(reverse("account_login"))
    page.locator("#id_login").fill(f"reset.{language}@example.com")
    page.locator("#id_password").fill("not the password")
    submit(page)
    expect(page.locator(".errorlist.nonfield")).to_be_focused()
    sweep.check()
    sweep.done()


@LANGUAGES
def test_the_error_pages_pass_axe(person, portal, language):
    student = student_make("Error Student")
    someone = browser_for(person, portal, signed_in_client(student.user), language=language)
    sweep = Sweep(someone)
    sweep.open("/no-such-page/", status=404)
    sweep.open(reverse("parent_home"), status=403)
    # More query fields than Django reads: refused before any view, with the portal's 400 page.
    sweep.open(reverse("account_login") + "?" + "&".join(["f=1"] * (settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)), 400)
    # The database down: the middleware's page, rendered as it would be, served at a page's address.
    with translation.override(language):
        unavailable = render_to_string("503.html")
    sweep.page.route(
        "**/unavailable/", lambda route: route.fulfill(status=503, body=unavailable, content_type="text/html")
    )
    sweep.open("/unavailable/", status=503)
    sweep.done()


# -- parents --------------------------------------------------------------------------------------
@LANGUAGES
def test_the_parent_pages_pass_axe(person, portal, language):
    empty = parent_make(f"empty.{language}@example.com", "Empty Parent")
    student, _ = a_student_with_a_code()
    parent, link = a_parent_with_every_kind_of_request(student)

    sweep = Sweep(browser_for(person, portal, signed_in_client(empty.user), language=language))
    sweep.open(reverse("parent_home"))  # no children yet
    sweep.open(reverse("home"))

    sweep = Sweep(browser_for(person, portal, signed_in_client(parent.user), language=language))
    sweep.open(reverse("parent_home"))  # linked, waiting, held and failed
    sweep.open(reverse("add_child"))
    sweep.open(reverse("add_child") + "?code=AbC1l0")
    sweep.open(reverse("link_remove", args=[link.pk]))
    sweep.open(reverse("account_email"))
    sweep.open(reverse("account_change_password"))
    sweep.open(reverse("mfa_index"))
    sweep.open(reverse("socialaccount_connections"))
    page = sweep.page
    page.goto(reverse("add_child"))
    page.locator("#id_codes").fill("abc")
    submit(page)
    assert_error_announced(page, "#id_codes")
    expect_refused(sweep.someone, 400)
    sweep.check()
    sweep.done()


# -- students -------------------------------------------------------------------------------------
@LANGUAGES
def test_the_student_pages_pass_axe(person, portal, language):
    student, code = a_student_with_a_code()
    parent = parent_make(f"linked.{language}@example.com", "Linked Parent")
    ObservationLink.objects.create(
        parent=parent, student=student, root_account_id=1, method=ObservationLink.Method.PAIRING_CODE
    )
    failed = PairingCode.objects.create(
        student=student, state=PairingCode.State.FAILED, failure=PairingCode.Failure.NOT_ENROLLED
    )
    sweep = Sweep(browser_for(person, portal, signed_in_client(student.user), language=language))
    sweep.open(reverse("student_home"))
    sweep.open(reverse("pairing_code_detail", args=[code.pk]))
    sweep.open(reverse("pairing_code_card", args=[code.pk]))
    sweep.open(reverse("pairing_code_detail", args=[failed.pk]))
    page = sweep.page
    page.goto(reverse("pairing_code_detail", args=[code.pk]))
    page.locator("#id_email").fill("mum@example")
    submit(page)
    assert_error_announced(page, "#id_email")
    expect_refused(sweep.someone, 400)
    sweep.check()
    sweep.done()


# -- staff ----------------------------------------------------------------------------------------
def staff_world():
    """A staff admin signed in with their app, and something on every page of the console."""
    admin = staff_member_make("alex.admin@school.example", admin=True, name="Alex Admin")
    staff_member_make("sam.staff@school.example", mfa=False)
    student, _ = a_student_with_a_code()
    parent, link = a_parent_with_every_kind_of_request(student)
    held = LinkRequest.objects.filter(parent=parent, state=LinkRequest.State.HELD).get()
    PairHold.objects.create(student=student, parent_email="held.parent@example.com", reason="Court order on file")
    CodeEntryLockout.objects.create(
        scope=CodeEntryLockout.Scope.ACCOUNT, parent=parent, failures=10, until=timezone.now() + timedelta(hours=24)
    )
    course = Course.objects.create(canvas_course_id=901, name="Year 9 Maths")
    course.students.add(student)
    run = ReconciliationRun.objects.create(state=ReconciliationRun.State.DONE)
    Drift.objects.create(
        run=run,
        kind=Drift.Kind.IN_CANVAS_ONLY,
        canvas_observer_id=70001,
        canvas_student_id=student.canvas_user_id,
        student=student,
    )
    runs = {}
    for state in ("preview", "running", "done"):
        runs[state] = ImportRun.objects.create(
            source=ImportRun.Source.UPLOAD,
            filename=f"families-{state}.csv",
            file_sha256=f"{len(runs):064d}",
            state=state,
            preview={"rows": 1},
        )
        ImportRow.objects.create(run=runs[state], number=2, student_key="sis_id:S9", parent_email="p@example.com")
    return {"admin": admin, "student": student, "link": link, "held": held, "course": course, "runs": runs}


@LANGUAGES
def test_the_staff_console_passes_axe(person, portal, language):
    world = staff_world()
    sweep = Sweep(browser_for(person, portal, mfa_client(world["admin"]), language=language))
    for url in (
        reverse("staff_home"),
        reverse("staff_requests"),
        reverse("staff_requests") + "?state=held",
        reverse("staff_request_detail", args=[world["held"].pk]),
        reverse("staff_request_reject", args=[world["held"].pk]),
        reverse("staff_link_revoke", args=[world["link"].pk]),
        reverse("staff_holds"),
        reverse("staff_hold_new"),
        reverse("staff_lockouts"),
        reverse("staff_drift"),
        reverse("staff_audit"),
        reverse("staff_letters"),
        reverse("staff_letters_student", args=[world["student"].pk]),
        reverse("staff_letters_course", args=[world["course"].pk]),
        reverse("staff_imports"),
        reverse("staff_import_preview", args=[world["runs"]["preview"].pk]),
        reverse("staff_import_run", args=[world["runs"]["running"].pk]),
        reverse("staff_import_run", args=[world["runs"]["done"].pk]),
        reverse("staff_accounts"),
        reverse("staff_account_new"),
        reverse("staff_policy"),
        reverse("mfa_index"),
    ):
        sweep.open(url)
    sweep.done()


@LANGUAGES
def test_the_staff_forms_with_errors_pass_axe(person, portal, language):
    world = staff_world()
    sweep = Sweep(browser_for(person, portal, mfa_client(world["admin"]), language=language))
    page = sweep.page
    forms = (
        (reverse("staff_account_new"), {"#id_email": "not an email"}, "#id_email"),
        (reverse("staff_policy"), {"#id_max_observers": "-3"}, "#id_max_observers"),
        (reverse("staff_hold_new"), {"#id_find_student": "Sofia Garcia", "#id_parent_email": "x"}, "#id_parent_email"),
        (reverse("staff_imports"), {}, "#id_file"),
        (reverse("staff_request_reject", args=[world["held"].pk]), {}, "#id_reason"),
        (reverse("staff_link_revoke", args=[world["link"].pk]), {}, "#id_reason"),
    )
    for url, values, invalid in forms:
        page.goto(url)
        for selector, value in values.items():
            page.locator(selector).fill(value)
        submit(page)
        assert_error_announced(page, invalid)
        expect_refused(sweep.someone, 400)
        sweep.check()
    sweep.done()


@LANGUAGES
def test_the_second_factor_pages_pass_axe(person, portal, language):
    # Asked for the app's code after the password; then a wrong code.
    staff = staff_member_make(f"code.{language}@school.example")
    sweep = Sweep(browser_for(person, portal, password_client(staff), language=language))
    sweep.open(reverse("mfa_authenticate"))
    sweep.page.locator("#id_code").fill("000000")
    submit(sweep.page)
    assert_error_announced(sweep.page, "#id_code")
    sweep.check()
    # New staff, sent to set up an app before any staff page opens.
    new = staff_member_make(f"new.{language}@school.example", mfa=False)
    client = password_client(new)
    assert client.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code == 302
    sweep = Sweep(browser_for(person, portal, client, language=language))
    sweep.open(reverse("mfa_activate_totp"))
    sweep.page.locator("#id_code").fill("000000")
    submit(sweep.page)
    assert_error_announced(sweep.page, "#id_code")
    sweep.check()
    sweep.open(reverse("account_reauthenticate"))
    sweep.done()


# -- errors next to their fields, announced -------------------------------------------------------
def assert_error_announced(page, selector: str) -> None:
    """The field is marked invalid, has the focus, and describes itself with its help and its error."""
    field = page.locator(selector)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    field_id = field.get_attribute("id")
    described_by = field.get_attribute("aria-describedby").split()
    assert f"{field_id}_error" in described_by, described_by
    # Next to the field: in the same .field block, and shown.
    error = page.locator(".field", has=field).locator(f"#{field_id}_error")
    expect(error).to_be_visible()
    expect(field).to_have_accessible_description(re.compile(re.escape(error.inner_text().strip())))
    help_text = page.locator(f"#{field_id}_helptext")
    if help_text.count():
        assert f"{field_id}_helptext" in described_by, described_by
        expect(field).to_have_accessible_description(re.compile(re.escape(help_text.inner_text().strip()[:40])))


@LANGUAGES
def test_form_errors_are_tied_to_their_fields_and_take_the_focus(person, portal, language):
    # Signing up with an email that has no domain ending: the browser lets it through, the portal does not.
    page = browser_for(person, portal, language=language).page
    page.goto(reverse("account_signup"))
    page.locator("#id_name").fill("Ana Lopez")
    page.locator("#id_email").fill("ana@example")
    page.locator("#id_password1").fill(PASSWORD)
    submit(page)
    assert_error_announced(page, "#id_email")

    # A code that is not a pairing code.
    parent = parent_make(f"codes.{language}@example.com", "Codes Parent")
    someone = browser_for(person, portal, signed_in_client(parent.user), language=language)
    someone.page.goto(reverse("add_child"))
    someone.page.locator("#id_codes").fill("abc")
    submit(someone.page)
    assert_error_announced(someone.page, "#id_codes")
    expect_refused(someone, 400)

    # A staff form: the reason to decline a request, left empty.
    admin = staff_member_make(f"errors.{language}@school.example", admin=True)
    held = LinkRequest.objects.create(
        parent=parent, code="HeLd12", state=LinkRequest.State.HELD, held_rule=LinkRequest.Rule.HOLD_ALL
    )
    staff = browser_for(person, portal, mfa_client(admin), language=language)
    staff.page.goto(reverse("staff_request_reject", args=[held.pk]))
    submit(staff.page)
    assert_error_announced(staff.page, "#id_reason")
    expect_refused(staff, 400)


def test_the_look_alike_hint_joins_the_code_fields_description(person, portal):
    parent = parent_make("hint@example.com", "Hint Parent")
    page = browser_for(person, portal, signed_in_client(parent.user)).page
    page.goto(reverse("add_child"))
    codes = page.locator("#id_codes")
    codes.fill("AbC1l0")
    expect(codes).to_have_accessible_description(re.compile("look alike"))
    codes.fill("AbCdEf")
    expect(codes).not_to_have_accessible_description(re.compile("look alike"))


# -- focus visible --------------------------------------------------------------------------------
FOCUSED = """() => {
    const element = document.activeElement;
    if (!element || element === document.body) return null;
    const style = getComputedStyle(element);
    const shown = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== "none";
    const name = (element.getAttribute("aria-label") || element.textContent || element.name || "").trim();
    return {key: element.outerHTML.slice(0, 80), name: `${element.tagName} ${name.slice(0, 40)}`, shown};
}"""


def assert_focus_always_visible(page, url: str) -> None:
    """Tabs through the whole page once; every element the keyboard reaches shows its focus."""
    page.goto(url)
    seen, hidden = [], []
    for _ in range(80):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or (seen and focused["key"] == seen[0]):
            break  # past the last element, or round to the first again
        seen.append(focused["key"])
        if not focused["shown"]:
            hidden.append(focused["name"])
    assert len(seen) > 3, f"the keyboard reached almost nothing on {url}: {seen}"
    assert not hidden, f"no visible focus on {url} for: {hidden}"


def test_every_element_the_keyboard_reaches_shows_its_focus(person, portal):
    assert_focus_always_visible(browser_for(person, portal).page, reverse("home"))
    student, _ = a_student_with_a_code()
    parent, _ = a_parent_with_every_kind_of_request(student)
    page = browser_for(person, portal, signed_in_client(parent.user)).page
    assert_focus_always_visible(page, reverse("parent_home"))
    assert_focus_always_visible(page, reverse("add_child"))
    admin = staff_member_make("focus.admin@school.example", admin=True)
    page = browser_for(person, portal, mfa_client(admin)).page
    assert_focus_always_visible(page, reverse("staff_requests"))
    assert_focus_always_visible(page, reverse("staff_policy"))


# -- reflow on a phone ----------------------------------------------------------------------------
@LANGUAGES
def test_the_family_pages_fit_a_phone_without_scrolling_sideways(person, portal, language):
    student, code = a_student_with_a_code()
    parent, link = a_parent_with_every_kind_of_request(student)
    pages = {
        None: [reverse("home"), reverse("account_login"), reverse("account_signup"), reverse("account_reset_password")],
        parent.user: [reverse("parent_home"), reverse("add_child"), reverse("link_remove", args=[link.pk])],
        student.user: [
            reverse("student_home"),
            reverse("pairing_code_detail", args=[code.pk]),
            reverse("pairing_code_card", args=[code.pk]),
        ],
    }
    problems = []
    for user, urls in pages.items():
        client = signed_in_client(user) if user else None
        sweep = Sweep(browser_for(person, portal, client, language=language, phone=True))
        for url in urls:
            sweep.page.goto(url)
            sweep.reflows()
        problems += sweep.problems
    assert not problems, "\n".join(problems)
