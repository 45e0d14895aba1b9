"""Personas for the staff console, each a signed-in test ``Client`` with the objects that are theirs.

``anonymous``, ``parent_a``, ``parent_b``, ``student``, ``staff`` (school staff) and ``staff_admin``.
Parents and the student are signed in with ``force_login`` (their own sign-in is tested in
tests/accounts); staff sign in for real: allauth's login form with a password, then the code their
authenticator app would show, computed with allauth's own TOTP functions. So ``staff.client`` holds
a session that allauth itself recorded as MFA-authenticated, exactly what the middleware checks.

Helpers for other staff tests::

    staff_member_make(email, admin=False, mfa=True)  # a user made by the real service, app set up
    mfa_client(user)                                  # a new Client signed in with password + TOTP
    password_client(user)                             # signed in with the password only (no code yet)
    totp_code(user)                                   # the code the user's app shows now
    totp_code_for(secret)                             # the same, for a secret not yet saved
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from linking.models import LinkRequest, ObservationLink, PairingCode, Parent, Student
from linking.services.people import parent_register, student_upsert_from_canvas
from linking.services.staff import staff_member_create

PASSWORD = "correct horse battery staple"


@dataclass
class Persona:
    name: str
    client: Client
    user: object | None = None
    parent: Parent | None = None
    student: Student | None = None
    # What belongs to this persona, for "only their own" checks: a link request, a link, a code.
    own: dict = field(default_factory=dict)


@pytest.fixture(autouse=True)
def fast_accounts(settings, db):
    # The real hasher costs ~0.3 s a password; allauth's rate limits and used TOTP codes live in the cache.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


# -- staff ----------------------------------------------------------------------------------------
def staff_member_make(email: str, *, admin: bool = False, mfa: bool = True, name: str = "Sam Staff"):
    """A staff member made by the real service, with a password for tests and (``mfa``) an app set up."""
    user = staff_member_create(email=email, name=name, admin=admin, by=None).user
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    if mfa:
        TOTP.activate(user, generate_totp_secret())
        RecoveryCodes.activate(user)
    return user


def totp_code_for(secret: str) -> str:
    """The code an authenticator app set up with ``secret`` shows now.

    allauth accepts the current period's code only (tolerance 0): near a period's end this waits for
    the next, or the code could expire between being computed here and checked by the view.
    """
    left = mfa_settings.TOTP_PERIOD - time.time() % mfa_settings.TOTP_PERIOD
    if left < 1.5:
        time.sleep(left + 0.05)
    return format_hotp_value(hotp_value(secret, int(time.time()) // mfa_settings.TOTP_PERIOD))


def totp_code(user) -> str:
    """The code the user's authenticator app shows now.

    allauth accepts each code once (it remembers used codes for a period); a test that signs the
    same user in twice forgets that, as a real person would wait 30 seconds for the next code.
    """
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    code = totp_code_for(decrypt(authenticator.data["secret"]))
    cache.delete(TOTP(authenticator)._get_used_cache_key(code))
    return code


def password_client(user, client: Client | None = None) -> Client:
    """Signed in through allauth's form with the password; a user with an app is left at the code page."""
    client = client or Client()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    return client


def mfa_client(user, client: Client | None = None) -> Client:
    """Signed in the way staff sign in: the password, then the authenticator app's code."""
    client = password_client(user, client)
    response = client.get(reverse("mfa_authenticate"))
    assert response.status_code == 200, f"expected allauth's code page, got {response.status_code}"
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(user)})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert client.session.get("_auth_user_id") == str(user.pk), "the code did not complete the sign-in"
    return client


@pytest.fixture
def staff(db) -> Persona:
    user = staff_member_make("sam.staff@school.example")
    return Persona("staff", mfa_client(user), user)


@pytest.fixture
def staff_admin(db) -> Persona:
    user = staff_member_make("alex.admin@school.example", admin=True, name="Alex Admin")
    return Persona("staff_admin", mfa_client(user), user)


# -- families -------------------------------------------------------------------------------------
def parent_make(email: str, name: str) -> Parent:
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return parent_register(user=user, name=name)


_canvas_ids = iter(range(5000, 10**6))


def student_make(name: str = "Sofia Garcia", *, with_account: bool = True) -> Student:
    canvas_id = next(_canvas_ids)
    user = get_user_model().objects.create_user(username=f"canvas-{canvas_id}") if with_account else None
    return student_upsert_from_canvas(canvas_user_id=canvas_id, name=name, user=user)


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user, backend=settings.AUTHENTICATION_BACKENDS[0])
    return client


@pytest.fixture
def student(db) -> Persona:
    """A student signed in with Canvas, with a pairing code that is ready."""
    student = student_make()
    code = PairingCode.objects.create(student=student, requested_by=student.user, state=PairingCode.State.ACTIVE)
    code.code, code.expires_at = "AbC123", timezone.now() + timedelta(days=7)
    code.save(update_fields=["code", "expires_at"])
    return Persona("student", _signed_in(student.user), student.user, student=student, own={"pairing_code": code})


@pytest.fixture
def parent_a(db, student) -> Persona:
    """A parent linked to ``student``, with a request waiting for review."""
    parent = parent_make("maria.garcia@example.com", "Maria Garcia")
    link = ObservationLink.objects.create(
        parent=parent, student=student.student, root_account_id=1, method=ObservationLink.Method.PAIRING_CODE
    )
    held = LinkRequest.objects.create(
        parent=parent, code="XyZ789", state=LinkRequest.State.HELD, held_rule=LinkRequest.Rule.HOLD_ALL
    )
    return Persona("parent_a", _signed_in(parent.user), parent.user, parent=parent, own={"link": link, "request": held})


@pytest.fixture
def parent_b(db) -> Persona:
    parent = parent_make("lee.wong@example.com", "Lee Wong")
    return Persona("parent_b", _signed_in(parent.user), parent.user, parent=parent)


@pytest.fixture
def anonymous() -> Persona:
    return Persona("anonymous", Client())


PERSONAS = ("anonymous", "parent_a", "parent_b", "student", "staff", "staff_admin")


@pytest.fixture
def personas(anonymous, parent_a, parent_b, student, staff, staff_admin) -> dict[str, Persona]:
    return {p.name: p for p in (anonymous, parent_a, parent_b, student, staff, staff_admin)}
