"""The whole family journey through real HTTP: a student signs in through the simulator's OAuth pages
and makes a code; a parent registers, verifies their email and redeems it; the real Celery worker
links them in Canvas; the audit log holds every step and its chain verifies.

Each person has their own browser (a ``requests.Session``); nothing goes through Django's test client.
"""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

from django.core import mail
from django.core.management import call_command

from linking.audit.models import AuditEvent
from linking.canvas import CanvasClient
from linking.models import LinkRequest, ObservationLink, Parent, Student

from .conftest import Browser, Portal, parse, wait_for

PASSWORD = "correct horse battery staple"
VERIFICATION_CODE = re.compile(r"^\s*([A-Z0-9]{4,}(?:-[A-Z0-9]+)*)\s*$", re.MULTILINE)


# -- the student ----------------------------------------------------------------------------------
def a_canvas_student(portal: Portal, *, enrolled: bool = True) -> dict:
    """A fresh student in the shared simulator, so tests never share a person."""
    return portal.sim.make_user(name=f"Student {portal.sim.unique('s')}", student=enrolled, password="student-password")


def signs_in_with_canvas(portal: Portal, browser: Browser, canvas_user: dict) -> None:
    continue_page = browser.follow(browser.get("/"), "Sign in with Canvas")
    canvas_login = browser.press(continue_page, "Continue")
    assert canvas_login.url.startswith(f"{portal.sim.base_url}/login/oauth2/auth?"), canvas_login.url
    consent = browser.press(
        canvas_login,
        "Log in",
        **{
            "pseudonym_session[unique_id]": canvas_user["login"],
            "pseudonym_session[password]": canvas_user["password"],
        },
    )
    landing = browser.press(consent, "Authorize")
    assert landing.status_code == 200, landing.text
    assert urlsplit(landing.url).path == "/student/", landing.url
    assert canvas_user["name"] in landing.text


def code_made_in_canvas(portal: Portal, canvas_user: dict) -> str:
    """A code the student made in Canvas itself (Account, Settings, Pair with Observer)."""
    student = CanvasClient(base_url=portal.sim.base_url, token=canvas_user["token"])
    return student.create_pairing_code(canvas_user["id"]).code


def invites_a_parent(browser: Browser):
    """Press "Invite a parent" and wait for the worker; returns the code page once it has settled."""
    page = browser.press(browser.get("/student/"), "Invite a parent")
    assert page.status_code == 200, page.text
    assert re.fullmatch(r"/student/codes/[0-9a-f-]{36}/", urlsplit(page.url).path), page.url
    browser.settled(page.url + "status/")
    return browser.get(page.url)


def code_on(page) -> str:
    match = re.search(r'id="the-code"[^>]*>([A-Za-z0-9]{6})<', page.text)
    assert match, page.text
    return match.group(1)


# -- the parent -----------------------------------------------------------------------------------
def registers_as_a_parent(browser: Browser, signup, *, name: str, email: str):
    """Fill in the signup form on ``signup`` and confirm the emailed code; returns where they land."""
    confirm = browser.press(signup, "Sign Up", name=name, email=email, password1=PASSWORD)
    assert urlsplit(confirm.url).path == "/accounts/confirm-email/", confirm.url
    landing = browser.press(confirm, "Confirm", code=verification_code_sent_to(email))
    assert landing.status_code == 200, landing.text
    assert Parent.objects.get(user__email=email).name == name
    return landing


def verification_code_sent_to(email: str) -> str:
    # allauth's subjects carry ACCOUNT_EMAIL_SUBJECT_PREFIX; the pairing-code email's does not.
    [message] = [m for m in mail.outbox if m.to == [email] and m.subject.startswith("Family Portal:")]
    match = VERIFICATION_CODE.search(message.body)
    assert match, message.body
    return match.group(1)


def a_registered_parent(portal: Portal, name: str = "Maria Garcia") -> tuple[Browser, str]:
    browser, email = portal.browser(), f"{portal.sim.unique('parent')}@example.test"
    registers_as_a_parent(browser, browser.get("/accounts/signup/"), name=name, email=email)
    return browser, email


def enters_codes(browser: Browser, codes: str):
    """Type codes into "Add a child"; returns the dashboard once the worker is done with them."""
    dashboard = browser.press(browser.get("/family/add/"), "Link", codes=codes)
    assert urlsplit(dashboard.url).path == "/family/", dashboard.url
    browser.settled("/family/requests/")
    return browser.get("/family/")


def linked_in_canvas(portal: Portal, parent: Parent) -> list[int]:
    return [student["id"] for student in portal.canvas_admin().list_observees(parent.canvas_user_id)]


def audit_chain_verifies() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


