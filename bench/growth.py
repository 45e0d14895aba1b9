"""How cost grows: imports of 1k, 5k and 20k rows, and the staff console's pages over 10k and 100k requests.

    .venv/bin/python -m bench.growth [--imports 1000,5000,20000] [--requests 10000,100000] [--only imports]

Two parts, each in a stack of its own (bench/stack.py: a fresh PostgreSQL database, Redis, the simulator
with 150 ms on every Canvas call):

1. **Pages** (``--requests``): the portal's records are grown to each number of link requests (students in
   courses, parents, links, holds, code-entry pauses, and the audit events each request leaves, appended
   through the audit service so the chain is real), then every staff page a school lists things on is opened
   in this process with Django's test client against the stack's database, signed in as staff who passed
   the second factor: queries per page (which must not change with the size), latency (median and p95 of
   ``--repeats`` after a warm-up), and the slowest query with PostgreSQL's plan for it at the largest size.
2. **Imports** (``--imports``): for each size, that many new families (a student Canvas has, a parent it
   has not) are uploaded through the staff console's form, checked and run, as staff do. Each phase is
   timed; Canvas calls are the simulator's counts; database queries are counted on both sides, each per
   row: the web side (the upload and the start, in this process) and the worker side (bench/querycount.py,
   which also tallies the worker's queries by shape, to show which statements repeat per row).

The figure that matters is a straight line: queries per row the same at every import size, queries per page
the same at every table size. The figures go to var/bench/growth.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from bench import seed
from bench import stack as stack_module
from bench.linking import canvas_counts
from bench.querycount import shapes as query_shapes
from bench.querycount import total as worker_queries
from bench.stack import REDIS_URL, Stack, write_result

# The worker settles its query counts in Redis twice a second: wait this long before reading a final one.
SETTLE_SECONDS = 1.2
# A shape this many times per row or more is work done for each row, not for each batch.
PER_ROW_SHAPE = 0.5
# The slowest query of a page at the largest size gets PostgreSQL's plan when it takes longer than this.
EXPLAIN_FROM_MS = 5.0
BATCH = 2000


# -- signing in, opening pages -----------------------------------------------------------------------
def staff_client():
    """A staff admin who signed in with a password and their authenticator app's code, and their client.

    The same sign-in the staff tests use (tests/staff/conftest.py), over HTTPS as the proxy would say.
    """
    from django.test import Client

    from tests.staff.conftest import mfa_client, staff_member_make

    user = staff_member_make(seed.STAFF_EMAIL, admin=True, name="Bench Staff")
    client = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_FOR="10.0.0.1")
    return user, mfa_client(user, client)


def queries_of(action) -> tuple[object, list[dict]]:
    """What ``action()`` returns, and every query this process made meanwhile (SQL and seconds)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        value = action()
    return value, list(captured.captured_queries)


def milliseconds(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = statistics.quantiles(ordered, n=20, method="inclusive")[18] if len(ordered) > 1 else ordered[0]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "p95_ms": round(p95 * 1000, 1)}


def slowest(queries: list[dict]) -> dict:
    query = max(queries, key=lambda q: float(q["time"]))
    return {"ms": round(float(query["time"]) * 1000, 1), "sql": query["sql"]}


