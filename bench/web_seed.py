"""The school the web benchmark plays: a term's worth of families, students and staff, and their sessions.

Everything is made in bulk through the ORM (the services would take minutes and thousands of slow password
hashes), in the states the services leave: parents linked, held for review, refused or declined, each with
the audit events the services would have written, chained as ``audit_event_record`` chains them. What the
load needs at run time is real: Canvas students with tokens (the worker makes their codes), Canvas accounts
for linked parents, pairing codes Canvas issued (the codes parents type), staff with an authenticator app.

:func:`school_seed` returns the personas file the locustfile reads: a signed-in session per person (staff
sessions carry the second-factor step allauth records), each with a network address of its own.
"""

from __future__ import annotations

import random
import string
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bench import seed

PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark parents' one password, of no account
CODE_ALPHABET = string.ascii_letters + string.digits
# What a school's families look like a few weeks into term (shares of the seeded parents).
HISTORY_SHARES = {"linked": 0.45, "held": 0.08, "failed": 0.07, "rejected": 0.03}  # the rest are new
SECOND_CHILD_SHARE = 0.2
HELD_RULES = ("hold_all", "max_observers", "watched_domain", "flagged_student")
COURSES_PER_SCHOOL = 6
SCHOOLS = (101, 102)  # Canvas sub-account ids


# -- Canvas and portal people ----------------------------------------------------------------------
def students_seed(stack, *, count: int) -> list:
    """Canvas students (enrolled, each with a token) who signed in to the portal with Canvas."""
    from allauth.socialaccount.models import SocialAccount, SocialToken
    from django.contrib.auth import get_user_model

    from linking.models import Student

    User = get_user_model()
    canvas = seed.sim_students(stack.sim, count=count, prefix="WEB", tokens=True)
    users = [User(username=f"canvas-{student['id']}") for student in canvas]
    for user in users:
        user.set_unusable_password()
    User.objects.bulk_create(users, batch_size=1000)
    by_name = {user.username: user for user in User.objects.filter(username__startswith="canvas-")}
    accounts = SocialAccount.objects.bulk_create(
        [SocialAccount(user=by_name[f"canvas-{s['id']}"], provider="canvas", uid=str(s["id"])) for s in canvas],
        batch_size=1000,
    )
    SocialToken.objects.bulk_create(
        [SocialToken(account=account, token=s["token"]) for account, s in zip(accounts, canvas, strict=True)],
        batch_size=1000,
    )
    Student.objects.bulk_create(
        [
            Student(
                user=by_name[f"canvas-{s['id']}"], canvas_user_id=s["id"], name=s["name"], sis_user_id=s["sis_user_id"]
            )
            for s in canvas
        ],
        batch_size=1000,
    )
    students = list(Student.objects.select_related("user").order_by("canvas_user_id"))
    tokens = {s["id"]: s["token"] for s in canvas}
    for student in students:
        student.token = tokens[student.canvas_user_id]
    return students


def courses_seed(students: list, rng: random.Random) -> int:
    """Courses in two schools, every student in one or two, so staff can filter by course and school."""
    from linking.models import Course

    courses = Course.objects.bulk_create(
        [
            Course(
                canvas_course_id=school * 100 + number, name=f"Grade {number + 3}, School {school}", account_id=school
            )
            for school in SCHOOLS
            for number in range(1, COURSES_PER_SCHOOL + 1)
        ]
    )
    through = Course.students.through
    rows = []
    for student in students:
        for course in rng.sample(courses, rng.choice((1, 1, 2))):
            rows.append(through(course_id=course.pk, student_id=student.pk))
    through.objects.bulk_create(rows, batch_size=2000)
    return len(courses)


def parents_seed(stack, *, count: int, in_canvas: int) -> list:
    """Signed-up parents with one shared password (one hash, not ``count``); the first ``in_canvas`` of
    them have Canvas observer accounts too (the linked ones)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from linking.models import Parent

    parents = seed.portal_parents([seed.parent_email("web", number) for number in range(1, count + 1)])
    password = make_password(PASSWORD)
    get_user_model().objects.filter(pk__in=[parent.user_id for parent in parents]).update(password=password)
    for parent in parents:
        parent.user.password = password

    def canvas_account(parent) -> int:
        return stack.sim.control("POST", "users", login=parent.user.email, name=parent.name, token=False)["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(canvas_account, parents[:in_canvas]))
    for parent, canvas_id in zip(parents, ids, strict=False):
        parent.canvas_user_id = canvas_id
    Parent.objects.bulk_update(parents[:in_canvas], ["canvas_user_id"], batch_size=1000)
    return parents


def staff_seed(*, count: int) -> list:
    """School staff made by the real service, each with an authenticator app set up."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from linking.services.staff import staff_member_create

    staff = []
    for number in range(1, count + 1):
        email = f"staff{number:02d}@school.example.test"
        user = staff_member_create(email=email, name=f"Sam Staff{number:02d}", admin=number == 1, by=None).user
        TOTP.activate(user, generate_totp_secret())
        RecoveryCodes.activate(user)
        user.totp_id = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).pk
        staff.append(user)
    return staff


