"""What the fuzz tests send where: one entry per URL in the URL conf, keyed by the URL's name.

An entry is a list of :class:`Target`: the persona who uses the URL (``tests/staff/conftest.py``, plus
the half-way sign-in states below), the method, the form fields and query parameters its view reads,
how to build the objects its path names, and how the view refuses bad input. ``test_fuzz_urls.py``
walks the URL conf and fails, naming the URL, when one has no entry here, so a new page is fuzzed or
the suite says it is not. The fields listed are a floor: for a GET the harness also adds every field
name it finds in the page's own forms, so a field added to a form later is fuzzed without an edit here.

Refusals (``refusal``):

- ``"400"``: our own forms; an invalid submission answers 400 with the errors next to the fields;
- ``"rerender"``: allauth's views (and the admin's), which show their form again at 200 with the errors;
- ``"redirect"``: a button whose form lives on another page (approve, flag, a run's actions); bad input
  goes back there with an error message, the way the staff console reports a refusal.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from linking.models import (
    CodeEntryLockout,
    Course,
    Drift,
    ImportRow,
    ImportRun,
    LinkPolicy,
    LinkRequest,
    ObservationLink,
    PairHold,
    PairingCode,
    ReconciliationRun,
    Student,
)
from tests.staff.conftest import PASSWORD, PERSONAS, password_client, staff_member_make, student_make

User = get_user_model()


@dataclass(frozen=True)
class Target:
    persona: str
    method: str = "GET"
    fields: tuple[str, ...] = ()
    # The URL's kwargs, for an object this persona may use.
    kwargs: Callable[[World], dict] | None = None
    # The model the path's id names: ids of every other table must not find anything here.
    model: type | None = None
    # Someone else's objects (kwargs): this persona must get 404 for each.
    others: Callable[[World], list[dict]] | None = None
    refusal: str = "400"


class World:
    """The personas of tests/staff/conftest.py (built on demand), half-way sign-in states, fresh numbers."""

    def __init__(self, request):
        self._request = request
        self._numbers = itertools.count(1)
        self._stages: dict[str, Client] = {}
        # The policy is a row made on first read; made here, so that the first page to read it is not
        # taken for a form that left a row behind.
        LinkPolicy.current()

    def number(self) -> int:
        return next(self._numbers)

    def persona(self, name: str):
        return self._request.getfixturevalue(name) if name in PERSONAS else None

    def client(self, name: str) -> Client:
        if name in PERSONAS:
            return self.persona(name).client
        if name not in self._stages:
            self._stages[name] = getattr(self, f"_{name}")()
        return self._stages[name]

    # -- half-way through signing in: the form that comes next is the one fuzzed --
    def _login_code(self) -> Client:
        """A parent who asked to sign in by an emailed code, at the page that asks for it."""
        client = Client()
        email = self.persona("parent_b").user.email
        response = client.post(reverse("account_request_login_code"), {"email": email})
        assert response.status_code == 302 and response["Location"] == reverse("account_confirm_login_code")
        return client

    def _reset_code(self) -> Client:
        """A parent who asked to reset their password, at the page that asks for the emailed code."""
        client = Client()
        response = client.post(reverse("account_reset_password"), {"email": self.persona("parent_b").user.email})
        assert response.status_code == 302, response.status_code
        assert client.get(reverse("account_confirm_password_reset_code")).status_code == 200
        return client

    def _reset_complete(self) -> Client:
        """A parent who entered the emailed reset code, at the page that asks for a new password."""
        mail.outbox.clear()
        client = self._reset_code()
        code = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", mail.outbox[-1].body, re.M).group(1)
        response = client.post(reverse("account_confirm_password_reset_code"), {"code": code})
        assert response["Location"] == reverse("account_complete_password_reset"), response.status_code
        return client

    def _email_code(self) -> Client:
        """A new parent who signed up, at the page that asks for the code emailed to confirm the address."""
        client = Client()
        data = {"name": "New Parent", "email": f"new{self.number()}@example.com", "password1": PASSWORD}
        response = client.post(reverse("account_signup"), data)
        assert response["Location"] == reverse("account_email_verification_sent"), response.status_code
        return client

    def _mfa_code(self) -> Client:
        """Staff who gave their password and are asked for their authenticator app's code."""
        return password_client(staff_member_make(f"code{self.number()}@school.example"))

    def _totp_setup(self) -> Client:
        """Staff without an authenticator app yet, at the page that sets one up."""
        client = password_client(staff_member_make(f"new{self.number()}@school.example", mfa=False))
        # allauth asks for the password again before an authenticator is added.
        response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
        assert response.status_code == 302, response.status_code
        assert client.get(reverse("mfa_activate_totp")).status_code == 200
        return client

    def _canvas_student(self) -> Client:
        """The student, with the Canvas account they signed in with (as every real student has)."""
        student = self.persona("student")
        SocialAccount.objects.create(user=student.user, provider="canvas", uid=str(student.student.canvas_user_id))
        return student.client