def plan_of(sql: str) -> list[str]:
    """PostgreSQL's plan for a query this process ran (EXPLAIN ANALYZE), as its lines."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS OFF) " + sql)
        return [row[0] for row in cursor.fetchall()]


def page_measure(client, url: str, *, repeats: int) -> dict:
    """One page: its status, its queries (counted once, after a warm-up) and its latency over ``repeats``."""
    client.get(url)  # warm-up: the session, the content types, PostgreSQL's caches
    response, queries = queries_of(lambda: client.get(url))
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(url)
        samples.append(time.perf_counter() - started)
    return {
        "status": response.status_code,
        "queries": len(queries),
        **milliseconds(samples),
        "bytes": len(response.content),
        "slowest_query": slowest(queries),
    }


# -- 1. the staff pages --------------------------------------------------------------------------------
FIRST_NAMES = (
    "Sofia Liam Olivia Noah Emma Mateo Ava Lucas Mia Ethan Isabella Mason Amara Leo Chloe Ravi Zoe Omar Lily "
    "Hugo Nora Kai Ines Theo Maya Jonah Aisha Felix Clara Tariq Elena Samuel Priya Diego Hana Arjun Layla Ivan"
).split()
LAST_NAMES = (
    "Garcia Chen Johnson Nguyen Patel Smith Kim Okafor Rossi Novak Silva Haddad Murphy Schmidt Tanaka Dubois "
    "Kowalski Andersson Costa Ibrahim Walker Lopez Singh Müller O'Brien Yilmaz Moreau Hughes Rahman Park"
).split()
PARENT_DOMAINS = ("families.example.test", "mail.example.test", "school-parents.example.test", "watched.example.test")
SCHOOLS = (101, 102, 103, 104)
# A class of about this many students: a district with more students has more courses, not larger ones.
STUDENTS_PER_COURSE = 30
# Link requests per student and per parent: families with two children, children with two parents.
REQUESTS_PER_STUDENT = 2
REQUESTS_PER_PARENT = 1.25
YEARS_OF_HISTORY = 2


def state_drawn(rng: random.Random) -> str:
    """A request's state as a school two years in sees them: most linked, a few of each other."""
    from linking.models import LinkRequest

    states = LinkRequest.State
    return rng.choices(
        (states.LINKED, states.FAILED, states.HELD, states.REJECTED, states.WAITING, states.LINKING),
        weights=(62, 12, 8, 4, 9, 5),
    )[0]


@contextlib.contextmanager
def dates_as_given(model, *names: str):
    """Let bulk_create keep the dates given: auto_now and auto_now_add would stamp two years with today."""
    fields = [model._meta.get_field(name) for name in names]
    saved = [(field.auto_now, field.auto_now_add) for field in fields]
    for field in fields:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, (auto_now, auto_now_add) in zip(fields, saved, strict=True):
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