# -- codes ------------------------------------------------------------------------------------------
def codes_seed(stack, students: list, *, count: int) -> list[str]:
    """``count`` pairing codes Canvas issued to the students (their own tokens), kept as the portal keeps the
    codes students make on its pages, for parents to type during the load."""
    from linking.canvas import CanvasClient
    from linking.models import PairingCode

    makers = [students[number % len(students)] for number in range(count)]

    def issue(student):
        return CanvasClient(base_url=stack.sim.base_url, token=student.token).create_pairing_code(
            student.canvas_user_id
        )

    with ThreadPoolExecutor(16) as pool:
        issued = list(pool.map(issue, makers))
    PairingCode.objects.bulk_create(
        [
            PairingCode(
                student=student,
                requested_by=student.user,
                state=PairingCode.State.ACTIVE,
                code=code.code,
                expires_at=code.expires_at,
            )
            for student, code in zip(makers, issued, strict=True)
        ],
        batch_size=1000,
    )
    return [code.code for code in issued]


def random_code(rng: random.Random) -> str:
    return "".join(rng.choice(CODE_ALPHABET) for _ in range(6))


# -- a term's history ---------------------------------------------------------------------------------
class AuditChain:
    """Audit events appended in bulk, chained exactly as ``audit_event_record`` chains them (verify_audit
    passes): each carries the hash of the one before and its own, under the service's chain lock."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def add(self, *, at, actor, subject: dict, **fields) -> None:
        """One event: ``action``, ``actor_label`` and optionally ``outcome``, ``canvas_calls``, ``data``."""
        self.events.append(
            {
                "created_at": at,
                "actor_id": actor.pk if actor is not None else None,
                "subject": {key: value for key, value in subject.items() if value is not None},
                **fields,
            }
        )

    def save(self) -> int:
        from django.db import models, transaction

        from linking.audit.models import AuditEvent
        from linking.audit.services import GENESIS, _lock_chain_head, event_hash, personal_digest

        with transaction.atomic():
            _lock_chain_head()
            head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
            rows = []
            for event in self.events:
                row = AuditEvent(personal={}, personal_digest=personal_digest({}), prev_hash=head, **event)
                row.hash = head = event_hash(row)
                rows.append(row)
            # The model's manager refuses bulk_create because rows made without the service would not be
            # chained; these are, hash for hash, so the plain QuerySet's bulk insert is used on purpose.
            models.QuerySet(AuditEvent).bulk_create(rows, batch_size=2000)
        return len(rows)


def _calls(*routes: tuple[str, str, int]) -> list[dict]:
    return [{"method": method, "path": path, "status": status} for method, path, status in routes]


class History:
    """Link requests, links and past codes in the states a few weeks of term leave, with their audit events."""

    def __init__(self, *, students: list, staff: list, rng: random.Random, days: int) -> None:
        from django.utils import timezone

        self.students, self.staff, self.rng = students, staff, rng
        self.now, self.days = timezone.now(), days
        self.requests: list = []
        self.links: list = []
        self.codes: list = []
        self.timeline: list[tuple] = []  # (at, event kwargs), sorted before chaining

    def when(self, *, at_least_days: float = 1) -> object:
        # At least a day old: nothing seeded may count towards this hour's code-entry limits.
        return self.now - timedelta(days=self.rng.uniform(at_least_days, self.days))

    def parent_history(self, parent, state: str, number: int) -> None:
        from linking.models import LinkRequest

        address = seed.address(number)
        if state == "linked":
            for _ in range(2 if self.rng.random() < SECOND_CHILD_SHARE else 1):
                self._linked(parent, self.rng.choice(self.students), address)
        elif state == "held":
            rule = self.rng.choice(HELD_RULES)
            student = self.rng.choice(self.students) if rule in ("max_observers", "flagged_student") else None
            self._closed_or_held(parent, address, state=LinkRequest.State.HELD, held_rule=rule, student=student)
        elif state == "failed":
            failure = self.rng.choice(["invalid_code"] * 4 + ["no_link", "canvas_unavailable"])
            self._closed_or_held(parent, address, state=LinkRequest.State.FAILED, failure=failure, recent=True)
        elif state == "rejected":
            self._closed_or_held(
                parent,
                address,
                state=LinkRequest.State.REJECTED,
                held_rule="hold_all",
                reviewed_by=self.rng.choice(self.staff),
                review_reason="Please come to the school office with ID.",
            )

    def _request(self, parent, address: str, created_at, **fields):
        from linking.models import LinkRequest

        request = LinkRequest(parent=parent, client_ip=address, **fields)
        request.seeded_created_at = created_at
        self.requests.append(request)
        self._event(
            created_at,
            action="link_request.submitted",
            actor=parent.user,
            actor_label="parent",
            subject={"link_request": str(request.id), "parent": parent.pk},
            data={"source": request.source},
        )
        return request

    def _linked(self, parent, student, address: str) -> None:
        from linking.models import LinkRequest, ObservationLink

        created_at = self.when()
        finished_at = created_at + timedelta(seconds=self.rng.uniform(1, 5))
        request = self._request(
            parent, address, created_at, state=LinkRequest.State.LINKED, student=student, finished_at=finished_at
        )
        link = ObservationLink(
            parent=parent,
            student=student,
            root_account_id=1,
            method=ObservationLink.Method.PAIRING_CODE,
            link_request=request,
            created_by=parent.user,
        )
        link.seeded_created_at = finished_at
        self.links.append(link)
        self._event(
            finished_at,
            action="link.created",
            actor=parent.user,
            actor_label="parent",
            subject={"link_request": str(request.id), "parent": parent.pk, "student": student.pk},
            outcome="linked",
            canvas_calls=_calls(("POST", f"/api/v1/users/{parent.canvas_user_id}/observees", 200)),
            data={"method": "pairing_code", "source": "typed", "root_account_ids": [1], "new_root_account_ids": [1]},
        )

    def _closed_or_held(self, parent, address: str, *, state: str, recent: bool = False, **fields) -> None:
        from linking.models import LinkRequest

        # Failed requests stay on the dashboard for 14 days; those are the ones a returning parent sees.
        created_at = self.when(at_least_days=1) if not recent else self.now - timedelta(days=self.rng.uniform(1, 13))
        finished = created_at + timedelta(seconds=self.rng.uniform(1, 5))
        code = random_code(self.rng) if state == LinkRequest.State.HELD else ""
        if state == LinkRequest.State.FAILED:
            fields["finished_at"] = finished
        if state == LinkRequest.State.REJECTED:
            fields["finished_at"] = fields["reviewed_at"] = finished + timedelta(hours=self.rng.uniform(1, 48))
        request = self._request(parent, address, created_at, state=state, code=code, **fields)
        subject = {
            "link_request": str(request.id),
            "parent": parent.pk,
            "student": getattr(request.student, "pk", None),
        }
        if state == LinkRequest.State.FAILED:
            self._event(
                finished,
                action="link_request.failed",
                actor=parent.user,
                actor_label="parent",
                subject=subject,
                outcome=request.failure,
                canvas_calls=_calls(("POST", "/api/v1/users/self/observees", 422)),
            )
            return
        self._event(
            finished,
            action="link_request.held",
            actor=parent.user,
            actor_label="parent",
            subject=subject,
            outcome=request.held_rule,
        )
        if state == LinkRequest.State.REJECTED:
            self._event(
                request.finished_at,
                action="link_request.rejected",
                actor=request.reviewed_by,
                actor_label="staff",
                subject=subject,
            )

    def past_codes(self) -> None:
        """A code or two each student made earlier in term, expired now."""
        from linking.models import PairingCode

        for student in self.students:
            for _ in range(self.rng.choice((1, 1, 2))):
                created_at = self.when(at_least_days=8)
                code = PairingCode(
                    student=student,
                    requested_by=student.user,
                    state=PairingCode.State.ACTIVE,
                    code=random_code(self.rng),
                    expires_at=created_at + timedelta(days=7),
                )
                code.seeded_created_at = created_at
                self.codes.append(code)
                subject = {
                    "code_request": str(code.id),
                    "student": student.pk,
                    "canvas_student": student.canvas_user_id,
                }
                self._event(
                    created_at,
                    action="pairing_code.requested",
                    actor=student.user,
                    actor_label="student",
                    subject=subject,
                )
                self._event(
                    created_at + timedelta(seconds=1),
                    action="pairing_code.created",
                    actor=student.user,
                    actor_label="worker",
                    subject=subject,
                    canvas_calls=_calls(
                        ("POST", f"/api/v1/users/{student.canvas_user_id}/observer_pairing_codes", 200)
                    ),
                    data={"acting_as": "student", "expires_at": code.expires_at.isoformat()},
                )

    def _event(self, at, **event) -> None:
        self.timeline.append((at, len(self.timeline), event))

    def save(self) -> dict:
        from linking.models import LinkRequest, ObservationLink, PairingCode

        LinkRequest.objects.bulk_create(self.requests, batch_size=1000)
        ObservationLink.objects.bulk_create(self.links, batch_size=1000)
        PairingCode.objects.bulk_create(self.codes, batch_size=1000)
        # auto_now_add stamped them now; the term began weeks ago.
        for model, rows in ((LinkRequest, self.requests), (ObservationLink, self.links), (PairingCode, self.codes)):
            for row in rows:
                row.created_at = row.updated_at = row.seeded_created_at
            model.objects.bulk_update(rows, ["created_at", "updated_at"], batch_size=1000)
        chain = AuditChain()
        for at, _, event in sorted(self.timeline, key=lambda item: item[:2]):
            chain.add(at=at, **event)
        return {
            "link_requests": len(self.requests),
            "links": len(self.links),
            "past_codes": len(self.codes),
            "audit_events": chain.save(),
        }


# -- sessions ---------------------------------------------------------------------------------------
def sessions_bulk(users: list, *, second_factor: bool = False) -> list[str]:
    """A signed-in session per user, as the sign-in leaves it (``seed.session_for`` in bulk).

    ``second_factor``: the session also holds the password and authenticator-app steps allauth records
    (``account_authentication_methods``), which the staff console's middleware asks for.
    """
    import time

    from allauth.account.internal.flows.login import (
        _AUTHENTICATION_METHODS_USER_SESSION_KEY,
        AUTHENTICATION_METHODS_SESSION_KEY,
    )
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    store = SessionStore()
    expires = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    keys, rows = [], []
    for user in users:
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "allauth.account.auth_backends.AuthenticationBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        if second_factor:
            signed_in_at = time.time()
            data[AUTHENTICATION_METHODS_SESSION_KEY] = [
                {"method": "password", "at": signed_in_at, "email": user.email},
                {"method": "mfa", "at": signed_in_at, "id": user.totp_id, "type": "totp"},
            ]
            data[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        keys.append(key)
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expires))
    Session.objects.bulk_create(rows, batch_size=1000)
    return keys


# -- all of it ----------------------------------------------------------------------------------------
def school_seed(stack, *, parents: int, students: int, staff: int, codes: int, days: int, seed_number: int) -> dict:
    """Seed the school and return the personas file's content (and ``counts``, what was made)."""
    from django.db import connection

    rng = random.Random(seed_number)
    student_rows = students_seed(stack, count=students)
    courses = courses_seed(student_rows, rng)
    states = _parent_states(parents, rng)
    linked = sum(state == "linked" for state in states)
    # Linked parents first, so the first ``linked`` parents are the ones with Canvas accounts.
    states.sort(key=lambda state: state != "linked")
    parent_rows = parents_seed(stack, count=parents, in_canvas=linked)
    staff_rows = staff_seed(count=staff)
    code_list = codes_seed(stack, student_rows, count=codes)
    history = History(students=student_rows, staff=staff_rows, rng=rng, days=days)
    order = list(range(parents))
    rng.shuffle(order)  # a parent's number (and address) says nothing of their state
    for number, index in enumerate(order, start=1):
        history.parent_history(parent_rows[index], states[index], number)
    history.past_codes()
    made = history.save()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum would have done for a database a few weeks old
    parent_sessions = sessions_bulk([parent.user for parent in parent_rows])
    student_sessions = sessions_bulk([student.user for student in student_rows])
    staff_sessions = sessions_bulk(staff_rows, second_factor=True)
    address_of = {index: seed.address(number) for number, index in enumerate(order, start=1)}
    personas = {
        "password": PASSWORD,
        "codes": code_list,
        "parents": [
            {"email": parent.user.email, "session": key, "address": address_of[index], "state": states[index]}
            for index, (parent, key) in enumerate(zip(parent_rows, parent_sessions, strict=True))
        ],
        # Addresses after the parents', so no two people share one.
        "students": [
            {"session": key, "address": seed.address(parents + number)}
            for number, key in enumerate(student_sessions, start=1)
        ],
        "staff": [
            {"session": key, "address": seed.address(parents + students + number)}
            for number, key in enumerate(staff_sessions, start=1)
        ],
        "search": sorted({parent.name.split()[-1][:12] for parent in rng.sample(parent_rows, min(50, parents))}),
    }
    rng.shuffle(personas["parents"])
    counts = {
        "parents": parents,
        "parents_by_state": {state: states.count(state) for state in sorted(set(states))},
        "parents_in_canvas": linked,
        "students": students,
        "courses": courses,
        "staff": staff,
        "codes_for_parents": len(code_list),
        **made,
    }
    return {"personas": personas, "counts": counts}


def _parent_states(count: int, rng: random.Random) -> list[str]:
    states = []
    for _ in range(count):
        draw, state = rng.random(), "new"
        for name, share in HISTORY_SHARES.items():
            if draw < share:
                state = name
                break
            draw -= share
        states.append(state)
    return states