# -- objects the URLs name --------------------------------------------------------------------------
def own_code(world: World) -> dict:
    return {"pk": world.persona("student").own["pairing_code"].pk}


def other_students_code(world: World) -> list[dict]:
    other = student_make(f"Other Student {world.number()}")
    code = PairingCode.objects.create(student=other, requested_by=other.user, state=PairingCode.State.ACTIVE)
    return [{"pk": code.pk}]


def parent_a_link(world: World) -> dict:
    return {"pk": world.persona("parent_a").own["link"].pk}


def parent_b_link(world: World) -> list[dict]:
    link = ObservationLink.objects.create(
        parent=world.persona("parent_b").parent,
        student=student_make(f"B's child {world.number()}", with_account=False),
        root_account_id=1,
        method=ObservationLink.Method.PAIRING_CODE,
    )
    return [{"pk": link.pk}]


def held_request(world: World) -> dict:
    return {"pk": world.persona("parent_a").own["request"].pk}


def failed_request(world: World) -> dict:
    request = LinkRequest.objects.create(
        parent=world.persona("parent_a").parent, state=LinkRequest.State.FAILED, failure=LinkRequest.Failure.UNCERTAIN
    )
    return {"pk": request.pk}


def a_link(world: World) -> dict:
    return parent_a_link(world)


def active_hold(world: World) -> dict:
    hold = PairHold.objects.create(
        student=world.persona("student").student, parent_email="held.parent@example.com", reason="Court order"
    )
    return {"pk": hold.pk}


def the_student(world: World) -> dict:
    return {"pk": world.persona("student").student.pk}


def a_course(world: World) -> dict:
    course = Course.objects.create(canvas_course_id=900 + world.number(), name="Year 9 Maths", account_id=7)
    course.students.add(world.persona("student").student)
    return {"pk": course.pk}


def open_drift(world: World) -> dict:
    run = ReconciliationRun.objects.create(state=ReconciliationRun.State.DONE)
    student = world.persona("student").student
    drift = Drift.objects.create(
        run=run,
        kind=Drift.Kind.IN_CANVAS_ONLY,
        canvas_observer_id=70000 + world.number(),
        canvas_student_id=student.canvas_user_id,
        student=student,
    )
    return {"pk": drift.pk}


def another_staff_member(world: World) -> dict:
    return {"pk": staff_member_make(f"staff{world.number()}@school.example", mfa=False).pk}


def not_staff(world: World) -> list[dict]:
    """People who are not staff: removing them from the staff is not a thing."""
    return [{"pk": world.persona("parent_a").user.pk}, {"pk": world.persona("student").user.pk}]


def an_import_run(state: str):
    def make(world: World) -> dict:
        number = world.number()
        run = ImportRun.objects.create(
            source=ImportRun.Source.UPLOAD,
            filename=f"families-{number}.csv",
            file_sha256=f"{number:064d}",
            state=state,
            preview={"rows": 2, "errors": 1},
        )
        ImportRow.objects.create(run=run, number=2, student_key="sis_id:S9", parent_email="p@example.com")
        ImportRow.objects.create(
            run=run, number=3, student_key="", state=ImportRow.State.INVALID, error="No student SIS id, login or email"
        )
        return {"pk": run.pk}

    return make


