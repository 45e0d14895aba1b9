"""Every staff and family URL against every persona, generated from the URL conf.

The URLs are found by walking the resolver, not listed here: every pattern under ``staff/``,
``student/`` and ``family/``. Each needs a rule in RULES (which personas get through, with which
method, and how to build the objects its URL names), so a new URL without a rule fails until someone
decides who may use it. Rules for URLs that do not exist (yet) are simply not walked.

Personas (tests/staff/conftest.py): anonymous, parent_a, parent_b, student, staff, staff_admin.
Anyone a rule does not allow is refused: anonymous visitors are sent to sign in, everyone else gets
403, or what the rule's ``deny`` says (parent B gets 404 for parent A's link: it is not theirs to see).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from linking.models import (
    CodeEntryLockout,
    Course,
    Drift,
    ImportRow,
    ImportRun,
    LinkRequest,
    ObservationLink,
    PairHold,
    ReconciliationRun,
)
from tests.staff.conftest import PERSONAS, student_make
from tests.staff.conftest import staff_member_make as _staff_member_make

WALKED_PREFIXES = ("staff/", "student/", "family/")

STAFF = frozenset({"staff", "staff_admin"})
ADMIN = frozenset({"staff_admin"})
PARENTS = frozenset({"parent_a", "parent_b"})
STUDENT = frozenset({"student"})
# Statuses that mean "through the access checks": a page, a redirect after an action, or the
# action's form refused (400) because the matrix posts little or no data.
THROUGH = {200, 302, 400}


class World:
    """What a factory needs: the personas (signed in on demand) and fresh ids."""

    def __init__(self, request):
        self._request = request
        self._numbers = itertools.count(1)

    def __getattr__(self, persona: str):
        return self._request.getfixturevalue(persona)

    def number(self) -> int:
        return next(self._numbers)


@dataclass(frozen=True)
class Rule:
    method: str
    allow: frozenset[str]
    # The URL's kwargs, built fresh for each persona so that one persona's action cannot change what the next sees.
    kwargs: Callable[[World], dict] | None = None
    data: Callable[[World], dict] | None = None
    deny: dict[str, int] = field(default_factory=dict)


# -- objects for URLs that name one ---------------------------------------------------------------
def held_request(world: World) -> dict:
    parent = world.parent_a.parent
    request = LinkRequest.objects.create(
        parent=parent, code="HeLd12", state=LinkRequest.State.HELD, held_rule=LinkRequest.Rule.HOLD_ALL
    )
    return {"pk": request.pk}


def failed_request(world: World) -> dict:
    request = LinkRequest.objects.create(
        parent=world.parent_a.parent, state=LinkRequest.State.FAILED, failure=LinkRequest.Failure.UNCERTAIN
    )
    return {"pk": request.pk}


def parent_a_link(world: World) -> dict:
    link = ObservationLink.objects.create(
        parent=world.parent_a.parent,
        student=world.student.student,
        root_account_id=1000 + world.number(),
        method=ObservationLink.Method.PAIRING_CODE,
    )
    return {"pk": link.pk}


def active_hold(world: World) -> dict:
    hold = PairHold.objects.create(
        student=student_make(f"Held Student {world.number()}", with_account=False),
        parent_email="held.parent@example.com",
        reason="Court order on file",
    )
    return {"pk": hold.pk}


def active_lockout(world: World) -> dict:
    lockout = CodeEntryLockout.objects.create(
        scope=CodeEntryLockout.Scope.ACCOUNT,
        parent=world.parent_a.parent,
        failures=10,
        until=timezone.now() + timedelta(hours=24),
    )
    return {"pk": lockout.pk}


def the_student(world: World) -> dict:
    return {"pk": world.student.student.pk}


def a_course(world: World) -> dict:
    course = Course.objects.create(canvas_course_id=900 + world.number(), name="Year 9 Maths")
    course.students.add(world.student.student)
    return {"pk": course.pk}


def open_drift(world: World) -> dict:
    run = ReconciliationRun.objects.create(state=ReconciliationRun.State.DONE)
    drift = Drift.objects.create(
        run=run,
        kind=Drift.Kind.IN_CANVAS_ONLY,
        canvas_observer_id=70000 + world.number(),
        canvas_student_id=world.student.student.canvas_user_id,
        student=world.student.student,
    )
    return {"pk": drift.pk}


def another_staff_member(world: World) -> dict:
    user = _staff_member_make(f"staff{world.number()}@school.example", mfa=False)
    return {"pk": user.pk}


def an_import_run(state: str):
    def make(world: World) -> dict:
        run = ImportRun.objects.create(
            source=ImportRun.Source.UPLOAD,
            filename=f"families-{world.number()}.csv",
            file_sha256=f"{world.number():064d}",
            state=state,
            preview={"rows": 1},
        )
        ImportRow.objects.create(run=run, number=2, student_key="sis_id:S9", parent_email="p@example.com")
        return {"pk": run.pk}

    return make


def an_import_file(world: World) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = b"student_sis_id,parent_email,parent_first_name,parent_last_name\nS1001,p@example.com,Pat,Parent\n"
    return {"file": SimpleUploadedFile(f"families-{world.number()}.csv", content, content_type="text/csv")}


def own_code(world: World) -> dict:
    return {"pk": world.student.own["pairing_code"].pk}


RULES: dict[str, Rule] = {
    # accounts (linking/staff/accounts.py)
    "staff_home": Rule("GET", STAFF),
    "staff_policy": Rule("POST", ADMIN, data=lambda w: {"mode": "hold_all"}),
    "staff_accounts": Rule("GET", ADMIN),
    "staff_account_new": Rule("POST", ADMIN, data=lambda w: {"email": f"n{w.number()}@school.example", "name": "N"}),
    "staff_account_remove": Rule("POST", ADMIN, kwargs=another_staff_member),
    # review (linking/staff/review.py)
    "staff_requests": Rule("GET", STAFF),
    "staff_request_detail": Rule("GET", STAFF, kwargs=held_request),
    "staff_request_approve": Rule("POST", STAFF, kwargs=held_request),
    "staff_requests_approve_many": Rule("POST", STAFF),
    "staff_request_reject": Rule("POST", STAFF, kwargs=held_request, data=lambda w: {"reason": "Not a parent"}),
    "staff_request_retry": Rule("POST", STAFF, kwargs=failed_request),
    "staff_link_revoke": Rule("POST", STAFF, kwargs=parent_a_link, data=lambda w: {"reason": "Court order"}),
    "staff_holds": Rule("GET", STAFF),
    "staff_hold_new": Rule("GET", STAFF),
    "staff_hold_lift": Rule("POST", STAFF, kwargs=active_hold, data=lambda w: {"reason": "Order ended"}),
    "staff_student_flag": Rule("POST", STAFF, kwargs=the_student),
    # code-entry pauses (linking/staff/lockouts.py)
    "staff_lockouts": Rule("GET", STAFF),
    "staff_lockout_lift": Rule("POST", STAFF, kwargs=active_lockout),
    # reconciliation (linking/staff/reconciliation.py)
    "staff_drift": Rule("GET", STAFF),
    "staff_reconcile_now": Rule("POST", STAFF),
    "staff_drift_adopt": Rule("POST", STAFF, kwargs=open_drift),
    "staff_drift_mark_removed": Rule("POST", STAFF, kwargs=open_drift),
    "staff_drift_relink": Rule("POST", STAFF, kwargs=open_drift),
    # audit (linking/staff/audit.py)
    "staff_audit": Rule("GET", STAFF),
    "staff_audit_export": Rule("GET", STAFF),
    "staff_audit_verify": Rule("POST", STAFF),
    # codes and letters (linking/staff/letters.py)
    "staff_letters": Rule("GET", STAFF),
    "staff_courses_sync": Rule("POST", STAFF),
    "staff_letters_student": Rule("GET", STAFF, kwargs=the_student),
    "staff_letters_student_status": Rule("GET", STAFF, kwargs=the_student),
    "staff_code_new": Rule("POST", STAFF, kwargs=the_student),
    "staff_letters_course": Rule("GET", STAFF, kwargs=a_course),
    "staff_letters_course_status": Rule("GET", STAFF, kwargs=a_course),
    "staff_imports": Rule("GET", STAFF),
    "staff_import_new": Rule("POST", STAFF, data=an_import_file),
    "staff_import_preview": Rule("GET", STAFF, kwargs=an_import_run("preview")),
    "staff_import_status": Rule("GET", STAFF, kwargs=an_import_run("checking")),
    "staff_import_run": Rule("GET", STAFF, kwargs=an_import_run("running")),
    "staff_import_run_progress": Rule("GET", STAFF, kwargs=an_import_run("running")),
    "staff_import_run_start": Rule("POST", STAFF, kwargs=an_import_run("preview")),
    "staff_import_run_pause": Rule("POST", STAFF, kwargs=an_import_run("running")),
    "staff_import_run_resume": Rule("POST", STAFF, kwargs=an_import_run("paused")),
    "staff_import_run_cancel": Rule("POST", STAFF, kwargs=an_import_run("running")),
    "staff_import_report": Rule("GET", STAFF, kwargs=an_import_run("done")),
    # students: only their own codes (another student's code is a 404, tested below)
    "student_home": Rule("GET", STUDENT),
    "pairing_code_new": Rule("POST", STUDENT),
    "pairing_code_detail": Rule("GET", STUDENT, kwargs=own_code),
    "pairing_code_status": Rule("GET", STUDENT, kwargs=own_code),
    "pairing_code_card": Rule("GET", STUDENT, kwargs=own_code),
    "pairing_code_email": Rule("POST", STUDENT, kwargs=own_code, data=lambda w: {"email": "mum@example.com"}),
    # parents: only their own requests and links
    "parent_home": Rule("GET", PARENTS),
    "add_child": Rule("GET", PARENTS),
    "parent_requests": Rule("GET", PARENTS),
    "link_remove": Rule("POST", frozenset({"parent_a"}), kwargs=parent_a_link, deny={"parent_b": 404}),
}


# -- walking the URL conf -------------------------------------------------------------------------
def walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.name


def walked_urls() -> list[tuple[str, str | None]]:
    return sorted(
        {(route, name) for route, name in walk(get_resolver().url_patterns) if route.startswith(WALKED_PREFIXES)}
    )


WALKED = walked_urls()


def test_the_walk_finds_the_staff_console_and_the_family_pages():
    names = {name for _, name in WALKED}
    assert {"staff_home", "staff_policy", "staff_accounts", "student_home", "link_remove"} <= names


def test_every_walked_url_has_a_permission_rule():
    missing = [f"{route} ({name})" for route, name in WALKED if name not in RULES]
    assert not missing, "add a permission rule (tests/staff/test_permission_matrix.py RULES) for: " + ", ".join(missing)


@pytest.mark.parametrize(("route", "name"), WALKED, ids=[name or route for route, name in WALKED])
def test_it_lets_through_exactly_the_personas_its_rule_allows(request, route, name):
    if name is None:
        pytest.fail(f"give the URL {route} a name, then add a permission rule for it")
    rule = RULES.get(name)
    if rule is None:
        pytest.fail(f"add a permission rule for staff URL {name} ({route}) to RULES in {__file__}")
    world = World(request)
    wrong = []
    # Refused personas first, so an allowed persona's action cannot hide a leak.
    for persona in sorted(PERSONAS, key=lambda p: p in rule.allow):
        client = getattr(world, persona).client
        url = reverse(name, kwargs=rule.kwargs(world) if rule.kwargs else None)
        data = rule.data(world) if rule.data else {}
        response = client.post(url, data) if rule.method == "POST" else client.get(url, data)
        expected = _expected(rule, persona, url)
        got = _outcome(response)
        if got != expected:
            wrong.append(f"{persona} {rule.method} {url}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


def _expected(rule: Rule, persona: str, url: str) -> str:
    if persona in rule.allow:
        return "through"
    if persona in rule.deny:
        return str(rule.deny[persona])
    if persona == "anonymous":
        return f"sign in ({reverse('account_login')}?next=...)"
    return "403"


def _outcome(response) -> str:
    location = response.get("Location", "")
    if response.status_code == 302 and location.startswith(reverse("account_login") + "?next="):
        return f"sign in ({reverse('account_login')}?next=...)"
    if response.status_code == 302 and location.startswith("/accounts/"):
        return f"sent to {location}"  # the second factor, or anything else of allauth's
    if response.status_code in THROUGH:
        return "through"
    return str(response.status_code)


# -- only their own -------------------------------------------------------------------------------
def test_a_parent_sees_only_their_own_requests_and_links(parent_a, parent_b):
    mine = parent_a.client.get(reverse("parent_requests")).content.decode()
    theirs = parent_b.client.get(reverse("parent_requests")).content.decode()
    assert "Sofia Garcia" in mine and "Waiting for the school" in mine
    assert "Sofia Garcia" not in theirs and "Waiting for the school" not in theirs


def test_a_student_sees_only_their_own_codes(student):
    other = student_make("Other Student")
    from django.test import Client

    client = Client()
    client.force_login(other.user)
    code = student.own["pairing_code"]
    for name in ("pairing_code_detail", "pairing_code_status", "pairing_code_card"):
        assert client.get(reverse(name, args=[code.pk])).status_code == 404
    assert client.post(reverse("pairing_code_email", args=[code.pk]), {"email": "x@example.com"}).status_code == 404


# -- the second factor ----------------------------------------------------------------------------
def test_every_staff_url_asks_for_the_second_factor_before_anything_else(request):
    """A staff admin whose session never used the app (signed in some other way) reaches no staff URL."""
    from django.test import Client

    user = _staff_member_make("no.code@school.example", admin=True)
    client = Client()
    client.force_login(user)
    world = World(request)
    reached = []
    for route, name in WALKED:
        rule = RULES.get(name)
        if not route.startswith("staff/") or rule is None:
            continue
        url = reverse(name, kwargs=rule.kwargs(world) if rule.kwargs else None)
        response = client.post(url) if rule.method == "POST" else client.get(url)
        if response.status_code != 302 or not response["Location"].startswith(reverse("mfa_reauthenticate")):
            reached.append(f"{rule.method} {url}: {response.status_code}")
    assert not reached, "reached without the second factor:\n" + "\n".join(reached)
