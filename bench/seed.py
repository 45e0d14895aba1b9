"""People for the benchmarks: students in the simulated Canvas, parents in the portal, their sessions.

Canvas's side is made through the simulator's control API (``/__sim__/users``, which the throttle does not
count), so no benchmark starts with Canvas's bucket part full. The portal's side is made through the ORM
in bulk: a parent made here is what a parent who signed up is, without 500 slow password hashes.
"""

from __future__ import annotations

import csv
import io
import secrets
import string
import time
from concurrent.futures import ThreadPoolExecutor

STAFF_EMAIL = "bench.staff@example.test"


def wait_for(condition, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def sim_students(sim, *, count: int, prefix: str, tokens: bool = False, threads: int = 8) -> list[dict]:
    """``count`` students enrolled in a course of the simulated Canvas, SIS ids ``<prefix>00001``..."""

    def make(number: int) -> dict:
        sis_id = f"{prefix}{number:05d}"
        return sim.control(
            "POST",
            "users",
            name=f"Student {sis_id.title()} Bench",
            login=f"{sis_id.lower()}@students.example.test",
            sis_user_id=sis_id,
            student=True,
            token=tokens,
        )

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(make, range(1, count + 1)))


def parent_email(prefix: str, number: int) -> str:
    return f"{prefix}.parent{number:05d}@families.example.test"


def families_csv(students: list[dict], *, email_prefix: str) -> bytes:
    """The SIS export a district would upload: one new parent per student."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student_sis_id", "parent_email", "parent_first_name", "parent_last_name", "language"])
    for number, student in enumerate(students, start=1):
        writer.writerow(
            [student["sis_user_id"], parent_email(email_prefix, number), "Pat", f"Family{number:05d}", "en"]
        )
    return out.getvalue().encode()


def staff_user():
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(
        username=STAFF_EMAIL, defaults={"email": STAFF_EMAIL, "is_staff": True}
    )
    return user


def portal_parents(emails: list[str]) -> list:
    """Signed-up parents with confirmed emails and no Canvas account yet."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    from linking.models import Parent

    User = get_user_model()
    users = [User(username=email, email=email) for email in emails]
    for user in users:
        user.set_unusable_password()
    User.objects.bulk_create(users, batch_size=1000)
    users = list(User.objects.filter(username__in=emails).order_by("username"))
    EmailAddress.objects.bulk_create(
        [EmailAddress(user=user, email=user.email, verified=True, primary=True) for user in users], batch_size=1000
    )
    Parent.objects.bulk_create(
        [Parent(user=user, name=f"Pat {user.email.split('@')[0].title()}") for user in users], batch_size=1000
    )
    return list(Parent.objects.filter(user__in=users).select_related("user").order_by("user__username"))


def session_for(user) -> str:
    """A signed-in session for ``user`` (as the sign-in page would leave), returning its cookie value."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def csrf_secret() -> str:
    """A CSRF cookie value; Django accepts the same 32 characters back in the form's field."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def address(number: int) -> str:
    """A family's own network address (the proxy's X-Forwarded-For), so no two share the per-address limit."""
    return f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"
