"""Every URL in the URL conf against every persona.

The URLs are found by walking the resolver, not listed here: the home page, allauth's ``accounts/``
(sign-in, the second factor, the Canvas provider), Django's ``admin/``, the staff console, the student
and family pages. Each needs a rule in RULES (keyed by its name, ``namespace:name``, or by its route
when it has no name): which personas get through, with which method, how to build the objects its URL
names, and what the others get. A new URL without a rule fails until someone decides who may use it.

Personas (tests/staff/conftest.py): anonymous, parent_a, parent_b, student, staff, staff_admin. Anyone
a rule does not allow is refused: anonymous visitors are sent to sign in, everyone else gets 403, or
what the rule's ``deny`` says (parent B gets 404 for parent A's link: it is not theirs to see). Django's
admin lets none of the six in; only a superuser signed in with the second factor (tested at the end).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.sites.models import Site
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from linking.audit.models import AuditEvent
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

# /healthz answers 503 while the broker is down: the session's worker brings one that answers (memory:// on
# a laptop, Redis in CI). A fixture of the module, so that it starts before a test's transaction does.
pytestmark = pytest.mark.usefixtures("celery_worker", "fast_passwords", "canvas_sign_in")

EVERYONE = frozenset(PERSONAS)
SIGNED_IN = EVERYONE - {"anonymous"}
NOBODY = frozenset()
STAFF = frozenset({"staff", "staff_admin"})
ADMIN = frozenset({"staff_admin"})
PARENTS = frozenset({"parent_a", "parent_b"})
STUDENT = frozenset({"student"})

# What a persona gets. "through": past the access checks (a page, a redirect after an action or to the
# next step of a flow, or the action's form refused with 400 because the matrix posts little or no data).
THROUGH = "through"
SIGN_IN = "sign in"
ADMIN_SIGN_IN = "the admin's sign-in"
REAUTHENTICATE = "confirm who they are again"
SET_UP_SECOND_FACTOR = "set up an authenticator app"


def every(outcome: str | int, *, among=EVERYONE) -> dict[str, str | int]:
    return dict.fromkeys(among, outcome)


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
    deny: dict[str, str | int] = field(default_factory=dict)
    # For a URL without a name: how to spell it.
    url: Callable[[World], str] | None = None

    def build_url(self, world: World, key: str) -> str:
        if self.url is not None:
            return self.url(world)
        return reverse(key, kwargs=self.kwargs(world) if self.kwargs else None)


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


# -- Django's admin -------------------------------------------------------------------------------
# Every model registered in the admin, by "app_label.model_name". A model registered later has URLs
# without a rule until it is added here, after deciding that superusers alone may see it.
ADMIN_MODELS = (
    "account.emailaddress",
    "audit.auditevent",
    "auth.group",
    "auth.user",
    "mfa.authenticator",
    "sites.site",
    "socialaccount.socialaccount",
    "socialaccount.socialapp",
    "socialaccount.socialtoken",
)


def admin_object(world: World, label: str):
    """An object of the admin model ``label`` that exists, so that a superuser's pages for it open."""
    student = world.student.user
    if label == "socialaccount.socialapp":
        return SocialApp.objects.get_or_create(provider="openid_connect", name="Matrix app", client_id="matrix")[0]
    if label in {"socialaccount.socialaccount", "socialaccount.socialtoken"}:
        account = SocialAccount.objects.get_or_create(user=student, provider="canvas", uid=str(student.pk))[0]
        if label == "socialaccount.socialaccount":
            return account
        return SocialToken.objects.get_or_create(account=account, defaults={"token": "matrix-token"})[0]
    if label == "auth.group":
        return Group.objects.order_by("pk").first()
    if label == "sites.site":
        return Site.objects.get_current()
    if label == "audit.auditevent":
        world.staff_admin  # noqa: B018 - making staff records events
        return AuditEvent.objects.order_by("pk").first()
    if label == "mfa.authenticator":
        return Authenticator.objects.filter(user=world.staff.user).first()
    if label == "account.emailaddress":
        return world.parent_a.user.emailaddress_set.first()
    return world.parent_a.user  # auth.user


def admin_rule(label: str, view: str) -> Rule:
    """Nobody among the personas: each is sent to the admin's sign-in (the superuser test opens them)."""
    if view in {"changelist", "add"}:
        return Rule("GET", NOBODY, deny=every(ADMIN_SIGN_IN))
    if view == "redirect":  # <path:object_id>/ without a name: a redirect to .../change/
        return Rule(
            "GET",
            NOBODY,
            deny=every(ADMIN_SIGN_IN),
            url=lambda w: f"/admin/{label.replace('.', '/')}/{admin_object(w, label).pk}/",
        )
    return Rule("GET", NOBODY, kwargs=lambda w: {"object_id": admin_object(w, label).pk}, deny=every(ADMIN_SIGN_IN))