def a_lockout(world: World) -> dict:
    lockout = CodeEntryLockout.objects.create(
        scope=CodeEntryLockout.Scope.ACCOUNT,
        parent=world.persona("parent_a").parent,
        failures=10,
        until=timezone.now() + timezone.timedelta(hours=24),
    )
    return {"pk": lockout.pk}


# -- field lists ------------------------------------------------------------------------------------
REVIEW_FILTERS = ("q", "state", "held_rule", "created_from", "created_to", "course", "school", "sort", "per_page")
AUDIT_FILTERS = ("action", "actor_label", "outcome", "date_from", "date_to", "subject", "subject_key")
POLICY = ("mode", "max_observers", "watched_domains", "hold_flagged_students", "retention_days")

STAFF, ADMIN = "staff", "staff_admin"


def page(*fields: str) -> tuple[str, ...]:
    return (*fields, "page")


TARGETS: dict[str, list[Target]] = {
    "home": [Target("anonymous")],
    # The health check reads no field; whatever a query string holds, it answers its JSON.
    "healthz": [Target("anonymous")],
    # The school's stylesheet and logo read only ?v=, a digest: any other value gets the file, kept a while.
    "school_theme": [Target("anonymous", fields=("v",))],
    "school_logo": [Target("anonymous", fields=("v",))],
    # The header's language switch (linking/views.py): a language it does not speak, or a next that is not
    # the portal's, is ignored the way Django's set_language ignores it (back to the page, nothing saved).
    "language_set": [
        Target("anonymous", "POST", ("language", "next"), refusal="redirect"),
        Target("parent_a", "POST", ("language", "next"), refusal="redirect"),
    ],
    # -- students (linking/views.py) --
    "student_home": [Target("student")],
    "pairing_code_new": [Target("student", "POST")],
    "pairing_code_detail": [Target("student", kwargs=own_code, model=PairingCode, others=other_students_code)],
    "pairing_code_status": [Target("student", kwargs=own_code, model=PairingCode, others=other_students_code)],
    "pairing_code_card": [Target("student", kwargs=own_code, model=PairingCode, others=other_students_code)],
    "pairing_code_email": [
        Target("student", "POST", ("email",), kwargs=own_code, model=PairingCode, others=other_students_code)
    ],
    # -- parents (linking/views.py) --
    "parent_home": [Target("parent_a")],
    "parent_requests": [Target("parent_a")],
    "add_child": [Target("parent_a", "GET", ("code",)), Target("parent_a", "POST", ("codes", "source"))],
    "link_remove": [
        Target("parent_a", "GET", kwargs=parent_a_link, model=ObservationLink, others=parent_b_link),
        Target("parent_a", "POST", kwargs=parent_a_link, model=ObservationLink, others=parent_b_link),
    ],
    # -- staff: overview, policy, staff accounts (linking/staff/accounts.py) --
    "staff_home": [Target(STAFF)],
    "staff_policy": [Target(ADMIN), Target(ADMIN, "POST", POLICY)],
    "staff_accounts": [Target(ADMIN)],
    "staff_account_new": [Target(ADMIN), Target(ADMIN, "POST", ("email", "name", "role"))],
    "staff_account_remove": [
        Target(ADMIN, "POST", kwargs=another_staff_member, model=User, others=not_staff, refusal="redirect")
    ],
    # -- staff: review (linking/staff/review.py) --
    "staff_requests": [Target(STAFF, "GET", page(*REVIEW_FILTERS))],
    "staff_requests_approve_many": [Target(STAFF, "POST", ("link_requests", "next"), refusal="redirect")],
    "staff_request_detail": [Target(STAFF, kwargs=held_request, model=LinkRequest)],
    "staff_request_approve": [Target(STAFF, "POST", kwargs=held_request, model=LinkRequest, refusal="redirect")],
    "staff_request_reject": [
        Target(STAFF, kwargs=held_request, model=LinkRequest),
        Target(STAFF, "POST", ("reason",), kwargs=held_request, model=LinkRequest),
    ],
    "staff_request_retry": [Target(STAFF, "POST", kwargs=failed_request, model=LinkRequest, refusal="redirect")],
    "staff_link_revoke": [
        Target(STAFF, kwargs=a_link, model=ObservationLink),
        Target(STAFF, "POST", ("reason",), kwargs=a_link, model=ObservationLink),
    ],
    "staff_holds": [Target(STAFF)],
    "staff_hold_new": [
        Target(STAFF, "GET", ("student", "parent_email")),
        Target(STAFF, "POST", ("student", "find_student", "parent_email", "reason")),
    ],
    "staff_hold_lift": [Target(STAFF, "POST", ("reason",), kwargs=active_hold, model=PairHold)],
    "staff_student_flag": [
        Target(STAFF, "POST", ("flagged", "next"), kwargs=the_student, model=Student, refusal="redirect")
    ],
    # -- staff: code-entry pauses (linking/staff/lockouts.py) --
    "staff_lockouts": [Target(STAFF)],
    "staff_lockout_lift": [
        Target(STAFF, "POST", kwargs=a_lockout, model=CodeEntryLockout, refusal="redirect"),
    ],
    # -- staff: reconciliation (linking/staff/reconciliation.py) --
    "staff_drift": [Target(STAFF)],
    "staff_reconcile_now": [Target(STAFF, "POST")],
    "staff_drift_adopt": [Target(STAFF, "POST", kwargs=open_drift, model=Drift, refusal="redirect")],
    "staff_drift_mark_removed": [Target(STAFF, "POST", kwargs=open_drift, model=Drift, refusal="redirect")],
    "staff_drift_relink": [Target(STAFF, "POST", kwargs=open_drift, model=Drift, refusal="redirect")],
    # -- staff: audit log (linking/staff/audit.py) --
    "staff_audit": [Target(STAFF, "GET", page(*AUDIT_FILTERS))],
    "staff_audit_export": [Target(STAFF, "GET", AUDIT_FILTERS)],
    "staff_audit_verify": [Target(STAFF, "POST")],
    # -- staff: codes and letters (linking/staff/letters.py) --
    "staff_letters": [Target(STAFF, "GET", ("q", "course", "lang"))],
    "staff_courses_sync": [Target(STAFF, "POST")],
    "staff_letters_student": [Target(STAFF, "GET", ("lang",), kwargs=the_student, model=Student)],
    "staff_letters_student_status": [Target(STAFF, "GET", ("lang",), kwargs=the_student, model=Student)],
    "staff_code_new": [Target(STAFF, "POST", ("lang",), kwargs=the_student, model=Student)],
    "staff_letters_course": [
        Target(STAFF, "GET", ("lang",), kwargs=a_course, model=Course),
        Target(STAFF, "POST", ("lang",), kwargs=a_course, model=Course),
    ],
    "staff_letters_course_status": [Target(STAFF, "GET", ("lang",), kwargs=a_course, model=Course)],
    # -- staff: imports (linking/staff/imports.py, import_runs.py); uploads: test_fuzz_uploads.py --
    "staff_imports": [Target(STAFF)],
    "staff_import_new": [Target(STAFF, "POST", ("file", "dry_run", "method"))],
    "staff_import_preview": [Target(STAFF, "GET", ("page",), kwargs=an_import_run("preview"), model=ImportRun)],
    "staff_import_status": [Target(STAFF, "GET", ("page",), kwargs=an_import_run("checking"), model=ImportRun)],
    "staff_import_run": [Target(STAFF, kwargs=an_import_run("preview"), model=ImportRun)],
    "staff_import_run_progress": [Target(STAFF, kwargs=an_import_run("running"), model=ImportRun)],
    "staff_import_run_start": [
        Target(STAFF, "POST", ("method",), kwargs=an_import_run("preview"), model=ImportRun, refusal="redirect")
    ],
    "staff_import_run_pause": [
        Target(STAFF, "POST", kwargs=an_import_run("running"), model=ImportRun, refusal="redirect")
    ],
    "staff_import_run_resume": [
        Target(STAFF, "POST", kwargs=an_import_run("paused"), model=ImportRun, refusal="redirect")
    ],
    "staff_import_run_cancel": [
        Target(STAFF, "POST", kwargs=an_import_run("running"), model=ImportRun, refusal="redirect")
    ],
    "staff_import_report": [Target(STAFF, kwargs=an_import_run("done"), model=ImportRun)],
    # -- accounts: allauth's forms, as the portal configures them --
    "account_login": [
        Target("anonymous", "GET", ("next",)),
        Target("anonymous", "POST", ("login", "password", "remember", "next"), refusal="rerender"),
    ],
    "account_logout": [Target("parent_b"), Target("parent_b", "POST", ("next",), refusal="rerender")],
    "account_inactive": [Target("anonymous")],
    "account_signup": [
        Target("anonymous", "GET", ("next",)),
        Target("anonymous", "POST", ("name", "email", "password1", "next"), refusal="rerender"),
    ],
    "account_reauthenticate": [Target("parent_a", "POST", ("password", "next"), refusal="rerender")],
    "account_email": [
        Target(
            "parent_a",
            "POST",
            ("email", "action_add", "action_send", "action_remove", "action_primary"),
            refusal="rerender",
        )
    ],
    "account_email_verification_sent": [
        Target("anonymous"),
        Target("email_code", "POST", ("code",), refusal="rerender"),
    ],
    "account_change_password": [
        Target("parent_a", "POST", ("oldpassword", "password1", "password2"), refusal="rerender")
    ],
    "account_set_password": [Target("student", "POST", ("password1", "password2"), refusal="rerender")],
    "account_reset_password": [Target("anonymous", "POST", ("email",), refusal="rerender")],
    "account_request_login_code": [Target("anonymous", "POST", ("email",), refusal="rerender")],
    "account_confirm_login_code": [Target("login_code", "POST", ("code",), refusal="rerender")],
    "account_confirm_password_reset_code": [Target("reset_code", "POST", ("code",), refusal="rerender")],
    "account_complete_password_reset": [
        Target("reset_complete", "POST", ("password1", "password2"), refusal="rerender")
    ],
    "account_password_reset_completed": [Target("anonymous")],
    # -- accounts: the second factor (allauth.mfa) --
    "mfa_index": [Target(STAFF)],
    "mfa_authenticate": [Target("mfa_code", "POST", ("code",), refusal="rerender")],
    "mfa_reauthenticate": [Target(STAFF, "POST", ("code", "next"), refusal="rerender")],
    "mfa_activate_totp": [Target("totp_setup", "POST", ("code", "next"), refusal="rerender")],
    "mfa_deactivate_totp": [Target(STAFF, "POST", ("code",), refusal="rerender")],
    "mfa_view_recovery_codes": [Target(STAFF)],
    "mfa_generate_recovery_codes": [Target(STAFF, "POST", refusal="rerender")],
    "mfa_download_recovery_codes": [Target(STAFF)],
    # -- accounts: sign in with Canvas (allauth.socialaccount, linking/canvas_oauth) --
    "canvas_login": [
        Target("anonymous", "GET", ("process", "next", "scope", "auth_params")),
        Target("anonymous", "POST", ("process", "next", "scope", "auth_params"), refusal="rerender"),
    ],
    "canvas_callback": [Target("anonymous", "GET", ("code", "state", "error", "error_description", "error_reason"))],
    "socialaccount_login_cancelled": [Target("anonymous")],
    "socialaccount_login_error": [Target("anonymous")],
    "socialaccount_signup": [Target("anonymous", "GET"), Target("anonymous", "POST", ("email",), refusal="rerender")],
    "socialaccount_connections": [Target("canvas_student", "POST", ("account",), refusal="rerender")],
    # allauth's old addresses, which redirect to the ones above
    "accounts/social/login/cancelled/": [Target("anonymous")],
    "accounts/social/login/error/": [Target("anonymous")],
    "accounts/social/signup/": [Target("anonymous")],
    "accounts/social/connections/": [Target("anonymous")],
}

# Personas that are not signed in: a redirect to the sign-in page is an answer for them, not a miss.
SIGNED_OUT = {"anonymous", "login_code", "reset_code", "reset_complete", "mfa_code", "email_code"}