class School:
    """The portal's records of one district, grown to a number of link requests in steps.

    Everything is made with bulk_create in batches, except the audit events: those go through
    ``audit_event_record``, as the services append them, so the chain verifies and the triggers hold.
    """

    def __init__(self, staff, *, seed_value: int = 7) -> None:
        self.staff = staff
        self.rng = random.Random(seed_value)
        self.now = _now()
        self.courses: list = []
        self.students: list = []
        self.parents: list = []
        self.requests = 0
        self.current_pairs: set[tuple[int, int]] = set()

    # The pieces, each in its own step so that growing from 10k to 100k adds to what is there.
    def grow_to(self, requests: int) -> dict:
        seconds = {}
        for name, step in (
            ("courses", lambda: self._courses_make(requests // REQUESTS_PER_STUDENT // STUDENTS_PER_COURSE)),
            ("students", lambda: self._students_make(requests // REQUESTS_PER_STUDENT)),
            ("parents", lambda: self._parents_make(int(requests / REQUESTS_PER_PARENT))),
            ("requests_and_links", lambda: self._requests_make(requests)),
            ("holds_and_pauses", lambda: self._holds_and_pauses_make(requests)),
        ):
            started = time.monotonic()
            step()
            seconds[name] = round(time.monotonic() - started, 1)
        return seconds

    def _courses_make(self, count: int) -> None:
        from linking.models import Course

        count = max(count, len(SCHOOLS))
        self.courses += Course.objects.bulk_create(
            [
                Course(
                    canvas_course_id=9000 + number,
                    name=f"Grade {5 + number % 4}, Room {number + 1}",
                    account_id=SCHOOLS[number % len(SCHOOLS)],
                    synced_at=self.now,
                )
                for number in range(len(self.courses), count)
            ]
        )

    def _students_make(self, count: int) -> None:
        from linking.models import Course, Student

        made = Student.objects.bulk_create(
            [
                Student(
                    canvas_user_id=1_000_000 + number,
                    name=f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}",
                    sis_user_id=f"S{number:06d}",
                    flagged=number % 97 == 0,
                )
                for number in range(len(self.students), count)
            ],
            batch_size=BATCH,
        )
        # Each student in one course, some in a second of the same school.
        enrolments = []
        for student in made:
            first = self.rng.randrange(len(self.courses))
            enrolments.append(Course.students.through(course_id=self.courses[first].pk, student_id=student.pk))
            if self.rng.random() < 0.3:
                second = (first + len(SCHOOLS)) % len(self.courses)
                enrolments.append(Course.students.through(course_id=self.courses[second].pk, student_id=student.pk))
        Course.students.through.objects.bulk_create(enrolments, batch_size=BATCH)
        self.students += made

    def _parents_make(self, count: int) -> None:
        from django.contrib.auth import get_user_model

        from linking.models import LanguagePreference, Parent

        users, names = [], []
        for number in range(len(self.parents), count):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            domain = self.rng.choices(PARENT_DOMAINS, weights=(60, 30, 8, 2))[0]
            email = f"{first}.{last}.{number}@{domain}".lower().replace("'", "")
            users.append(get_user_model()(username=email, email=email, password="!unusable"))
            names.append(f"{first} {last}")
        users = get_user_model().objects.bulk_create(users, batch_size=BATCH)
        self.parents += Parent.objects.bulk_create(
            [
                Parent(user=user, name=name, canvas_user_id=5_000_000 + user.pk)
                for user, name in zip(users, names, strict=True)
            ],
            batch_size=BATCH,
        )
        LanguagePreference.objects.bulk_create(
            [LanguagePreference(user=user, language=self.rng.choice(("en", "es"))) for user in users],
            batch_size=BATCH,
        )

    def _requests_make(self, count: int) -> None:
        from linking.models import LinkRequest, ObservationLink

        for start in range(self.requests, count, BATCH):
            drawn = [self._request_drawn(number) for number in range(start, min(start + BATCH, count))]
            with dates_as_given(LinkRequest, "created_at", "updated_at"):
                made = LinkRequest.objects.bulk_create(drawn)
            links = ObservationLink.objects.bulk_create(
                [self._link_for(request) for request in made if request.state == LinkRequest.State.LINKED]
            )
            self._audit_events_record(made, {link.link_request_id: link for link in links})
        self.requests = count

    def _request_drawn(self, number: int):
        from linking.models import LinkRequest

        rng, states = self.rng, LinkRequest.State
        parent = self.parents[int(number / REQUESTS_PER_PARENT)]
        state = state_drawn(rng)
        open_ = state in LinkRequest.OPEN_STATES and state != states.HELD
        # Open requests are recent; the rest spread over the school's history.
        age = timedelta(minutes=rng.uniform(0, 60)) if open_ else timedelta(days=rng.uniform(0, 365 * YEARS_OF_HISTORY))
        made_at = self.now - age
        request = LinkRequest(
            parent=parent,
            code="AbC123xY",
            source=rng.choices((LinkRequest.Source.TYPED, LinkRequest.Source.QR), weights=(7, 3))[0],
            state=state,
            student=self._student_drawn() if not open_ or rng.random() < 0.5 else None,
            attempts=1,
            client_ip=seed.address(number),
            created_at=made_at,
            updated_at=made_at + timedelta(seconds=3),
        )
        if state in (states.HELD, states.REJECTED) or (state == states.LINKED and rng.random() < 0.05):
            request.held_rule = rng.choice(LinkRequest.Rule.values)
        if state in (states.REJECTED, states.LINKED) and request.held_rule:
            request.reviewed_by, request.reviewed_at = self.staff, made_at + timedelta(hours=20)
            request.review_reason = "Declined after a call with the family." if state == states.REJECTED else ""
        if state == states.FAILED:
            request.failure = rng.choice(LinkRequest.Failure.values)
            if request.failure in (LinkRequest.Failure.INVALID_CODE, LinkRequest.Failure.NO_LINK):
                request.student = None  # Canvas never said whose code it was
        if state in (states.LINKED, states.FAILED, states.REJECTED):
            request.finished_at = made_at + timedelta(seconds=3)
            if not request.can_retry:
                request.code = ""
        return request

    def _student_drawn(self):
        return self.students[self.rng.randrange(len(self.students))]

    def _link_for(self, request):
        from linking.models import ObservationLink

        pair = (request.parent_id, request.student_id)
        # One current link per pair: a pair linked again after a removal keeps the old link as removed.
        removed = pair in self.current_pairs or self.rng.random() < 0.08
        if not removed:
            self.current_pairs.add(pair)
        return ObservationLink(
            parent_id=request.parent_id,
            student_id=request.student_id,
            root_account_id=1,
            method=ObservationLink.Method.ADMIN if request.held_rule else ObservationLink.Method.PAIRING_CODE,
            state=ObservationLink.State.REMOVED if removed else ObservationLink.State.ACTIVE,
            link_request=request,
            created_by_id=request.parent.user_id,
            removed_at=request.finished_at if removed else None,
        )

    def _audit_events_record(self, made: list, links: dict) -> None:
        """The events the services would have appended for these requests: submitted, then what followed."""
        from django.db import transaction

        from linking.audit.services import audit_event_record

        with transaction.atomic():
            for request in made:
                for event in request_events(request, links.get(request.pk)):
                    audit_event_record(**event)

    def _holds_and_pauses_make(self, requests: int) -> None:
        from linking.models import CodeEntryLockout, PairHold

        # Rare things: a hold for one request in 500, a pause for one in 1,000 (a few at least, so that no
        # list is empty at one size and full at the next); a third of them over.
        holds = []
        for number in range(PairHold.objects.count(), max(3, requests // 500)):
            lifted = number % 3 == 0
            holds.append(
                PairHold(
                    student=self.students[number],
                    parent_email=f"held.{number}@families.example.test",
                    reason=f"Court order 2024-{number:04d}",
                    created_by=self.staff,
                    lifted_by=self.staff if lifted else None,
                    lifted_at=self.now if lifted else None,
                    lift_reason="Order ended." if lifted else "",
                )
            )
        PairHold.objects.bulk_create(holds)
        pauses = []
        for number in range(CodeEntryLockout.objects.count(), max(3, requests // 1000)):
            ended = number % 3 == 0
            pauses.append(
                CodeEntryLockout(
                    scope=CodeEntryLockout.Scope.ACCOUNT,
                    parent=self.parents[number],
                    failures=10,
                    started_at=self.now - timedelta(days=2 if ended else 0, hours=1),
                    until=self.now + timedelta(days=-1 if ended else 1),
                )
            )
        CodeEntryLockout.objects.bulk_create(pauses)


def request_events(request, link) -> list[dict]:
    """The audit events a request leaves, as ``audit_event_record`` arguments (see linking/services/links.py)."""
    from linking.models import LinkRequest

    states = LinkRequest.State
    user = request.parent.user
    subject = {"link_request": str(request.pk), "parent": request.parent_id}
    if request.student_id:
        subject["student"] = request.student_id
    by_parent = {"actor": user, "actor_label": "parent", "subject": subject}
    events = [{"action": "link_request.submitted", "data": {"source": request.source}, **by_parent}]
    if request.held_rule:
        events.append({"action": "link_request.held", "outcome": request.held_rule, **by_parent})
    if request.state == states.LINKED:
        observer = request.parent.canvas_user_id
        calls = [
            {"method": "GET", "path": "/api/v1/users/sis_login_id:…", "status": 200},
            {"method": "POST", "path": f"/api/v1/users/{observer}/observees", "status": 200},
        ]
        events.append({"action": "link.created", "outcome": "linked", "canvas_calls": calls, **by_parent})
    elif request.state == states.FAILED:
        events.append({"action": "link_request.failed", "outcome": request.failure, **by_parent})
    elif request.state == states.REJECTED:
        events.append(
            {
                "action": "link_request.rejected",
                "actor": request.reviewed_by,
                "actor_label": "staff",
                "subject": subject,
                "personal": {"reason": request.review_reason},
            }
        )
    return events


def _now():
    from django.utils import timezone

    return timezone.now()


def pages_to_open(school: School) -> list[tuple[str, str]]:
    """Every staff page that lists things, with each filter, a search, each sort and a deep page."""
    from urllib.parse import urlencode

    from linking.models import LinkRequest

    today = date.today()
    middle = LinkRequest.objects.filter(state=LinkRequest.State.LINKED).order_by("created_at")
    linked = middle.select_related("student")[middle.count() // 2]
    parent_email = school.parents[len(school.parents) // 2].user.email
    course = school.courses[0]

    def requests(**query) -> str:
        return "/staff/requests/" + (f"?{urlencode(query)}" if query else "")

    def audit(**query) -> str:
        return "/staff/audit/" + (f"?{urlencode(query)}" if query else "")

    return [
        ("overview", "/staff/"),
        ("requests", requests()),
        ("requests: page 200", requests(page=200)),
        ("requests: last page", requests(page="last")),
        ("requests: 100 a page", requests(per_page=100)),
        ("requests: held", requests(state="held")),
        ("requests: failed", requests(state="failed")),
        ("requests: held by the watched-domain rule", requests(held_rule="watched_domain")),
        ("requests: made in the last 30 days", requests(created_from=today - timedelta(days=30))),
        (
            "requests: made in one month a year ago",
            requests(created_from=today - timedelta(days=395), created_to=today - timedelta(days=365)),
        ),
        ("requests: one course", requests(course=course.pk)),
        ("requests: one school", requests(school=SCHOOLS[0])),
        ("requests: search a surname", requests(q="Garcia")),
        ("requests: search a parent's email", requests(q=parent_email)),
        ("requests: search a SIS id", requests(q=linked.student.sis_user_id)),
        ("requests: sorted by student", requests(sort="student")),
        ("requests: sorted by parent", requests(sort="parent")),
        ("requests: sorted by state, Z to A", requests(sort="-state")),
        ("requests: oldest first", requests(sort="created")),
        ("requests: held in one school, by student", requests(state="held", school=SCHOOLS[1], sort="student")),
        ("request detail", f"/staff/requests/{linked.pk}/"),
        ("holds", "/staff/holds/"),
        ("code-entry pauses", "/staff/lockouts/"),
        ("reconciliation", "/staff/reconciliation/"),
        ("audit log", audit()),
        ("audit log: page 100", audit(page=100)),
        ("audit log: one action", audit(action="link.created")),
        ("audit log: actions starting link_request.", audit(action="link_request.")),
        ("audit log: one request", audit(subject=str(linked.pk))),
        ("audit log: before today", audit(date_to=today - timedelta(days=1))),
        ("letters", "/staff/letters/"),
        ("letters: one course", f"/staff/letters/courses/{course.pk}/"),
        ("imports", "/staff/imports/"),
        ("staff accounts", "/staff/people/"),
        ("policy", "/staff/policy/"),
    ]


def pages(sizes: list[int], *, repeats: int) -> dict:
    """Grow the records to each size and open every page at each; what changes with the size is reported."""
    from linking.audit.models import AuditEvent
    from linking.models import LinkRequest

    staff, client = staff_client()
    school = School(staff)
    by_size: dict[int, dict] = {}
    seeding = {}
    for size in sizes:
        print(f"-- pages: growing to {size:,} requests", flush=True)
        started = time.monotonic()
        steps = school.grow_to(size)
        _analyse()
        seeding[size] = {
            "seconds": round(time.monotonic() - started, 1),
            "steps": steps,
            "link_requests": LinkRequest.objects.count(),
            "audit_events": AuditEvent.objects.count(),
            "students": len(school.students),
            "parents": len(school.parents),
        }
        print(seeding[size], flush=True)
        by_size[size] = {}
        for name, url in pages_to_open(school):
            by_size[size][name] = {"url": url, **page_measure(client, url, repeats=repeats)}
            print(f"   {name}: {_page_line(by_size[size][name])}", flush=True)
    return {"sizes": sizes, "repeats": repeats, "seeding": seeding, "pages": pages_compared(by_size)}


def _analyse() -> None:
    # Fresh statistics, as autovacuum would have gathered after a bulk load, so the plans are the real ones.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _page_line(page: dict) -> str:
    return f"{page['status']}, {page['queries']} queries, p50 {page['p50_ms']} ms, p95 {page['p95_ms']} ms"


def pages_compared(by_size: dict[int, dict]) -> dict:
    """Each page's figures side by side: whether its queries stayed the same, how much slower it got."""
    sizes = sorted(by_size)
    smallest, largest = sizes[0], sizes[-1]
    compared = {}
    for name in by_size[smallest]:
        figures = {size: by_size[size][name] for size in sizes}
        queries = {figures[size]["queries"] for size in sizes}
        entry = {
            "url": figures[largest]["url"],
            "queries_constant": len(queries) == 1,
            "p50_growth": round(figures[largest]["p50_ms"] / max(figures[smallest]["p50_ms"], 0.1), 2),
            "by_size": {str(size): {k: v for k, v in figures[size].items() if k != "url"} for size in sizes},
        }
        slowest_sql = figures[largest]["slowest_query"]
        if slowest_sql["ms"] >= EXPLAIN_FROM_MS:
            entry["slowest_plan"] = plan_of(slowest_sql["sql"])
        compared[name] = entry
    return compared


# -- 2. imports ------------------------------------------------------------------------------------
def imports(stack: Stack, sizes: list[int]) -> dict:
    staff, client = staff_client()
    by_size = {}
    for rows in sizes:
        print(f"-- imports: {rows:,} rows", flush=True)
        by_size[str(rows)] = import_measure(stack, client, rows)
        print({key: value for key, value in by_size[str(rows)].items() if key != "worker_shapes"}, flush=True)
    return {"sizes": sizes, "by_size": by_size, "growth": imports_compared(by_size)}


def import_measure(stack: Stack, client, rows: int) -> dict:
    """One file of ``rows`` new families: uploaded, checked and run as staff do it, every cost counted."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from linking.models import ImportRow, ImportRun

    students = seed.sim_students(stack.sim, count=rows, prefix=f"G{rows}X")
    content = seed.families_csv(students, email_prefix=f"growth{rows}")
    stack.sim.reset()  # every throttle bucket empty, as after a quiet night
    stack.sim.stats_reset()
    worker_before, shapes_before = _worker_settled()

    upload = SimpleUploadedFile(f"families-{rows}.csv", content, content_type="text/csv")
    uploaded_at = time.monotonic()
    response, upload_queries = queries_of(lambda: client.post("/staff/imports/new/", {"file": upload, "method": "api"}))
    upload_seconds = time.monotonic() - uploaded_at
    if response.status_code != 302:
        raise RuntimeError(f"the upload answered {response.status_code}: {response.content[:500]!r}")
    run = ImportRun.objects.order_by("-created_at").first()
    _wait_for_state(run, lambda state: state != ImportRun.State.CHECKING, "the import's check")
    checked_at = time.monotonic()
    check_canvas = canvas_counts(stack.sim.stats())
    worker_checked, shapes_checked = _worker_settled()

    started_at = time.monotonic()
    response, start_queries = queries_of(
        lambda: client.post(f"/staff/imports/runs/{run.pk}/start/", {"method": ImportRun.Method.API})
    )
    _wait_for_state(run, lambda state: state in (ImportRun.State.DONE, ImportRun.State.FAILED), "the import run")
    done_at = time.monotonic()
    all_canvas = canvas_counts(stack.sim.stats())
    worker_done, shapes_done = _worker_settled()

    run.refresh_from_db()
    run_calls = all_canvas["calls"] - check_canvas["calls"]
    check_queries, run_queries = worker_checked - worker_before, worker_done - worker_checked
    return {
        "rows": rows,
        "state": run.state,
        "rows_done": run.rows.filter(state=ImportRow.State.DONE).count(),
        "preview": {key: value for key, value in run.preview.items() if key != "directory"},
        "seconds": {
            "upload": round(upload_seconds, 2),
            "check": round(checked_at - uploaded_at - upload_seconds, 2),
            "run": round(done_at - started_at, 2),
        },
        "rows_per_second": {
            "check": round(rows / (checked_at - uploaded_at - upload_seconds), 1),
            "run": round(rows / (done_at - started_at), 1),
        },
        "canvas": {
            "check_calls": check_canvas["calls"],
            "run_calls": run_calls,
            "calls_per_row": round(all_canvas["calls"] / rows, 3),
            "throttled_403": all_canvas["throttled_403"],
            "by_route": all_canvas["by_route"],
        },
        "queries": {
            "web_upload": len(upload_queries),
            "web_start": len(start_queries),
            "worker_check": check_queries,
            "worker_run": run_queries,
        },
        "queries_per_row": {
            "web": round((len(upload_queries) + len(start_queries)) / rows, 4),
            "worker_check": round(check_queries / rows, 3),
            "worker_run": round(run_queries / rows, 3),
            "worker": round((check_queries + run_queries) / rows, 3),
        },
        "worker_shapes": {
            "check": shapes_per_row(shapes_checked - shapes_before, rows),
            "run": shapes_per_row(shapes_done - shapes_checked, rows),
        },
        "pages": import_pages(client, run),
    }


def _wait_for_state(run, reached, what: str) -> None:
    from linking.models import ImportRun

    seed.wait_for(
        lambda: reached(ImportRun.objects.filter(pk=run.pk).values_list("state", flat=True).first()),
        timeout=3 * 3600,
        what=what,
    )


def _worker_settled():
    time.sleep(SETTLE_SECONDS)
    return worker_queries(REDIS_URL), query_shapes(REDIS_URL)


def shapes_per_row(tally, rows: int) -> list[dict]:
    """The worker's statements of one phase, most frequent first, each with how many times it ran per row."""
    return [
        {"per_row": round(count / rows, 3), "count": count, "sql": sql[:400]}
        for sql, count in tally.most_common()
        if count
    ]


def import_pages(client, run) -> dict:
    """The run's own pages once it is done: its preview (problem rows paged) and its run page."""
    return {
        name: page_measure(client, url, repeats=5)
        for name, url in (
            ("preview", f"/staff/imports/{run.pk}/"),
            ("run", f"/staff/imports/runs/{run.pk}/"),
            ("progress", f"/staff/imports/runs/{run.pk}/progress/"),
        )
    }


def imports_compared(by_size: dict[str, dict]) -> dict:
    """Queries per row at every size side by side, the marginal cost of a row between sizes, and the
    statements whose count per row changed with the size (what an N+1 or a per-row scan would show)."""
    sizes = sorted(by_size, key=int)
    per_row = {key: {size: by_size[size]["queries_per_row"][key] for size in sizes} for key in ("web", "worker")}
    marginal = {}
    for smaller, larger in zip(sizes, sizes[1:], strict=False):
        added = int(larger) - int(smaller)
        marginal[f"{smaller}->{larger}"] = {
            side: round(
                (_side_total(by_size[larger], side) - _side_total(by_size[smaller], side)) / added,
                4 if side == "web" else 3,
            )
            for side in ("web", "worker")
        }
    return {
        "queries_per_row": per_row,
        "marginal_queries_per_row": marginal,
        "per_row_shapes": _per_row_shapes(by_size, sizes),
        "page_queries": {
            name: {size: by_size[size]["pages"][name]["queries"] for size in sizes}
            for name in by_size[sizes[0]]["pages"]
        },
    }


def _side_total(figures: dict, side: str) -> int:
    queries = figures["queries"]
    if side == "web":
        return queries["web_upload"] + queries["web_start"]
    return queries["worker_check"] + queries["worker_run"]


def _per_row_shapes(by_size: dict[str, dict], sizes: list[str]) -> dict:
    """Statements run about once a row or more, with their count per row at every size."""
    found = {}
    for phase in ("check", "run"):
        table: dict[str, dict[str, float]] = {}
        for size in sizes:
            for entry in by_size[size]["worker_shapes"][phase]:
                table.setdefault(entry["sql"], {})[size] = entry["per_row"]
        found[phase] = [
            {"sql": sql, "per_row": {size: counts.get(size, 0) for size in sizes}}
            for sql, counts in sorted(table.items(), key=lambda item: -max(item[1].values()))
            if max(counts.values()) >= PER_ROW_SHAPE
        ]
    return found


# -- running -----------------------------------------------------------------------------------------
def sizes_list(text: str) -> list[int]:
    return [int(part.replace("_", "").replace("k", "000")) for part in text.split(",") if part.strip()]


@contextlib.contextmanager
def stack_for(part: str, *, latency_ms: int, workers: int, worker_threads: int):
    """A stack of the part's own, logging to a folder of its own: the next part's stack empties the first's."""
    from django.db import connections

    base = Path(stack_module.LOG_DIR)
    stack_module.LOG_DIR = base / part  # read by Stack.start
    try:
        with Stack.start(latency_ms=latency_ms, workers=workers, worker_threads=worker_threads) as stack:
            stack.django()
            try:
                yield stack
            finally:
                # The next stack drops and makes the database again: no connection may be left open on it.
                connections.close_all()
    finally:
        stack_module.LOG_DIR = base


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=sizes_list, default=[1000, 5000, 20000], help="rows in each import")
    parser.add_argument("--requests", type=sizes_list, default=[10_000, 100_000], help="link requests seeded")
    parser.add_argument("--only", choices=("imports", "pages"), help="run one part only")
    parser.add_argument("--repeats", type=int, default=20, help="timed openings of each page")
    parser.add_argument("--latency-ms", type=int, default=150, help="the simulator's latency per API call")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (imports)")
    parser.add_argument("--worker-threads", type=int, default=16, help="threads of each Celery worker")
    args = parser.parse_args(argv)

    # Off by default in bench/querycount.py; the workers inherit this process's environment.
    os.environ["BENCH_QUERY_SHAPES"] = "1"
    result: dict = {
        "command": "python -m bench.growth " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args),
    }
    stack_args = {"latency_ms": args.latency_ms, "worker_threads": args.worker_threads}
    if args.only in (None, "pages"):
        # No worker: nothing here queues Canvas work, and the pages are opened in this process.
        with stack_for("pages", workers=0, **stack_args):
            result["pages"] = pages(args.requests, repeats=args.repeats)
    if args.only in (None, "imports"):
        with stack_for("imports", workers=args.workers, **stack_args) as stack:
            from django.conf import settings

            result["settings"] = {
                "CANVAS_MAX_IN_FLIGHT": settings.CANVAS_MAX_IN_FLIGHT,
                "worker": f"{args.workers} x celery worker --pool=threads --concurrency={args.worker_threads}",
            }
            result["imports"] = imports(stack, args.imports)
            result["memory_mib"] = stack.memory()
    write_result("growth", result)
    print(summary(result), flush=True)
    return result


def summary(result: dict) -> str:
    """The figures that matter, as lines a person reads."""
    lines = []
    if "imports" in result:
        lines.append("imports: rows | upload s | check s | run s | run rows/s | calls/row | web q/row | worker q/row")
        for rows, f in result["imports"]["by_size"].items():
            lines.append(
                f"  {int(rows):>6} | {f['seconds']['upload']:>6} | {f['seconds']['check']:>7}"
                f" | {f['seconds']['run']:>7}"
                f" | {f['rows_per_second']['run']:>6} | {f['canvas']['calls_per_row']:>6} | "
                f"{f['queries_per_row']['web']:>7} | {f['queries_per_row']['worker']}"
                f" (check {f['queries_per_row']['worker_check']}, run {f['queries_per_row']['worker_run']})"
            )
    if "pages" in result:
        sizes = [str(size) for size in result["pages"]["sizes"]]
        lines.append("pages: name | queries at " + "/".join(sizes) + " | p50 ms | p95 ms")
        for name, page in result["pages"]["pages"].items():
            figures = [page["by_size"][size] for size in sizes]
            lines.append(
                f"  {name}: {'/'.join(str(f['queries']) for f in figures)}"
                f"{'' if page['queries_constant'] else ' (CHANGES)'} | "
                f"{'/'.join(str(f['p50_ms']) for f in figures)} | {'/'.join(str(f['p95_ms']) for f in figures)}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