def admin_rules() -> dict[str, Rule]:
    rules = {}
    for label in ADMIN_MODELS:
        name = label.replace(".", "_")
        for view in ("changelist", "add", "history", "delete", "change"):
            rules[f"admin:{name}_{view}"] = admin_rule(label, view)
        rules[f"admin/{label.replace('.', '/')}/<path:object_id>/"] = admin_rule(label, "redirect")
    return rules


def user_content_type(world: World) -> dict:
    return {
        "content_type_id": ContentType.objects.get_for_model(get_user_model()).pk,
        "object_id": world.parent_a.user.pk,
    }


RULES: dict[str, Rule] = {
    "home": Rule("GET", EVERYONE),
    # The health check (portal/health.py): for load balancers, with no session; the same answer for all.
    "healthz": Rule("GET", EVERYONE),
    # The school's colour and logo (portal/school.py), on every page, signed in or not.
    "school_theme": Rule("GET", EVERYONE),
    "school_logo": Rule("GET", EVERYONE),
    # The language switch in every page's header: anyone may choose, and a signed-in user's choice is saved.
    "language_set": Rule("POST", EVERYONE, data=lambda w: {"language": "es"}),
    # allauth (accounts/): sign-in, sign-up, email, password; a signed-in visitor to the sign-in and
    # sign-up pages is sent home, which counts as through.
    "account_login": Rule("POST", EVERYONE),
    "account_logout": Rule("POST", EVERYONE),
    "account_inactive": Rule("GET", EVERYONE),
    "account_signup": Rule("POST", EVERYONE),
    # Students have no portal password to confirm (they sign in with Canvas again).
    "account_reauthenticate": Rule("GET", PARENTS | STAFF, deny={"student": 403}),
    "account_email": Rule("GET", SIGNED_IN),
    "account_email_verification_sent": Rule("GET", SIGNED_IN),
    "account_change_password": Rule("GET", SIGNED_IN),
    "account_set_password": Rule("GET", SIGNED_IN),
    "account_reset_password": Rule("POST", EVERYONE),
    "account_request_login_code": Rule("POST", EVERYONE),
    # The next step of a sign-in by code or a reset: without one under way, back to where it starts.
    "account_confirm_login_code": Rule("GET", EVERYONE),
    "account_confirm_password_reset_code": Rule("GET", NOBODY, deny=every(SIGN_IN)),
    "account_complete_password_reset": Rule("GET", EVERYONE),
    "account_password_reset_completed": Rule("GET", EVERYONE),
    # allauth's second factor (accounts/2fa/): each user's own authenticator, after the password again.
    "mfa_index": Rule("GET", SIGNED_IN),
    "mfa_authenticate": Rule("GET", SIGNED_IN),  # a signed-in user has nothing to finish: sent home
    "mfa_reauthenticate": Rule("GET", STAFF, deny={**every(REAUTHENTICATE, among=PARENTS), "student": 403}),
    # A student signed in with Canvas moments ago and has no password to give again.
    "mfa_activate_totp": Rule("GET", STUDENT, deny=every(REAUTHENTICATE, among=PARENTS | STAFF)),
    "mfa_generate_recovery_codes": Rule("GET", STUDENT, deny=every(REAUTHENTICATE, among=PARENTS | STAFF)),
    # Only someone with an app has one to remove or codes to see (404 otherwise), after the password again.
    "mfa_deactivate_totp": Rule(
        "GET", NOBODY, deny={**every(404, among=PARENTS | STUDENT), **every(REAUTHENTICATE, among=STAFF)}
    ),
    "mfa_view_recovery_codes": Rule(
        "GET", NOBODY, deny={**every(404, among=PARENTS | STUDENT), **every(REAUTHENTICATE, among=STAFF)}
    ),
    "mfa_download_recovery_codes": Rule(
        "GET", NOBODY, deny={**every(404, among=PARENTS | STUDENT), **every(REAUTHENTICATE, among=STAFF)}
    ),
    # Sign in with Canvas (accounts/canvas/, accounts/3rdparty/; the old accounts/social/ addresses redirect).
    "canvas_login": Rule("POST", EVERYONE),
    # Only a sign-in that began here carries the state the callback checks (tests/canvas_oauth): 401 otherwise.
    "canvas_callback": Rule("GET", NOBODY, deny=every(401)),
    "socialaccount_login_cancelled": Rule("GET", EVERYONE),
    "socialaccount_login_error": Rule("GET", NOBODY, deny=every(401)),  # allauth's error page answers 401
    "socialaccount_signup": Rule("GET", NOBODY, deny=every(SIGN_IN)),  # needs a Canvas sign-in under way
    "socialaccount_connections": Rule("GET", SIGNED_IN),
    "accounts/social/login/cancelled/": Rule("GET", EVERYONE, url=lambda w: "/accounts/social/login/cancelled/"),
    "accounts/social/login/error/": Rule("GET", EVERYONE, url=lambda w: "/accounts/social/login/error/"),
    "accounts/social/signup/": Rule("GET", EVERYONE, url=lambda w: "/accounts/social/signup/"),
    "accounts/social/connections/": Rule("GET", EVERYONE, url=lambda w: "/accounts/social/connections/"),
    # Django's admin (admin/): its sign-in page is allauth's (portal/urls.py), and it refuses non-staff.
    "admin:login": Rule("GET", NOBODY, deny={**every(403), "anonymous": SIGN_IN}),
    # Signing out of an admin one is not signed in to: sent to the admin's front page, which refuses them.
    "admin:logout": Rule("POST", EVERYONE),
    "admin:index": Rule("GET", NOBODY, deny=every(ADMIN_SIGN_IN)),
    "admin:password_change": Rule("POST", NOBODY, deny=every(ADMIN_SIGN_IN)),
    "admin:password_change_done": Rule("GET", NOBODY, deny=every(ADMIN_SIGN_IN)),
    "admin:autocomplete": Rule("GET", NOBODY, deny=every(ADMIN_SIGN_IN)),
    "admin:jsi18n": Rule("GET", NOBODY, deny=every(ADMIN_SIGN_IN)),
    "admin:view_on_site": Rule("GET", NOBODY, kwargs=user_content_type, deny=every(ADMIN_SIGN_IN)),
    "admin:app_list": Rule("GET", NOBODY, kwargs=lambda w: {"app_label": "auth"}, deny=every(ADMIN_SIGN_IN)),
    "admin:auth_user_password_change": Rule(
        "POST", NOBODY, kwargs=lambda w: {"id": w.parent_a.user.pk}, deny=every(ADMIN_SIGN_IN)
    ),
    "admin/(?P<url>.*)$": Rule("GET", NOBODY, deny=every(ADMIN_SIGN_IN), url=lambda w: "/admin/no-such-page/"),
    **admin_rules(),
    # staff console: accounts (linking/staff/accounts.py)
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
    # imports (linking/staff/imports.py, import_runs.py)
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
def walk(patterns, prefix: str = "", namespace: str | None = None):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield route, name or route


def walked_urls() -> list[tuple[str, str]]:
    """Every (route, key) of the URL conf; the key is the URL's name, or its route when it has none."""
    return sorted(set(walk(get_resolver().url_patterns)))


WALKED = walked_urls()


def test_the_walk_finds_every_part_of_the_portal():
    keys = {key for _, key in WALKED}
    assert {"home", "account_login", "mfa_authenticate", "canvas_callback", "admin:index"} <= keys
    assert {"staff_home", "staff_policy", "staff_accounts", "student_home", "link_remove"} <= keys


def test_every_url_has_a_permission_rule():
    missing = [f"{route} ({key})" for route, key in WALKED if key not in RULES]
    assert not missing, f"add a permission rule to RULES in {__file__} for: " + ", ".join(missing)


def test_no_rule_is_left_over_from_a_url_that_is_gone():
    walked = {key for _, key in WALKED}
    assert not sorted(set(RULES) - walked)


def test_the_admin_models_are_the_ones_the_rules_name():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == set(ADMIN_MODELS), "decide who may see the new admin model, then list it in ADMIN_MODELS"


@pytest.mark.parametrize(("route", "key"), WALKED, ids=[key for _, key in WALKED])
def test_it_lets_through_exactly_the_personas_its_rule_allows(request, route, key):
    rule = RULES.get(key)
    if rule is None:
        pytest.fail(f"add a permission rule for {key} ({route}) to RULES in {__file__}")
    world = World(request)
    wrong = []
    # Refused personas first, so an allowed persona's action cannot hide a leak.
    for persona in sorted(PERSONAS, key=lambda p: p in rule.allow):
        client = getattr(world, persona).client
        url = rule.build_url(world, key)
        data = rule.data(world) if rule.data else {}
        response = client.post(url, data) if rule.method == "POST" else client.get(url, data)
        expected = expected_outcome(rule, persona)
        got = outcome(response)
        if got != expected:
            wrong.append(f"{persona} {rule.method} {url}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


def expected_outcome(rule: Rule, persona: str) -> str:
    if persona in rule.allow:
        return THROUGH
    if persona in rule.deny:
        return str(rule.deny[persona])
    return SIGN_IN if persona == "anonymous" else "403"


def outcome(response) -> str:
    status, path = response.status_code, urlsplit(response.get("Location", "")).path
    if status == 302 and path == reverse("account_login"):
        return SIGN_IN
    if status == 302 and path == reverse("admin:login"):
        return ADMIN_SIGN_IN
    if status == 302 and path in {reverse("account_reauthenticate"), reverse("mfa_reauthenticate")}:
        return REAUTHENTICATE
    if status == 302 and path == reverse("mfa_activate_totp"):
        return SET_UP_SECOND_FACTOR
    if status in {200, 301, 302, 400}:
        return THROUGH
    return str(status)


# -- only their own -------------------------------------------------------------------------------
def test_a_parent_sees_only_their_own_requests_and_links(parent_a, parent_b):
    mine = parent_a.client.get(reverse("parent_requests")).content.decode()
    theirs = parent_b.client.get(reverse("parent_requests")).content.decode()
    assert "Sofia Garcia" in mine and "Waiting for the school" in mine
    assert "Sofia Garcia" not in theirs and "Waiting for the school" not in theirs


def test_a_student_sees_only_their_own_codes(student):
    other = student_make("Other Student")
    client = Client()
    client.force_login(other.user)
    code = student.own["pairing_code"]
    for name in ("pairing_code_detail", "pairing_code_status", "pairing_code_card"):
        assert client.get(reverse(name, args=[code.pk])).status_code == 404
    assert client.post(reverse("pairing_code_email", args=[code.pk]), {"email": "x@example.com"}).status_code == 404


# -- the second factor ----------------------------------------------------------------------------
def test_every_staff_url_asks_for_the_second_factor_before_anything_else(request):
    """A staff admin whose session never used the app (signed in some other way) reaches no staff URL."""
    user = _staff_member_make("no.code@school.example", admin=True)
    client = Client()
    client.force_login(user)
    world = World(request)
    reached = []
    for route, key in WALKED:
        rule = RULES.get(key)
        if not route.startswith("staff/") or rule is None:
            continue
        url = rule.build_url(world, key)
        response = client.post(url) if rule.method == "POST" else client.get(url)
        if outcome(response) != REAUTHENTICATE:
            reached.append(f"{rule.method} {url}: {response.status_code}")
    assert not reached, "reached without the second factor:\n" + "\n".join(reached)


def admin_urls(world: World) -> list[tuple[str, str]]:
    return [(key, RULES[key].build_url(world, key)) for route, key in WALKED if route.startswith("admin/")]


def test_a_superuser_opens_every_admin_page_once_signed_in_with_the_second_factor(request, site_admin):
    world = World(request)
    # What the admin itself answers a superuser: no such page; users have no page on the site to show.
    not_found = {"admin/(?P<url>.*)$", "admin:view_on_site"}
    # The audit log is read-only for everyone (linking/audit/admin.py); autocomplete answers a widget's query only.
    read_only = {"admin:audit_auditevent_add", "admin:audit_auditevent_delete", "admin:autocomplete"}
    wrong = []
    for key, url in admin_urls(world):
        if key in {"admin:logout", "admin:login"}:
            continue  # signing out would end the walk; the sign-in page sends a signed-in superuser on
        expected = "404" if key in not_found else "403" if key in read_only else THROUGH
        got = outcome(site_admin.client.get(url))
        if got != expected:
            wrong.append(f"GET {url}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


def test_a_superuser_without_the_second_factor_opens_no_admin_page(request):
    user = _staff_member_make("root@school.example", admin=True)
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    world = World(request)
    urls = [(key, url) for key, url in admin_urls(world) if key != "admin:logout"]
    reached = []
    # Signed in some other way than with the app (an emailed code, say); then with no app set up at all.
    for expected in (REAUTHENTICATE, SET_UP_SECOND_FACTOR):
        if expected == SET_UP_SECOND_FACTOR:
            Authenticator.objects.filter(user=user).delete()
        client = Client()
        client.force_login(user)
        reached += [f"GET {url}: {got}" for key, url in urls if (got := outcome(client.get(url))) != expected]
    assert not reached, "reached the admin without the second factor:\n" + "\n".join(reached)


def test_the_admin_signs_in_through_allauth_not_a_form_of_its_own(anonymous):
    response = anonymous.client.get(reverse("admin:login") + "?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login") + "?next=")
    assert anonymous.client.post(reverse("admin:login"), {"username": "x", "password": "y"}).status_code == 302