# -- the journeys ---------------------------------------------------------------------------------
def test_a_student_invites_a_parent_who_registers_and_is_linked_in_canvas(portal):
    student_canvas = a_canvas_student(portal)
    student, parent = portal.browser(), portal.browser()
    parent_email = f"{portal.sim.unique('parent')}@example.test"

    signs_in_with_canvas(portal, student, student_canvas)
    code_page = invites_a_parent(student)
    code = code_on(code_page)
    assert "<svg" in code_page.text  # the QR code, inline
    assert "Expires" in code_page.text
    card = student.follow(code_page, "Printable card")
    assert code in card.text
    sent = student.press(code_page, "Send the code", email=parent_email)
    assert f"emailing the code to {parent_email}" in sent.text
    if portal.worker == "thread":  # a worker process prints its email to its console instead
        email = wait_for(
            lambda: next((m for m in mail.outbox if m.to == [parent_email]), None), message="the code's email"
        )
        assert code in email.body
        assert f"/family/add/?code={code}" in email.body

    # The parent scans the QR code before having an account: sign in, "sign up", and back to the code.
    sign_in = parent.get(f"/family/add/?code={code}")
    assert urlsplit(sign_in.url).path == "/accounts/login/", sign_in.url
    signup = parent.follow(sign_in, "sign up")
    add_child = registers_as_a_parent(parent, signup, name="Maria Garcia", email=parent_email)
    assert urlsplit(add_child.url).path == "/family/add/", add_child.url
    [form] = [form for form in parse(add_child).forms if "codes" in form.fields]
    assert (form.fields["codes"], form.fields["source"]) == (code, "qr")
    dashboard = parent.press(add_child, "Link")
    assert urlsplit(dashboard.url).path == "/family/"
    parent.settled("/family/requests/")
    dashboard = parent.get("/family/")

    assert student_canvas["name"] in dashboard.text
    assert "Remove this link" in dashboard.text
    maria = Parent.objects.get(user__email=parent_email)
    canvas = portal.canvas_admin()
    assert [u["id"] for u in canvas.search_users(parent_email) if u.get("login_id") == parent_email] == [
        maria.canvas_user_id
    ]
    assert canvas.find_user_by_email(parent_email)["id"] == maria.canvas_user_id
    assert linked_in_canvas(portal, maria) == [student_canvas["id"]]
    [request] = LinkRequest.objects.filter(parent=maria)
    assert (request.state, request.source, request.student.canvas_user_id) == ("linked", "qr", student_canvas["id"])
    link = ObservationLink.objects.get(parent=maria)
    assert (link.state, link.method, link.link_request.source) == ("active", "pairing_code", "qr")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"pairing_code.created", "pairing_code.emailed", "link_request.submitted", "link.created"} <= actions
    assert AuditEvent.objects.get(action="link.created").data["source"] == "qr"
    assert "Audit chain OK" in audit_chain_verifies()


def test_a_parent_links_two_children_with_one_submission(portal):
    first_canvas, second_canvas = a_canvas_student(portal), a_canvas_student(portal)
    first = portal.browser()
    signs_in_with_canvas(portal, first, first_canvas)
    first_code = code_on(invites_a_parent(first))
    second_code = code_made_in_canvas(portal, second_canvas)
    parent, email = a_registered_parent(portal)

    dashboard = enters_codes(parent, f"{first_code} {second_code}")

    assert first_canvas["name"] in dashboard.text and second_canvas["name"] in dashboard.text
    maria = Parent.objects.get(user__email=email)
    assert sorted(linked_in_canvas(portal, maria)) == sorted([first_canvas["id"], second_canvas["id"]])
    assert set(LinkRequest.objects.filter(parent=maria).values_list("state", "source")) == {("linked", "typed")}
    assert ObservationLink.objects.filter(parent=maria, state="active").count() == 2


def test_a_wrong_code_is_explained_in_plain_words(portal):
    parent, email = a_registered_parent(portal)

    dashboard = enters_codes(parent, "zzZZ99")

    assert "Codes that didn" in dashboard.text
    assert "Ask your child to make a new code" in dashboard.text
    assert LinkRequest.objects.get(parent__user__email=email).state == "failed"
    assert "Audit chain OK" in audit_chain_verifies()


def test_a_student_who_is_not_enrolled_is_told_why_there_is_no_code(portal):
    canvas_user = a_canvas_student(portal, enrolled=False)
    student = portal.browser()
    signs_in_with_canvas(portal, student, canvas_user)

    page = invites_a_parent(student)

    assert "No code this time" in page.text
    assert "not enrolled in any course" in page.text
    assert 'id="the-code"' not in page.text
    assert Student.objects.get(canvas_user_id=canvas_user["id"]).pairing_codes.get().failure == "not_enrolled"


def test_a_parent_removes_a_link_and_canvas_forgets_it(portal):
    child = a_canvas_student(portal)
    parent, email = a_registered_parent(portal)
    dashboard = enters_codes(parent, code_made_in_canvas(portal, child))
    maria = Parent.objects.get(user__email=email)
    assert linked_in_canvas(portal, maria) == [child["id"]]

    confirmation = parent.follow(dashboard, "Remove this link")
    assert f"Stop following {child['name']}?" in confirmation.text
    after = parent.press(confirmation, "Remove the link")
    assert urlsplit(after.url).path == "/family/"

    wait_for(lambda: linked_in_canvas(portal, maria) == [], message="Canvas to drop the link")
    wait_for(lambda: child["name"] not in parent.get("/family/").text, message="the dashboard to drop the child")
    assert ObservationLink.objects.get(parent=maria).state == "removed"
    assert AuditEvent.objects.filter(action="link.removed", outcome="removed").exists()
    assert "Audit chain OK" in audit_chain_verifies()


def test_the_dashboard_keeps_updating_while_a_link_is_being_removed(portal):
    child = a_canvas_student(portal)
    parent, email = a_registered_parent(portal)
    dashboard = enters_codes(parent, code_made_in_canvas(portal, child))
    confirmation = parent.follow(dashboard, "Remove this link")
    portal.sim.configure(latency_ms=700)  # Canvas is slow to answer the unlink: the page shows "Removing…"

    dashboard = parent.press(confirmation, "Remove the link")

    try:
        assert "Removing…" in dashboard.text
        assert "data-poll-idle" not in dashboard.text
        assert parent.get("/family/requests/").headers["X-Pending"] == "1"
    finally:  # let the worker finish before the database is emptied for the next test
        portal.sim.configure(latency_ms=0)
        links = ObservationLink.objects.filter(parent__user__email=email)
        wait_for(lambda: not links.exclude(state="removed").exists(), message="the unlink to finish")
